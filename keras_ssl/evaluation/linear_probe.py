"""Linear probe: a logistic regression trained on frozen features.

Two solvers fit the same model (multinomial logistic regression on
standardised features, with an L2 penalty of strength `1 / C`): scikit-learn's
L-BFGS on the host, exact and fast on small data, and a Keras `Dense` layer
trained with mini-batch SGD (momentum, cosine schedule) on the backend's
device, which scales to millions of features.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from keras_ssl.evaluation.features import check_labels, features_and_labels

SOLVERS = ("auto", "lbfgs", "keras")
# `solver="auto"` uses L-BFGS up to this many training features and dims.
LBFGS_MAX_EXAMPLES = 20_000
LBFGS_MAX_DIMS = 4096
# Rows at a time when standardising: float64 statistics without a float64
# copy of the whole training set.
_STATS_CHUNK = 65_536


def _as_features(features: Any, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"`{name}` must have shape (N, D); got {features.shape}.")
    return features


def _mean_and_variance(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and variance, accumulated in float64 by chunks
    around a shift (the first rows' mean), as StandardScaler computes them;
    constant dimensions get variance 1 (they are only centred)."""
    shift = features[: min(len(features), 1024)].mean(axis=0, dtype=np.float64)
    total = np.zeros(features.shape[1])
    squares = np.zeros(features.shape[1])
    for start in range(0, len(features), _STATS_CHUNK):
        centred = features[start : start + _STATS_CHUNK] - shift
        total += centred.sum(axis=0)
        squares += np.square(centred).sum(axis=0)
    mean = total / len(features)
    variance = np.maximum(squares / len(features) - np.square(mean), 0.0)
    variance[variance <= 1e-12 * np.maximum(1.0, np.square(shift))] = 1.0
    return shift + mean, variance


def _shuffled_batches(features, labels, batch_size, epochs, seed):
    """Mini-batches of `(features, labels)`, epoch after epoch, each epoch
    in a fresh permutation drawn from `seed` (reproducible, and without the
    global random state). A generator is read in order whatever `fit`
    prefetches, so the batches do not depend on timing."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(features))
        for start in range(0, len(features), batch_size):
            rows = np.sort(order[start : start + batch_size])
            yield features[rows], labels[rows]


def _keras_probe(
    train, train_labels, test, num_classes, C, epochs, batch_size,
    learning_rate, seed, verbose,
):
    """Fits the probe with Keras; returns the predicted test classes."""
    num_items, dims = train.shape
    mean, variance = _mean_and_variance(train)
    steps = epochs * math.ceil(num_items / batch_size)
    if learning_rate is None:
        learning_rate = 0.1 * batch_size / 256  # the linear scaling rule
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    # scikit-learn minimises sum(losses) + |W|^2 / (2 C); per example that is
    # mean(losses) + l2 |W|^2 with l2 = 1 / (2 C N). The bias is free, as
    # there. Zero weights: the same start as L-BFGS, and no random init.
    probe = keras.Sequential(
        [
            keras.Input((dims,)),
            keras.layers.Normalization(mean=mean, variance=variance),
            keras.layers.Dense(
                num_classes,
                kernel_initializer="zeros",
                kernel_regularizer=keras.regularizers.L2(1.0 / (2 * C * num_items)),
            ),
        ],
        name="linear_probe",
    )
    probe.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    steps_per_epoch = math.ceil(num_items / batch_size)
    probe.fit(
        _shuffled_batches(
            train, train_labels.astype(np.int32), batch_size, epochs, seed
        ),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # the generator shuffles, from `seed`
        verbose=verbose,
    )
    logits = probe.predict(test, batch_size=max(batch_size, 4096), verbose=0)
    return np.asarray(logits).argmax(axis=1)


def linear_probe_accuracy(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    C: float = 1.0,
    max_iter: int = 1000,
    solver: str = "auto",
    epochs: int = 30,
    batch_size: int = 256,
    learning_rate: float | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> float:
    """Test accuracy of a multinomial logistic regression on frozen features.

    Features are standardised with the mean and standard deviation of the
    training features; a multinomial logistic regression with an L2 penalty
    of strength `1 / C` on its weights (scikit-learn's convention) is fitted
    on the training set and scored on the test set. Two solvers minimise
    this same objective:

    - `"lbfgs"`: scikit-learn's `LogisticRegression` (L-BFGS, at most
      `max_iter` iterations) on the host: exact, and fast for small data.
    - `"keras"`: a `Dense` layer (after a `Normalization` layer holding the
      training statistics) trained by `fit` on the backend's device, from
      zero weights, with mini-batches of `batch_size` in a seeded shuffle,
      for `epochs` epochs of SGD with Nesterov momentum 0.9 and a cosine
      learning-rate decay to 0 (the linear evaluation of SimCLR, DINO,
      solo-learn and lightly). Memory and time grow linearly with the data,
      so it scales to ImageNet-sized feature sets.
    - `"auto"` (default): `"lbfgs"` up to `LBFGS_MAX_EXAMPLES` (20,000)
      training features of at most `LBFGS_MAX_DIMS` (4096) dims, `"keras"`
      above.

    The Keras probe is deterministic for a given `seed` (on CPU; GPU kernels
    may add their own nondeterminism); it uses no global random state.

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation import linear_probe_accuracy

    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 100)
    x_train = np.eye(3, 8)[y_train] * 5 + rng.normal(size=(300, 8))
    x_test = np.eye(3, 8)[y_test] * 5 + rng.normal(size=(100, 8))
    linear_probe_accuracy(x_train, y_train, x_test, y_test)  # ~1.0
    linear_probe_accuracy(x_train, y_train, x_test, y_test, solver="keras",
                          epochs=10, batch_size=32)  # ~1.0
    ```

    Args:
        train_features: Array `(N, D)` of training features.
        train_labels: Integer class ids `(N,)`.
        test_features: Array `(M, D)` of test features.
        test_labels: Integer class ids `(M,)`.
        C: Inverse L2 regularisation strength (scikit-learn's convention),
            for both solvers.
        max_iter: Maximum number of L-BFGS iterations (`"lbfgs"`).
        solver: `"auto"`, `"lbfgs"` or `"keras"` (see above).
        epochs: Passes over the training features (`"keras"`).
        batch_size: Features per mini-batch (`"keras"`).
        learning_rate: Peak learning rate of SGD (`"keras"`); by default
            `0.1 * batch_size / 256`.
        seed: Seed of the mini-batch shuffle (`"keras"`).
        verbose: `fit`'s verbosity (`"keras"`): 0 silent, 1 progress bar,
            2 one line per epoch.

    Returns:
        The fraction of test features classified correctly.
    """
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {SOLVERS}; got {solver!r}.")
    if C <= 0:
        raise ValueError(f"`C` must be > 0; got {C}.")
    train_features = _as_features(train_features, "train_features")
    test_features = _as_features(test_features, "test_features")
    train_labels = check_labels(train_labels, len(train_features), "train_labels")
    test_labels = check_labels(test_labels, len(test_features), "test_labels")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            "Training and test features have different sizes: "
            f"{train_features.shape[1]} and {test_features.shape[1]}."
        )
    if len(np.unique(train_labels)) < 2:
        raise ValueError("The training labels must hold at least 2 classes.")
    if solver == "auto":
        num_items, dims = train_features.shape
        small = num_items <= LBFGS_MAX_EXAMPLES and dims <= LBFGS_MAX_DIMS
        solver = "lbfgs" if small else "keras"
    if solver == "lbfgs":
        scaler = StandardScaler().fit(train_features)
        classifier = LogisticRegression(C=C, max_iter=max_iter)
        classifier.fit(scaler.transform(train_features), train_labels)
        test_features = scaler.transform(test_features)
        return float(classifier.score(test_features, test_labels))

    if not np.issubdtype(train_labels.dtype, np.integer) or train_labels.min() < 0:
        raise ValueError(
            "The Keras probe needs integer class ids >= 0 as labels; got "
            f"dtype {train_labels.dtype} with minimum {train_labels.min()}."
        )
    if epochs < 1 or batch_size < 1:
        raise ValueError(
            f"Expected epochs >= 1 and batch_size >= 1; got epochs={epochs}, "
            f"batch_size={batch_size}."
        )
    num_classes = int(train_labels.max()) + 1
    predictions = _keras_probe(
        train_features, train_labels, test_features, num_classes, C, epochs,
        batch_size, learning_rate, seed, verbose,
    )
    return float(np.mean(predictions == test_labels))


def evaluate_linear_probe(
    encoder: keras.Model,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    C: float = 1.0,
    max_iter: int = 1000,
    batch_size: int = 256,
    solver: str = "auto",
    epochs: int = 30,
    seed: int = 0,
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
        x_train: Training images: an array, or a `tf.data.Dataset` of
            `(images, labels)` batches.
        y_train: Integer class ids of `x_train`; None when it is a dataset.
        x_test: Test images (array or labelled dataset).
        y_test: Integer class ids of `x_test`; None for a dataset.
        C: Inverse L2 regularisation strength.
        max_iter: Maximum number of L-BFGS iterations.
        batch_size: Images per forward pass of the encoder, for arrays.
        solver: `"auto"`, `"lbfgs"` or `"keras"` (see
            `linear_probe_accuracy`, whose other Keras-probe settings keep
            their defaults here).
        epochs: Epochs of the Keras probe.
        seed: Seed of the Keras probe's shuffle.

    Returns:
        The linear-probe accuracy on the test images.
    """
    train, y_train = features_and_labels(
        encoder, x_train, y_train, batch_size, "x_train"
    )
    test, y_test = features_and_labels(
        encoder, x_test, y_test, batch_size, "x_test"
    )
    return linear_probe_accuracy(
        train, y_train, test, y_test, C=C, max_iter=max_iter, solver=solver,
        epochs=epochs, seed=seed,
    )
