"""feature_scores: the k-NN and linear probe that every representation gets."""

import numpy as np

from keras_ssl.evaluation import feature_scores, knn_accuracy, linear_probe_accuracy


def test_feature_scores_are_the_knn_and_the_linear_probe():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = (np.eye(3)[y] + 0.5 * rng.normal(size=(90, 3))).astype("float32")
    scores = feature_scores(x[:60], y[:60], x[60:], y[60:], num_classes=3)
    assert scores == {
        "knn_accuracy": knn_accuracy(x[:60], y[:60], x[60:], y[60:], num_classes=3),
        "linear_probe_accuracy": linear_probe_accuracy(x[:60], y[:60], x[60:], y[60:]),
    }
    assert 0.5 < scores["linear_probe_accuracy"] <= 1.0  # chance is 1/3
