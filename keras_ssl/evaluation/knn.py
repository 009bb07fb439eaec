"""Weighted k-nearest-neighbour classification of frozen features.

The protocol of Wu et al. (2018, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination"), used by most self-supervised
papers and by lightly's k-NN benchmark: features are L2-normalised, the `k`
training features most cosine-similar to a query vote for their labels, each
with weight `exp(similarity / temperature)`, and the class with the largest
total wins.

Two implementations give the same predictions: NumPy on the host (the
reference) and `keras.ops` on the backend's device (GPU or TPU when there is
one; the default under the TensorFlow, JAX and torch backends). Both
compare the queries with the training features chunk by chunk, so the
similarity matrix in memory stays under 64 MB by default.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_ssl.evaluation.features import check_labels, features_and_labels


def _normalize(features: Any, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (N, D); got {features.shape}."
        )
    if not np.all(np.isfinite(features)):
        raise ValueError(
            f"`{name}` contains NaN or infinite values (did training "
            "diverge?)."
        )
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _top_k(similarity: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest entries of each row; ties: lowest index.

    `argpartition` finds the k-th largest value in linear time; everything
    above it is in, and the slots left are filled with the entries equal to
    it in index order, so the result does not depend on the partition.
    """
    partition = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(similarity, partition, axis=1).min(
        axis=1, keepdims=True
    )
    above = similarity > kth
    at_kth = similarity == kth
    free_slots = k - above.sum(axis=1, keepdims=True)
    selected = above | (at_kth & (np.cumsum(at_kth, axis=1) <= free_slots))
    # Exactly k entries per row are selected; nonzero walks rows in order.
    return np.nonzero(selected)[1].reshape(len(similarity), k)


# Bound on the `chunk x num_train` float32 similarity matrix of one chunk of
# queries, when `chunk_size` is left automatic.
_MAX_CHUNK_BYTES = 64 * 2**20
_MAX_CHUNK_SIZE = 4096
IMPLEMENTATIONS = ("auto", "numpy", "keras")
# Backends where `implementation="auto"` takes the keras.ops path: faster than
# NumPy on CPU too (4-5x on 50,000 x 128 features), and on a GPU or TPU.
_DEVICE_BACKENDS = ("tensorflow", "jax", "torch")


def resolve_implementation(implementation: str) -> str:
    """`"numpy"` or `"keras"`: where `knn_predict` runs for `implementation`
    (ValueError when it is none of `IMPLEMENTATIONS`)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}; got "
            f"{implementation!r}."
        )
    if implementation == "auto":
        return "keras" if keras.backend.backend() in _DEVICE_BACKENDS else "numpy"
    return implementation


def _resolve_chunk_size(chunk_size: int | None, num_train: int) -> int:
    if chunk_size is None:
        return max(
            1, min(_MAX_CHUNK_SIZE, _MAX_CHUNK_BYTES // (4 * num_train))
        )
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(
            f"`chunk_size` must be an int >= 1 or None; got {chunk_size!r}."
        )
    return int(chunk_size)


def _vote(
    top_similarity: np.ndarray,
    top_labels: np.ndarray,
    num_classes: int,
    temperature: float,
) -> np.ndarray:
    """The weighted vote of each query's neighbours: `(M, k)` similarities
    and labels to `(M,)` predictions. Weights are `exp((s - s_max) / T)`, in
    float64; equal votes go to the lowest class id."""
    top_similarity = np.asarray(top_similarity, dtype=np.float64)
    weights = np.exp(
        (top_similarity - top_similarity.max(axis=1, keepdims=True))
        / temperature
    )
    votes = np.zeros((len(weights), num_classes), dtype=np.float64)
    rows = np.arange(len(weights))
    for j in range(weights.shape[1]):
        votes[rows, top_labels[:, j]] += weights[:, j]
    return votes.argmax(axis=1)


def _neighbours_numpy(train, query, k, chunk_size):
    """Yields `(start, top_similarity, neighbour_indices)` per chunk."""
    for start in range(0, len(query), chunk_size):
        similarity = query[start : start + chunk_size] @ train.T
        neighbours = _top_k(similarity, k)
        yield start, np.take_along_axis(similarity, neighbours, axis=1), neighbours


def _neighbours_keras(train, query, k, chunk_size):
    """The same on the backend's device with `keras.ops`: the training
    features are copied there once; each chunk's similarities and top-k are
    computed there and only `(chunk, k)` values come back.

    Backends order ties in `top_k` differently (torch does not prefer the
    lowest index), so rows where training features tie at the k-th place and
    not all of them fit in the top k (duplicate or collapsed features) are
    redone on the host with `_top_k`, from the same similarities: the
    neighbours are then those of the NumPy implementation on every backend.
    """
    ops = keras.ops
    train_t = ops.transpose(ops.convert_to_tensor(train))  # (D, N), once.
    for start in range(0, len(query), chunk_size):
        chunk = ops.convert_to_tensor(query[start : start + chunk_size])
        similarity = ops.matmul(chunk, train_t)
        values, indices = ops.top_k(similarity, k, sorted=False)
        kth = ops.min(values, axis=1, keepdims=True)
        tied_in_row = ops.sum(ops.cast(ops.equal(similarity, kth), "int32"), axis=1)
        tied_in_top = ops.sum(ops.cast(ops.equal(values, kth), "int32"), axis=1)
        values = ops.convert_to_numpy(values)
        indices = ops.convert_to_numpy(indices).astype(np.int64)
        ambiguous = np.flatnonzero(
            ops.convert_to_numpy(ops.greater(tied_in_row, tied_in_top))
        )
        if len(ambiguous):
            rows = ops.convert_to_numpy(
                ops.take(similarity, ops.convert_to_tensor(ambiguous), axis=0)
            )
            indices[ambiguous] = _top_k(rows, k)
            values[ambiguous] = np.take_along_axis(
                rows, indices[ambiguous], axis=1
            )
        yield start, values, indices


def knn_predict(
    train_features: Any,
    train_labels: Any,
    query_features: Any,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int | None = None,
    implementation: str = "auto",
) -> np.ndarray:
    """Predicts labels by a similarity-weighted vote of `k` nearest neighbours.

    Features are L2-normalised and compared by cosine similarity `s`. The `k`
    training features most similar to a query vote for their label with
    weight `exp(s / temperature)`; the prediction is the class with the
    largest total. `k` is clipped to the number of training features.

    The queries are compared with the training set `chunk_size` at a time.
    With `implementation="keras"` the similarities and the top-k run with
    `keras.ops` on the backend's device, GPU or TPU when there is one (the
    training features are copied there once, so they must fit in its
    memory; only the `(chunk, k)` neighbours come back); with `"numpy"`, on
    the host. `"auto"` (default) takes `"keras"` under the TensorFlow, JAX
    and torch backends (it is faster on CPU too) and `"numpy"` otherwise.
    The two share the vote and the tie rules below and give the same
    predictions, up to the rounding of the similarities: a device may round
    differently (e.g. TF32 matrix products on recent NVIDIA GPUs), which can
    swap neighbours whose similarities are within that rounding.

    Ties are broken deterministically: among training features equally
    similar to the query at the k-th place, those with the lowest index are
    taken; among classes with equal votes, the lowest class id wins. The
    weights are computed as
    `exp((s - s_max) / temperature)`, which differs from `exp(s /
    temperature)` by a factor common to the whole vote, so the prediction is
    the same but nothing overflows at small temperatures.

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation import knn_predict

    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    queries = np.array([[1.0, 0.2], [0.2, 1.0]])
    knn_predict(train, labels, queries, num_classes=2, k=2)  # array([0, 1])
    knn_predict(train, labels, queries, num_classes=2, k=2,
                implementation="keras")  # array([0, 1])
    ```

    Args:
        train_features: Array `(N, D)` of training ("memory bank") features.
        train_labels: Integer class ids `(N,)` of the training features.
        query_features: Array `(M, D)` of features to classify.
        num_classes: Number of classes; labels are in `[0, num_classes)`.
        k: Number of neighbours that vote.
        temperature: Temperature of the vote weights; smaller values give the
            nearest neighbours more say.
        chunk_size: Queries compared with the training set at once; the
            similarity matrix held in memory is `chunk_size x N`. By default
            as many as keep it under 64 MB (at most 4096).
        implementation: `"auto"`, `"keras"` or `"numpy"` (see above; use
            `"numpy"` when the training features do not fit in the device's
            memory).

    Returns:
        An int64 array `(M,)` of predicted class ids.
    """
    implementation = resolve_implementation(implementation)
    train = _normalize(train_features, "train_features")
    query = _normalize(query_features, "query_features")
    labels = check_labels(train_labels, len(train), "train_labels")
    if len(train) == 0:
        raise ValueError("`train_features` is empty.")
    if train.shape[1] != query.shape[1]:
        raise ValueError(
            "Training and query features have different sizes: "
            f"{train.shape[1]} and {query.shape[1]}."
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"Labels must be in [0, {num_classes}); got values in "
            f"[{labels.min()}, {labels.max()}]."
        )
    if k < 1 or temperature <= 0:
        raise ValueError(
            "Expected k >= 1 and temperature > 0; got "
            f"k={k}, temperature={temperature}."
        )
    chunk_size = _resolve_chunk_size(chunk_size, len(train))
    k = min(k, len(train))

    predictions = np.empty(len(query), dtype=np.int64)
    neighbours = (
        _neighbours_keras if implementation == "keras" else _neighbours_numpy
    )
    for start, top_similarity, indices in neighbours(
        train, query, k, chunk_size
    ):
        predictions[start : start + len(indices)] = _vote(
            top_similarity, labels[indices], num_classes, temperature
        )
    return predictions


def knn_accuracy(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    num_classes: int | None = None,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int | None = None,
    implementation: str = "auto",
) -> float:
    """Accuracy of `knn_predict` on labelled test features.

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation import knn_accuracy

    rng = np.random.default_rng(0)
    centers = np.eye(3, 8) * 10
    y_train, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 100)
    x_train = centers[y_train] + rng.normal(size=(300, 8))
    x_test = centers[y_test] + rng.normal(size=(100, 8))
    knn_accuracy(x_train, y_train, x_test, y_test)  # 1.0
    ```

    Args:
        train_features: Array `(N, D)` of training features.
        train_labels: Integer class ids `(N,)`.
        test_features: Array `(M, D)` of test features.
        test_labels: Integer class ids `(M,)`.
        num_classes: Number of classes; by default one more than the largest
            label seen in either set.
        k: Number of neighbours that vote.
        temperature: Temperature of the vote weights.
        chunk_size: Queries compared with the training set at once (by
            default, a `chunk x N` similarity matrix under 64 MB).
        implementation: `"auto"`, `"keras"` (on the backend's device) or
            `"numpy"` (see `knn_predict`).

    Returns:
        The fraction of test features whose label is predicted correctly.
    """
    test_labels = check_labels(test_labels, len(test_features), "test_labels")
    if num_classes is None:
        num_classes = int(max(np.max(train_labels), test_labels.max())) + 1
    predictions = knn_predict(
        train_features,
        train_labels,
        test_features,
        num_classes=num_classes,
        k=k,
        temperature=temperature,
        chunk_size=chunk_size,
        implementation=implementation,
    )
    return float(np.mean(predictions == test_labels))


def evaluate_knn(
    encoder: keras.Model,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    num_classes: int | None = None,
    k: int = 20,
    temperature: float = 0.07,
    batch_size: int = 256,
    implementation: str = "auto",
) -> float:
    """k-NN accuracy of an encoder's features: extract, then `knn_accuracy`.

    Example:

    ```python
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_ssl.evaluation import evaluate_knn

    encoder = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16)
    ])
    x = np.random.rand(64, 8, 8, 1).astype("float32")
    y = np.random.randint(0, 4, 64)
    evaluate_knn(encoder, x[:48], y[:48], x[48:], y[48:], k=5)
    # The same from datasets of (images, labels) batches:
    train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    test = tf.data.Dataset.from_tensor_slices((x[48:], y[48:])).batch(16)
    evaluate_knn(encoder, train, None, test, None, k=5)
    ```

    Args:
        encoder: A `keras.Model` mapping images to features (see
            `extract_features` for the accepted output ranks).
        x_train: Training images, the neighbours: an array, or a
            `tf.data.Dataset` of `(images, labels)` batches.
        y_train: Integer class ids of `x_train`; None when `x_train` is a
            dataset.
        x_test: Test images, the queries (array or labelled dataset).
        y_test: Integer class ids of `x_test`; None for a dataset.
        num_classes: Number of classes; inferred from the labels by default.
        k: Number of neighbours that vote.
        temperature: Temperature of the vote weights.
        batch_size: Images per forward pass of the encoder, for arrays.
        implementation: `"auto"`, `"keras"` or `"numpy"` (see `knn_predict`).

    Returns:
        The k-NN accuracy on the test images.
    """
    train, y_train = features_and_labels(
        encoder, x_train, y_train, batch_size, "x_train"
    )
    test, y_test = features_and_labels(
        encoder, x_test, y_test, batch_size, "x_test"
    )
    return knn_accuracy(
        train,
        y_train,
        test,
        y_test,
        num_classes=num_classes,
        k=k,
        temperature=temperature,
        implementation=implementation,
    )
