"""MoCo v3 (no queue, in-batch keys, predictor) in the shared harness."""

from harness import (
    IMAGE_SIZE,
    MethodCase,
    _two_fixed_views,
    _two_view_bad_inputs,
    tiny_encoder,
)
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
from keras_ssl.models.moco import MoCoV3

CASE = MethodCase(
    name="mocov3",
    build_model=lambda: MoCoV3(
        tiny_encoder(),
        projection_dim=8,
        projection_hidden_dims=(16, 16),
        prediction_hidden_dims=(16,),
        momentum=0.99,
        total_steps=24,  # the harness fits 4 epochs of 6 steps
    ),
    make_dataset=lambda images, batch_size: multi_view_dataset(
        images,
        SimCLRAugmentation(IMAGE_SIZE, crop_scale=(0.2, 1.0)),
        batch_size=batch_size,
        seed=0,
        repeat=True,
    ),
    fixed_inputs=_two_fixed_views,
    bad_inputs=_two_view_bad_inputs,
    metrics=("positive_similarity", "negative_similarity", "representation_std"),
)
