"""BEiT in the shared harness: a tiny ViT on 16×16 images, patches of 4 (16
patches, 6 masked), against an untrained tiny tokenizer of 16 codes.

BEiT draws its masks from `keras.random`, whose streams differ between
backends, so the fixed inputs carry the mask explicitly (`{"images", "mask"}`):
the same weights and the same mask give the same loss on every backend.
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
from keras_ssl.models.beit import BEiT
from keras_ssl.models.vq_tokenizer import VQTokenizer

PATCH_SIZE = 4
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2  # 16
NUM_MASKED = 6  # round(0.4 × 16)
NUM_CODES = 16


def tiny_tokenizer(**kwargs):
    config = dict(
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), patch_size=PATCH_SIZE,
        num_codes=NUM_CODES, code_dim=8, hidden_dim=8, seed=0,
    )
    config.update(kwargs)
    return VQTokenizer(**config)


def tiny_vit(**kwargs):
    config = dict(
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), patch_size=PATCH_SIZE,
        hidden_dim=16, num_layers=1, num_heads=2,
    )
    config.update(kwargs)
    return ViTBackbone(**config)


def tiny_beit(encoder=None, tokenizer=None, **kwargs):
    kwargs.setdefault("seed", 0)
    return BEiT(encoder or tiny_vit(), tokenizer or tiny_tokenizer(), **kwargs)


def fixed_mask(batch_size, seed=0):
    """`NUM_MASKED` random patches per row (1 = masked)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((batch_size, NUM_PATCHES), "float32")
    for row in mask:
        row[rng.choice(NUM_PATCHES, NUM_MASKED, replace=False)] = 1.0
    return mask


def fixed_inputs(images):
    """16 deterministic crops and a fixed mask."""
    x = np.asarray(images[:16, 4 : 4 + IMAGE_SIZE, 4 : 4 + IMAGE_SIZE], "float32")
    return {"images": x.copy(), "mask": fixed_mask(len(x))}


def bad_inputs():
    return single_image_bad_inputs(("mask", fixed_mask(4)))


CASE = MethodCase(
    name="beit",
    build_model=tiny_beit,
    make_dataset=single_image_dataset(mae_augmentation(IMAGE_SIZE)),
    fixed_inputs=fixed_inputs,
    bad_inputs=bad_inputs,
    metrics=("masked_accuracy",),
)
