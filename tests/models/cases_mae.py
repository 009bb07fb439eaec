"""MAE in the shared harness: a tiny ViT on 16×16 images, patches of 4 (16 patches).

MAE draws its masks from `keras.random`, whose streams differ between backends,
so the fixed inputs carry the masking noise explicitly (`{"images", "noise"}`):
the same weights and the same noise give the same loss on every backend.
"""

import numpy as np

from harness import (
    IMAGE_SIZE,
    MethodCase,
    single_image_bad_inputs,
    single_image_dataset,
)
from keras_ssl.backbones import ViTBackbone
from keras_ssl.data import mae_augmentation
from keras_ssl.models.mae import MAE

PATCH_SIZE = 4
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2  # 16; MAE keeps 4 of them


def tiny_vit(**kwargs):
    config = dict(
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        patch_size=PATCH_SIZE,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
    )
    config.update(kwargs)
    return ViTBackbone(**config)


def tiny_mae(encoder=None, **kwargs):
    config = dict(decoder_dim=16, decoder_depth=1, decoder_num_heads=2, seed=0)
    config.update(kwargs)
    return MAE(encoder or tiny_vit(), **config)


def fixed_noise(batch_size, seed=0):
    return np.random.default_rng(seed).random((batch_size, NUM_PATCHES)).astype(
        "float32"
    )


def fixed_inputs(images):
    """16 deterministic crops and fixed masking noise."""
    x = np.asarray(images[:16, 4 : 4 + IMAGE_SIZE, 4 : 4 + IMAGE_SIZE], "float32")
    return {"images": x.copy(), "noise": fixed_noise(len(x))}


def bad_inputs():
    return single_image_bad_inputs(("noise", fixed_noise(4)))


CASE = MethodCase(
    name="mae",
    build_model=tiny_mae,
    # One view per image: random resized crop (20-100%) + flip, MAE's recipe.
    make_dataset=single_image_dataset(mae_augmentation(IMAGE_SIZE)),
    fixed_inputs=fixed_inputs,
    bad_inputs=bad_inputs,
)
