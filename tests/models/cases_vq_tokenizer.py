"""VQTokenizer in the shared harness: a tiny VQ-VAE on 16×16 images.

Patches of 2 (an 8 × 8 grid of codes per image), 32 codes of 8 dimensions,
16-wide convolutions. Its encoder returns a feature map (one code vector per
patch), which the harness pools before the downstream classifier.
"""

import numpy as np

from harness import (
    IMAGE_SIZE,
    MethodCase,
    single_image_bad_inputs,
    single_image_dataset,
)
from keras_ssl.data import SimCLRAugmentation
from keras_ssl.models import VQTokenizer

PATCH_SIZE = 2
NUM_CODES = 32
CODE_DIM = 8
GRID = (IMAGE_SIZE // PATCH_SIZE, IMAGE_SIZE // PATCH_SIZE)
NUM_PATCHES = GRID[0] * GRID[1]  # 64


def tiny_tokenizer(**kwargs):
    config = dict(
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        patch_size=PATCH_SIZE,
        num_codes=NUM_CODES,
        code_dim=CODE_DIM,
        hidden_dim=16,
        seed=0,
    )
    config.update(kwargs)
    return VQTokenizer(**config)


def crops(images, count=16):
    """`count` deterministic 16×16 crops of the 32×32 images, float32."""
    x = images[:count, 4 : 4 + IMAGE_SIZE, 4 : 4 + IMAGE_SIZE]
    return np.asarray(x, "float32").copy()


def bad_inputs():
    return single_image_bad_inputs()


CASE = MethodCase(
    name="vq_tokenizer",
    build_model=tiny_tokenizer,
    # One view per image: a random resized crop (20-100%) and a flip, no
    # colour changes (the tokenizer must reconstruct the colours it sees).
    make_dataset=single_image_dataset(
        SimCLRAugmentation(
            IMAGE_SIZE, crop_scale=(0.2, 1.0), jitter_p=0.0, grayscale_p=0.0
        )
    ),
    fixed_inputs=crops,
    bad_inputs=bad_inputs,
    metrics=("reconstruction_loss", "codebook_usage", "perplexity"),
)
