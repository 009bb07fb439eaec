"""Feature extraction with a trained encoder, for the evaluation protocols."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

# Images per `predict` call when `images` is an array: feature maps are pooled
# chunk by chunk, so that the unpooled maps of a whole data set (gigabytes for
# a ViT's tokens) never sit in memory at once.
_BATCHES_PER_CHUNK = 16


def _pool(features: Any) -> np.ndarray:
    """Average-pools `(N, H, W, D)` maps and `(N, T, D)` tokens to `(N, D)`."""
    if isinstance(features, (dict, list, tuple)):
        raise ValueError(
            "The encoder must return a single tensor of features; got a "
            f"{type(features).__name__}. Wrap it in a keras.Model that "
            "returns one output."
        )
    features = np.asarray(features)
    if features.ndim in (3, 4):
        features = features.mean(axis=tuple(range(1, features.ndim - 1)))
    elif features.ndim != 2:
        raise ValueError(
            "The encoder must return features of rank 2 (N, D), 3 (N, tokens, "
            f"D) or 4 (N, H, W, D); got shape {features.shape}."
        )
    return features.astype(np.float32, copy=False)


def extract_features(
    encoder: keras.Model, images: Any, batch_size: int = 256
) -> np.ndarray:
    """Runs `encoder` over `images` and returns one feature vector per image.

    The encoder runs in inference mode (`encoder.predict`, so batch norm uses
    its moving statistics). Feature maps of rank 4 (e.g. a keras-hub
    `ResNetBackbone`) are average-pooled over space and token sequences of
    rank 3 (e.g. a ViT) are averaged over tokens.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_ssl.evaluation import extract_features

    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, strides=2),
    ])
    images = np.random.rand(10, 32, 32, 3).astype("float32")
    extract_features(encoder, images).shape  # (10, 16)
    ```

    Args:
        encoder: A `keras.Model` mapping a batch of images to features.
        images: An array of images `(N, ...)`, or anything `encoder.predict`
            accepts (e.g. a batched `tf.data.Dataset` of images).
        batch_size: Images per forward pass (ignored for datasets, which are
            already batched).

    Returns:
        A float32 array of shape `(N, D)`.
    """
    if not hasattr(images, "shape"):
        return _pool(encoder.predict(images, verbose=0))
    chunk = batch_size * _BATCHES_PER_CHUNK
    parts = [
        _pool(
            encoder.predict(
                images[start : start + chunk], batch_size=batch_size, verbose=0
            )
        )
        for start in range(0, len(images), chunk)
    ]
    if not parts:
        raise ValueError("`images` is empty.")
    return np.concatenate(parts, axis=0)
