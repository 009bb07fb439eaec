"""Feature extraction with a trained encoder, for the evaluation protocols.

Images are embedded chunk by chunk: only `16 * batch_size` images (and their
unpooled feature maps) are in memory at once, so an array on disk
(`np.load(..., mmap_mode="r")`) or a `tf.data.Dataset` that streams a large
data set is never loaded whole; only the pooled `(N, D)` features are kept.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.layers.vit import prefix_tokens

# Batches per `predict` call: feature maps are pooled chunk by chunk, so that
# the unpooled maps of a whole data set (gigabytes for a ViT's tokens) never
# sit in memory at once, while each `predict` call (which has a fixed cost)
# still covers several batches.
_BATCHES_PER_CHUNK = 16


def _pool(features: Any, prefix_tokens: int = 0) -> np.ndarray:
    """Average-pools `(N, H, W, D)` maps and `(N, T, D)` tokens (after the
    `prefix_tokens` leading ones, e.g. a ViT's class token) to `(N, D)`."""
    if isinstance(features, (dict, list, tuple)):
        raise ValueError(
            "The encoder must return a single tensor of features; got a "
            f"{type(features).__name__}. Wrap it in a keras.Model that "
            "returns one output."
        )
    features = np.asarray(features)
    if features.ndim == 3:
        features = features[:, prefix_tokens:].mean(axis=1)
    elif features.ndim == 4:
        features = features.mean(axis=(1, 2))
    elif features.ndim != 2:
        raise ValueError(
            "The encoder must return features of rank 2 (N, D), 3 (N, tokens, "
            f"D) or 4 (N, H, W, D); got shape {features.shape}."
        )
    return features.astype(np.float32, copy=False)


def _to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (0-255) become float32 in [0, 1], as in the view
    pipelines (`keras_ssl.data`) the encoder was trained on; anything else
    is passed to the encoder unchanged."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images


def _dataset_parts(dataset: tf.data.Dataset, with_labels: bool):
    """Checks a dataset's element structure; returns the index of the
    images and of the labels (None without labels) in each element."""
    spec = dataset.element_spec
    if isinstance(spec, tf.TensorSpec):
        if with_labels:
            raise ValueError(
                "`extract_features_and_labels` needs a dataset of `(images, "
                f"labels)` batches; got element_spec {spec} (images only: "
                "use `extract_features`)."
            )
        return None, None
    if (
        isinstance(spec, (tuple, list))
        and len(spec) in (2, 3)
        and all(isinstance(part, tf.TensorSpec) for part in spec)
    ):
        return 0, 1
    raise ValueError(
        "The dataset must yield batches of images, or `(images, labels)` "
        f"tuples of tensors; got element_spec {spec}."
    )


def check_labelled_dataset(dataset: Any, name: str = "dataset") -> None:
    """Raises a ValueError unless `dataset` is a finite `tf.data.Dataset` of
    `(images, labels)` batches (checked on its element_spec, nothing is
    read): callers that embed it later fail at once instead."""
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"The {name} must be a `tf.data.Dataset` of `(images, labels)` "
            f"batches; got {type(dataset).__name__}."
        )
    try:
        _dataset_parts(dataset, with_labels=True)
    except ValueError as error:
        raise ValueError(f"The {name}: {error}") from None
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            f"The {name} is infinite (`.repeat()` without a count): "
            "features are extracted from one pass over a finite dataset."
        )


def _check_batched(encoder: keras.Model, images_spec: tf.TensorSpec) -> None:
    """Fails clearly when a dataset of single images was not batched."""
    rank = images_spec.shape.rank
    inputs = getattr(encoder, "inputs", None)
    try:
        expected = len(inputs[0].shape) if inputs else None
    except (AttributeError, TypeError, IndexError, KeyError):
        expected = None
    if rank is not None and expected is not None and rank == expected - 1:
        raise ValueError(
            f"The dataset yields single images of shape "
            f"{images_spec.shape.as_list()}; the encoder takes batches of "
            f"rank {expected}. Batch the dataset first "
            "(`dataset.batch(256)`)."
        )


def _dataset_chunks(
    dataset: tf.data.Dataset, encoder: keras.Model, with_labels: bool
) -> Iterator[tuple[np.ndarray, np.ndarray | None, int, int]]:
    """Yields `(images, labels or None, batches, batch_size)` for chunks of
    `_BATCHES_PER_CHUNK` consecutive batches of the dataset."""
    images_at, labels_at = _dataset_parts(dataset, with_labels)
    spec = dataset.element_spec
    _check_batched(encoder, spec if images_at is None else spec[images_at])
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The dataset is infinite (`.repeat()` without a count): "
            "features are extracted from one pass over a finite dataset."
        )
    images, labels, batch_size = [], [], 0
    for element in dataset.as_numpy_iterator():
        batch = element if images_at is None else element[images_at]
        batch_size = max(batch_size, len(batch))
        images.append(batch)
        if labels_at is not None:
            labels.append(np.asarray(element[labels_at]))
        if len(images) == _BATCHES_PER_CHUNK:
            yield _join(images, labels, labels_at) + (len(images), batch_size)
            images, labels = [], []
    if images:
        yield _join(images, labels, labels_at) + (len(images), batch_size)


def _join(images, labels, labels_at):
    joined = np.concatenate(images, axis=0)
    return joined, (None if labels_at is None else np.concatenate(labels))


def _embed(
    encoder: keras.Model,
    images: Any,
    batch_size: int,
    verbose: int,
    with_labels: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1; got {batch_size!r}.")
    prefix = prefix_tokens(encoder)
    if isinstance(images, tf.data.Dataset):
        cardinality = int(images.cardinality())
        target = cardinality if cardinality >= 0 else None
        chunks = _dataset_chunks(images, encoder, with_labels)
    elif hasattr(images, "shape") and hasattr(images, "__getitem__"):
        if with_labels:
            raise ValueError(
                "`extract_features_and_labels` takes a `tf.data.Dataset` of "
                "`(images, labels)` batches; for arrays, call "
                "`extract_features(encoder, images)` and keep your labels."
            )
        target = math.ceil(len(images) / batch_size)
        chunk = batch_size * _BATCHES_PER_CHUNK
        chunks = (
            (
                np.asarray(images[start : start + chunk]),
                None,
                math.ceil(min(chunk, len(images) - start) / batch_size),
                batch_size,
            )
            for start in range(0, len(images), chunk)
        )
    else:
        if with_labels:
            raise ValueError(
                "`extract_features_and_labels` takes a `tf.data.Dataset` of "
                f"`(images, labels)` batches; got {type(images).__name__}."
            )
        # Anything else `predict` accepts (a generator, a PyDataset): one
        # `predict` call, which holds all its outputs in memory.
        return _pool(encoder.predict(images, verbose=verbose), prefix), None

    progress = keras.utils.Progbar(target, unit_name="batch") if verbose else None
    features, labels = [], []
    for chunk_images, chunk_labels, batches, chunk_batch_size in chunks:
        features.append(
            _pool(
                encoder.predict(
                    _to_float(chunk_images),
                    batch_size=chunk_batch_size,
                    verbose=0,
                ),
                prefix,
            )
        )
        if chunk_labels is not None:
            labels.append(chunk_labels)
        if progress is not None:
            progress.add(batches)
    if not features:
        raise ValueError("`images` is empty: there is nothing to embed.")
    features = np.concatenate(features, axis=0)
    if not with_labels:
        return features, None
    labels = np.concatenate(labels, axis=0)
    if len(labels) != len(features):
        raise ValueError(
            f"The dataset yielded {len(labels)} labels for {len(features)} "
            "images."
        )
    return features, labels


def extract_features(
    encoder: keras.Model, images: Any, batch_size: int = 256, verbose: int = 0
) -> np.ndarray:
    """Runs `encoder` over `images` and returns one feature vector per image.

    The encoder runs in inference mode (`encoder.predict`, so batch norm uses
    its moving statistics). Feature maps of rank 4 (e.g. a keras-hub
    `ResNetBackbone`) are average-pooled over space and token sequences of
    rank 3 (e.g. a ViT) are averaged over tokens. The images are embedded
    chunk by chunk (16 batches at a time): an array opened with
    `np.load(path, mmap_mode="r")` or a streaming `tf.data.Dataset` is never
    in memory whole, only the `(N, D)` features are.

    uint8 images (0-255) are converted to float32 in `[0, 1]`, the range the
    `keras_ssl.data` view pipelines feed the encoder during pretraining;
    other dtypes reach the encoder unchanged.

    Example:

    ```python
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_ssl.evaluation import extract_features

    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, strides=2),
    ])
    images = np.random.rand(10, 32, 32, 3).astype("float32")
    extract_features(encoder, images).shape  # (10, 16)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
    extract_features(encoder, dataset).shape  # (10, 16)
    ```

    Args:
        encoder: A `keras.Model` mapping a batch of images to features.
        images: An array of images `(N, ...)` (NumPy, or anything sliceable
            with a `shape`, such as a memory-mapped array), or a finite,
            batched `tf.data.Dataset` of image batches or of `(images,
            labels)` batches (the labels are ignored: to keep them, use
            `extract_features_and_labels`). Other inputs `encoder.predict`
            accepts (generators, a `keras.utils.PyDataset`) go to one
            `predict` call, which holds all the encoder's outputs at once.
        batch_size: Images per forward pass for arrays (datasets are already
            batched).
        verbose: 1 for a Keras progress bar over the batches, 0 for silence.

    Returns:
        A float32 array of shape `(N, D)`.
    """
    return _embed(encoder, images, batch_size, verbose, with_labels=False)[0]


def extract_features_and_labels(
    encoder: keras.Model, dataset: tf.data.Dataset, verbose: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Embeds a labelled dataset batch by batch; returns features and labels.

    The counterpart of `extract_features` for a finite, batched
    `tf.data.Dataset` of `(images, labels)` (or `(images, labels,
    sample_weights)`) batches: the labels are collected in the order of the
    features, so a shuffled dataset still pairs each feature with its label.
    The same conversions apply (inference mode, pooling of feature maps and
    tokens, uint8 images to float32 in `[0, 1]`).

    Example:

    ```python
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_ssl.evaluation import extract_features_and_labels

    encoder = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4)
    ])
    images = np.random.randint(0, 256, (10, 8, 8, 3), dtype="uint8")
    labels = np.arange(10) % 3
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    features, labels = extract_features_and_labels(encoder, dataset)
    features.shape, labels.shape  # ((10, 4), (10,))
    ```

    Args:
        encoder: A `keras.Model` mapping a batch of images to features.
        dataset: A finite `tf.data.Dataset` of `(images, labels)` batches.
        verbose: 1 for a Keras progress bar over the batches, 0 for silence.

    Returns:
        `(features, labels)`: a float32 array `(N, D)` and the labels as the
        dataset holds them (`(N,)` class ids, typically).
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`extract_features_and_labels` takes a `tf.data.Dataset` of "
            f"`(images, labels)` batches; got {type(dataset).__name__}."
        )
    return _embed(encoder, dataset, 1, verbose, with_labels=True)


def features_and_labels(
    encoder: keras.Model,
    images: Any,
    labels: Any,
    batch_size: int = 256,
    name: str = "x",
) -> tuple[np.ndarray, np.ndarray]:
    """Features of labelled images given either way the evaluations take
    them: an array of images with `labels`, or a `tf.data.Dataset` of
    `(images, labels)` batches with `labels=None`."""
    if isinstance(images, tf.data.Dataset):
        if labels is not None:
            raise ValueError(
                f"`{name}` is a dataset, which carries its labels: pass its "
                "labels as None (a dataset of `(images, labels)` batches)."
            )
        return extract_features_and_labels(encoder, images)
    if labels is None:
        raise ValueError(
            f"`{name}` is an array: its labels are needed too (or pass a "
            "`tf.data.Dataset` of `(images, labels)` batches)."
        )
    return extract_features(encoder, images, batch_size=batch_size), labels


def check_labels(labels: Any, num_items: int, name: str) -> np.ndarray:
    """`labels` as int64 class ids `(N,)` (a `(N, 1)` column is flattened),
    checked to be one per feature; `name` names them in errors."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"`{name}` must be integer class ids of shape (N,); got shape "
            f"{labels.shape} (one-hot labels: use `labels.argmax(-1)`)."
        )
    if len(labels) != num_items:
        raise ValueError(
            f"`{name}` has {len(labels)} labels for {num_items} features."
        )
    return labels.astype(np.int64)
