"""Weighted k-nearest-neighbour classification of frozen features.

The protocol of Wu et al. (2018, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination"), used by most self-supervised
papers and by lightly's k-NN benchmark: features are L2-normalised, the `k`
training features most cosine-similar to a query vote for their labels, each
with weight `exp(similarity / temperature)`, and the class with the largest
total wins.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_ssl.evaluation.features import extract_features


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


def _labels(labels: Any, num_items: int, name: str) -> np.ndarray:
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


def knn_predict(
    train_features: Any,
    train_labels: Any,
    query_features: Any,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Predicts labels by a similarity-weighted vote of `k` nearest neighbours.

    Features are L2-normalised and compared by cosine similarity `s`. The `k`
    training features most similar to a query vote for their label with
    weight `exp(s / temperature)`; the prediction is the class with the
    largest total. `k` is clipped to the number of training features.

    Ties are broken deterministically: among training features equally
    similar to the query at the k-th place, those with the lowest index are
    taken; among classes with equal votes, the lowest class id wins. The
    weights are computed as `exp((s - s_max) / temperature)`, which differs
    from `exp(s / temperature)` by a factor common to the whole vote, so the
    prediction is the same but nothing overflows at small temperatures.

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation import knn_predict

    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    knn_predict(train, labels, np.array([[1.0, 0.2], [0.2, 1.0]]),
                num_classes=2, k=2)  # array([0, 1])
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
            similarity matrix held in memory is `chunk_size x N`.

    Returns:
        An int64 array `(M,)` of predicted class ids.
    """
    train = _normalize(train_features, "train_features")
    query = _normalize(query_features, "query_features")
    labels = _labels(train_labels, len(train), "train_labels")
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
    if k < 1 or temperature <= 0 or chunk_size < 1:
        raise ValueError(
            "Expected k >= 1, temperature > 0 and chunk_size >= 1; got "
            f"k={k}, temperature={temperature}, chunk_size={chunk_size}."
        )
    k = min(k, len(train))

    predictions = np.empty(len(query), dtype=np.int64)
    for start in range(0, len(query), chunk_size):
        similarity = query[start : start + chunk_size] @ train.T
        neighbours = _top_k(similarity, k)
        top_similarity = np.take_along_axis(
            similarity, neighbours, axis=1
        ).astype(np.float64)
        weights = np.exp(
            (top_similarity - top_similarity.max(axis=1, keepdims=True))
            / temperature
        )
        votes = np.zeros((len(similarity), num_classes), dtype=np.float64)
        rows = np.arange(len(similarity))
        for j in range(k):
            votes[rows, labels[neighbours[:, j]]] += weights[:, j]
        predictions[start : start + len(similarity)] = votes.argmax(axis=1)
    return predictions


def knn_accuracy(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    num_classes: int | None = None,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
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
        chunk_size: Queries compared with the training set at once.

    Returns:
        The fraction of test features whose label is predicted correctly.
    """
    test_labels = _labels(test_labels, len(test_features), "test_labels")
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
) -> float:
    """k-NN accuracy of an encoder's features: extract, then `knn_accuracy`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_ssl.evaluation import evaluate_knn

    encoder = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16)
    ])
    x = np.random.rand(64, 8, 8, 1).astype("float32")
    y = np.random.randint(0, 4, 64)
    evaluate_knn(encoder, x[:48], y[:48], x[48:], y[48:], k=5)
    ```

    Args:
        encoder: A `keras.Model` mapping images to features (see
            `extract_features` for the accepted output ranks).
        x_train: Training images, the neighbours.
        y_train: Integer class ids of `x_train`.
        x_test: Test images, the queries.
        y_test: Integer class ids of `x_test`.
        num_classes: Number of classes; inferred from the labels by default.
        k: Number of neighbours that vote.
        temperature: Temperature of the vote weights.
        batch_size: Images per forward pass of the encoder.

    Returns:
        The k-NN accuracy on the test images.
    """
    return knn_accuracy(
        extract_features(encoder, x_train, batch_size=batch_size),
        y_train,
        extract_features(encoder, x_test, batch_size=batch_size),
        y_test,
        num_classes=num_classes,
        k=k,
        temperature=temperature,
    )
