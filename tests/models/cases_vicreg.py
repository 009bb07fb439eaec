"""VICReg in the shared method harness (tests/harness.py)."""

from harness import (
    IMAGE_SIZE,
    MethodCase,
    _two_fixed_views,
    _two_view_bad_inputs,
    tiny_encoder,
)
from keras_ssl.data import byol_augmentations, multi_view_dataset
from keras_ssl.models import VICReg

CASE = MethodCase(
    name="vicreg",
    build_model=lambda: VICReg(
        tiny_encoder(),
        projection_dim=16,
        projection_hidden_dims=(16, 16),
    ),
    make_dataset=lambda images, batch_size: multi_view_dataset(
        images,
        byol_augmentations(IMAGE_SIZE, crop_scale=(0.2, 1.0)),
        batch_size=batch_size,
        seed=0,
        repeat=True,
    ),
    fixed_inputs=_two_fixed_views,
    bad_inputs=_two_view_bad_inputs,
    metrics=("invariance", "variance", "covariance", "representation_std"),
)
