"""BYOL in the shared method harness (tests/harness.py)."""

from harness import (
    IMAGE_SIZE,
    MethodCase,
    _two_fixed_views,
    _two_view_bad_inputs,
    tiny_encoder,
)
from keras_ssl.data import byol_augmentations, multi_view_dataset
from keras_ssl.models.byol import BYOL

CASE = MethodCase(
    name="byol",
    build_model=lambda: BYOL(
        tiny_encoder(),
        total_steps=24,  # the harness fits 4 epochs of 6 steps
        projection_dim=8,
        projection_hidden_dims=(16,),
        prediction_hidden_dims=(16,),
        base_momentum=0.99,
    ),
    # The paper's asymmetric views: blur 1.0 / 0.1, solarize 0.0 / 0.2.
    make_dataset=lambda images, batch_size: multi_view_dataset(
        images,
        byol_augmentations(IMAGE_SIZE, crop_scale=(0.2, 1.0)),
        batch_size=batch_size,
        seed=0,
        repeat=True,
    ),
    fixed_inputs=_two_fixed_views,
    bad_inputs=_two_view_bad_inputs,
    metrics=("representation_std", "tau"),
)
