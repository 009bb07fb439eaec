"""Linear probe: a logistic regression trained on frozen features."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from keras_ssl.evaluation.features import extract_features


def linear_probe_accuracy(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    C: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Test accuracy of a multinomial logistic regression on frozen features.

    Features are standardised with the mean and standard deviation of the
    training features, then scikit-learn's `LogisticRegression` (L-BFGS,
    multinomial loss, L2 penalty of strength `1 / C`) is fitted on the
    training set and scored on the test set.

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation import linear_probe_accuracy

    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 100)
    x_train = np.eye(3, 8)[y_train] * 5 + rng.normal(size=(300, 8))
    x_test = np.eye(3, 8)[y_test] * 5 + rng.normal(size=(100, 8))
    linear_probe_accuracy(x_train, y_train, x_test, y_test)  # ~1.0
    ```

    Args:
        train_features: Array `(N, D)` of training features.
        train_labels: Integer class ids `(N,)`.
        test_features: Array `(M, D)` of test features.
        test_labels: Integer class ids `(M,)`.
        C: Inverse L2 regularisation strength (scikit-learn's convention).
        max_iter: Maximum number of L-BFGS iterations.

    Returns:
        The fraction of test features classified correctly.
    """
    train_features = np.asarray(train_features, dtype=np.float32)
    test_features = np.asarray(test_features, dtype=np.float32)
    train_labels = np.asarray(train_labels).reshape(-1)
    test_labels = np.asarray(test_labels).reshape(-1)
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise ValueError(
            "Features must have shape (N, D); got "
            f"{train_features.shape} and {test_features.shape}."
        )
    if len(np.unique(train_labels)) < 2:
        raise ValueError("The training labels must hold at least 2 classes.")
    scaler = StandardScaler().fit(train_features)
    classifier = LogisticRegression(C=C, max_iter=max_iter)
    classifier.fit(scaler.transform(train_features), train_labels)
    test_features = scaler.transform(test_features)
    return float(classifier.score(test_features, test_labels))


def evaluate_linear_probe(
    encoder: keras.Model,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    C: float = 1.0,
    max_iter: int = 1000,
    batch_size: int = 256,
) -> float:
    """Linear-probe accuracy of an encoder: extract features, then probe.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_ssl.evaluation import evaluate_linear_probe

    encoder = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16)
    ])
    x = np.random.rand(64, 8, 8, 1).astype("float32")
    y = np.random.randint(0, 4, 64)
    evaluate_linear_probe(encoder, x[:48], y[:48], x[48:], y[48:])
    ```

    Args:
        encoder: A `keras.Model` mapping images to features (see
            `extract_features` for the accepted output ranks).
        x_train: Training images.
        y_train: Integer class ids of `x_train`.
        x_test: Test images.
        y_test: Integer class ids of `x_test`.
        C: Inverse L2 regularisation strength.
        max_iter: Maximum number of L-BFGS iterations.
        batch_size: Images per forward pass of the encoder.

    Returns:
        The linear-probe accuracy on the test images.
    """
    return linear_probe_accuracy(
        extract_features(encoder, x_train, batch_size=batch_size),
        y_train,
        extract_features(encoder, x_test, batch_size=batch_size),
        y_test,
        C=C,
        max_iter=max_iter,
    )
