"""DINO in the shared harness: 2 global crops of 16 px and 2 local crops of 8 px."""

import numpy as np

from harness import IMAGE_SIZE, MethodCase
from keras_ssl.backbones import CIFARResNetBackbone
from keras_ssl.data.multicrop import MultiCropAugmentation, multi_crop_dataset
from keras_ssl.models.dino import DINO

LOCAL_SIZE = IMAGE_SIZE // 2
NUM_LOCAL_CROPS = 2


def free_size_encoder():
    """The harness's tiny encoder, taking global and local crop sizes."""
    return CIFARResNetBackbone(
        stackwise_num_filters=(8, 16),
        stackwise_num_blocks=(1, 1),
        image_shape=(None, None, 3),
    )


def tiny_dino(**kwargs):
    config = dict(
        output_dim=32,
        hidden_dims=(16,),
        bottleneck_dim=8,
        num_local_crops=NUM_LOCAL_CROPS,
        # Batch norm in the head (DINO's `use_bn_in_head`): without it the
        # tiny CNN's outputs start nearly equal for every image, the teacher
        # starts one-hot and the loss first rises while centering spreads it.
        use_batch_norm_in_head=True,
        # A faster center than the paper's 0.9: the harness trains 24 steps,
        # and the loss rises until the center has settled.
        center_momentum=0.5,
        teacher_momentum=0.9,
        total_steps=100,
    )
    config.update(kwargs)
    return DINO(free_size_encoder(), **config)


def tiny_augmentation():
    return MultiCropAugmentation(
        IMAGE_SIZE,
        LOCAL_SIZE,
        num_local_crops=NUM_LOCAL_CROPS,
        local_scale=(0.1, 0.4),
    )


def fixed_crops(images):
    """Deterministic crops of 16 images: 2 global (16 px), 2 local (8 px)."""
    x = np.asarray(images[:16], "float32")
    g, l = IMAGE_SIZE, LOCAL_SIZE
    return (
        x[:, 4 : 4 + g, 4 : 4 + g].copy(),
        x[:, 12 : 12 + g, 12 : 12 + g, :][:, :, ::-1].copy(),
        x[:, 2 : 2 + l, 6 : 6 + l].copy(),
        x[:, 20 : 20 + l, 14 : 14 + l].copy(),
    )


def bad_crops():
    rng = np.random.default_rng(0)
    g = rng.random((4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    l = rng.random((4, LOCAL_SIZE, LOCAL_SIZE, 3)).astype("float32")
    return [
        (g, "tuple of crops"),
        ((g, g, l), "2 global \\+ 2 local crops = 4 views"),
        ((g[..., 0], g[..., 0], l[..., 0], l[..., 0]), "rank 4"),
        (((g * 255).astype("uint8"),) * 2 + ((l * 255).astype("uint8"),) * 2,
         "float images"),
        ((g[:1], g[:1], l[:1], l[:1]), "at least 2 images"),  # index 4: batch of 1
        ((g, g[:, :12, :12], l, l), "all global crops must have the same shape"),
        ((g, g, l, l[:, :4, :4]), "all local crops must have the same shape"),
        ((g, g, l[:2], l[:2]), "same batch size"),
    ]


CASE = MethodCase(
    name="dino",
    build_model=tiny_dino,
    make_dataset=lambda images, batch_size: multi_crop_dataset(
        images, tiny_augmentation(), batch_size=batch_size, seed=0, repeat=True
    ),
    fixed_inputs=fixed_crops,
    bad_inputs=bad_crops,
    metrics=("teacher_entropy", "teacher_student_kl"),
)
