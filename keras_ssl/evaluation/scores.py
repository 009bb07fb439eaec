"""The two frozen-feature scores every representation gets: k-NN and
linear probe."""

from __future__ import annotations

from typing import Any

from keras_ssl.evaluation.knn import knn_accuracy
from keras_ssl.evaluation.linear_probe import linear_probe_accuracy


def feature_scores(train: Any, y_train: Any, test: Any, y_test: Any,
                   num_classes: int | None = None) -> dict:
    """`{"knn_accuracy", "linear_probe_accuracy"}` of frozen features:
    `knn_accuracy` (weighted k-NN, k=20) and `linear_probe_accuracy`
    (logistic regression on standardised features), trained on `(train,
    y_train)` and scored on `(test, y_test)`.

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation import feature_scores
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = np.eye(3)[y] + 0.1 * rng.normal(size=(90, 3))
    feature_scores(x[:60], y[:60], x[60:], y[60:])  # both near 1.0
    ```
    """
    return {
        "knn_accuracy": knn_accuracy(train, y_train, test, y_test,
                                     num_classes=num_classes),
        "linear_probe_accuracy": linear_probe_accuracy(train, y_train, test, y_test),
    }
