"""MoCo v2 in the shared method harness (tests/harness.py).

The queue starts as random unit vectors and is replaced by real keys as
training goes: a queue of 64 keys is filled by the harness's first 2 steps
(batches of 32), so the loss level the harness compares (first vs last
epoch of 6 steps) is that of a full queue of real keys. 64 is divisible by
the harness's batch sizes (32 in `fit`, 16 for the fixed inputs, 4 and 1 for
the bad inputs).
"""

from harness import (
    IMAGE_SIZE,
    MethodCase,
    _two_fixed_views,
    _two_view_bad_inputs,
    tiny_encoder,
)
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
from keras_ssl.models.moco import MoCo

CASE = MethodCase(
    name="moco",
    build_model=lambda: MoCo(
        tiny_encoder(),
        projection_dim=8,
        projection_hidden_dims=(16,),
        queue_size=64,
        momentum=0.99,
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
    replica_overrides={"shuffle_bn_splits": 1},
)
