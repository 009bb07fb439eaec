"""CLIP in the shared harness: a tiny CNN and a tiny causal text Transformer.

The harness hands a method images only, so the case writes each crop's
"caption" itself: three tokens naming the quantised mean red, green and blue
of the crop, between `[SOT]` (2) and `[EOT]` (3). Matching them needs both
encoders to learn something real about the images' colours. Captions from a
trained tokenizer are tested in tests/models/test_clip.py.
"""

import keras_hub
import numpy as np
import tensorflow as tf

from harness import IMAGE_SIZE, MethodCase, tiny_encoder
from keras_ssl.models import CLIP

SEQUENCE_LENGTH = 8
BINS = 4
VOCABULARY_SIZE = 4 + 3 * BINS  # 4 specials + a token per (channel, bin)


def tiny_text_encoder(vocabulary_size=VOCABULARY_SIZE, **kwargs):
    config = dict(
        vocabulary_size=vocabulary_size,
        embedding_dim=16,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=SEQUENCE_LENGTH,
    )
    config.update(kwargs)
    return keras_hub.models.CLIPTextEncoder(**config)


def tiny_clip(**kwargs):
    config = dict(projection_dim=8)
    config.update(kwargs)
    return CLIP(tiny_encoder(), tiny_text_encoder(), **config)


def colour_captions(images):
    """`(B, SEQUENCE_LENGTH)` int32 ids `[SOT] r g b [EOT] [PAD]...` of the
    mean colour of each image (works on NumPy arrays and tf tensors)."""
    means = tf.reduce_mean(tf.convert_to_tensor(images, tf.float32), axis=(1, 2))
    # The images' channel means lie in about [0.2, 0.8]: four bins across it.
    bins = tf.clip_by_value(tf.cast((means - 0.2) / 0.15, tf.int32), 0, BINS - 1)
    tokens = 4 + bins + BINS * tf.range(3)[None]
    batch = tf.shape(tokens)[0]
    ids = tf.concat(
        [
            tf.fill([batch, 1], 2),
            tokens,
            tf.fill([batch, 1], 3),
            tf.zeros([batch, SEQUENCE_LENGTH - 5], tf.int32),
        ],
        axis=1,
    )
    return ids


def make_dataset(images, batch_size):
    def pair(batch):
        crops = tf.image.random_crop(
            batch, [tf.shape(batch)[0], IMAGE_SIZE, IMAGE_SIZE, 3], seed=0
        )
        return ({"images": crops, "token_ids": colour_captions(crops)},)

    return (
        tf.data.Dataset.from_tensor_slices(np.asarray(images, "float32"))
        .shuffle(len(images), seed=0)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .map(pair)
    )


def fixed_inputs(images):
    x = np.asarray(images[:16, 4 : 4 + IMAGE_SIZE, 4 : 4 + IMAGE_SIZE], "float32")
    return {"images": x.copy(), "token_ids": colour_captions(x).numpy()}


def bad_inputs():
    rng = np.random.default_rng(0)
    good = rng.random((4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    ids = colour_captions(good).numpy()
    long_ids = np.concatenate([ids, ids], axis=1)
    return [
        (good, "takes a dict"),
        ({"images": good}, "takes a dict"),
        ({"images": good[..., 0], "token_ids": ids}, "rank 4"),
        ({"images": (good * 255).astype("uint8"), "token_ids": ids}, "float images"),
        ({"images": good, "token_ids": long_ids}, "too long"),  # inside fit
        ({"images": good, "token_ids": ids[:3]}, "one caption per image"),
        ({"images": good, "token_ids": ids.astype("float32")}, "integer batch"),
        ({"images": good[:1], "token_ids": ids[:1]}, "at least 2"),
    ]


CASE = MethodCase(
    name="clip",
    build_model=tiny_clip,
    make_dataset=make_dataset,
    fixed_inputs=fixed_inputs,
    bad_inputs=bad_inputs,
    metrics=("logit_scale", "retrieval_accuracy"),
)
