"""Tests for the weighted k-NN evaluation."""

import math

import numpy as np
import pytest

from keras_ssl.evaluation import knn_accuracy, knn_predict


def brute_force_knn(train, labels, queries, num_classes, k, temperature):
    """One query at a time, with Python loops and a full sort.

    Neighbours are ordered by decreasing cosine similarity, then increasing
    training index; class vote ties go to the lowest class id.
    """
    k = min(k, len(train))
    predictions = []
    for query in queries:
        query_norm = math.sqrt(sum(float(v) * float(v) for v in query))
        scored = []
        for index, point in enumerate(train):
            point_norm = math.sqrt(sum(float(v) * float(v) for v in point))
            dot = sum(float(a) * float(b) for a, b in zip(query, point))
            scored.append((-dot / (query_norm * point_norm), index))
        scored.sort()
        votes = [0.0] * num_classes
        for negative_similarity, index in scored[:k]:
            similarity = -negative_similarity
            votes[labels[index]] += math.exp(similarity / temperature)
        best = 0
        for label in range(1, num_classes):
            if votes[label] > votes[best]:
                best = label
        predictions.append(best)
    return np.array(predictions)


@pytest.mark.parametrize(
    "k, temperature", [(1, 0.07), (5, 0.07), (20, 0.5), (50, 0.02)]
)
def test_matches_brute_force_on_random_features(k, temperature):
    rng = np.random.default_rng(k)
    train = rng.normal(size=(120, 6)).astype("float32")
    labels = rng.integers(0, 5, size=120)
    queries = rng.normal(size=(40, 6)).astype("float32")
    expected = brute_force_knn(train, labels, queries, 5, k, temperature)
    predicted = knn_predict(
        train, labels, queries, num_classes=5, k=k, temperature=temperature,
        chunk_size=16,
    )
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, expected)


def test_ties_between_neighbours_and_between_classes():
    e1, e2 = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    # Four training points exactly as similar to the query e1.
    train = np.array([e2, e1, e1, e1, e1], dtype="float32")
    labels = np.array([0, 2, 1, 1, 2])
    query = np.array([e1], dtype="float32")
    for k in range(1, 6):
        expected = brute_force_knn(train, labels, query, 3, k, 0.07)
        predicted = knn_predict(train, labels, query, num_classes=3, k=k)
        np.testing.assert_array_equal(predicted, expected)
    # k=2: the tied neighbours with the lowest indices (1, 2) vote once for
    # classes 2 and 1; the class tie goes to the lowest id.
    assert knn_predict(train, labels, query, num_classes=3, k=2)[0] == 1
    # k=3: indices 1, 2, 3 vote 2, 1, 1.
    assert knn_predict(train, labels, query, num_classes=3, k=3)[0] == 1
    # k=4: indices 1..4 vote 2, 1, 1, 2: a tie again, won by class 1.
    assert knn_predict(train, labels, query, num_classes=3, k=4)[0] == 1


def test_k_larger_than_training_set_is_clipped():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(7, 4))
    labels = rng.integers(0, 3, size=7)
    queries = rng.normal(size=(9, 4))
    clipped = knn_predict(train, labels, queries, num_classes=3, k=7)
    np.testing.assert_array_equal(
        knn_predict(train, labels, queries, num_classes=3, k=100), clipped
    )
    np.testing.assert_array_equal(
        clipped, brute_force_knn(train, labels, queries, 3, 100, 0.07)
    )


def test_chunking_does_not_change_predictions():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(50, 8))
    labels = rng.integers(0, 4, size=50)
    queries = rng.normal(size=(33, 8))
    whole = knn_predict(train, labels, queries, num_classes=4, k=7)
    for chunk_size in (1, 5, 32, 33):
        np.testing.assert_array_equal(
            knn_predict(
                train, labels, queries, num_classes=4, k=7,
                chunk_size=chunk_size,
            ),
            whole,
        )


def test_small_temperature_does_not_overflow():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(60, 8))
    labels = rng.integers(0, 3, size=60)
    queries = rng.normal(size=(20, 8))
    np.testing.assert_array_equal(
        knn_predict(train, labels, queries, num_classes=3, k=10,
                    temperature=1e-3),
        brute_force_knn(train, labels, queries, 3, 1, 1.0),
    )


def test_separable_toy_set_is_perfect():
    rng = np.random.default_rng(6)
    centers = 10.0 * np.eye(4, 16)
    y_train = rng.integers(0, 4, size=200)
    y_test = rng.integers(0, 4, size=80)
    x_train = centers[y_train] + rng.normal(size=(200, 16))
    x_test = centers[y_test] + rng.normal(size=(80, 16))
    assert knn_accuracy(x_train, y_train, x_test, y_test) == 1.0
    # Column labels (N, 1) are accepted too.
    accuracy = knn_accuracy(x_train, y_train[:, None], x_test, y_test[:, None])
    assert accuracy == 1.0


def test_invalid_inputs():
    features = np.eye(3)
    with pytest.raises(ValueError, match="Labels must be in"):
        knn_predict(features, [0, 1, 3], features, num_classes=3)
    with pytest.raises(ValueError, match="one-hot"):
        knn_predict(features, np.eye(3), features, num_classes=3)
    with pytest.raises(ValueError, match="NaN"):
        knn_predict(features * np.nan, [0, 1, 2], features, num_classes=3)
