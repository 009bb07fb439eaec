"""Tests for the linear probe."""

import keras
import numpy as np

from keras_ssl.evaluation import evaluate_linear_probe, linear_probe_accuracy


def blobs(rng, num_items, num_classes=4, dim=16, spread=1.0):
    labels = rng.integers(0, num_classes, size=num_items)
    centers = 4.0 * np.eye(num_classes, dim)
    return centers[labels] + spread * rng.normal(size=(num_items, dim)), labels


def test_separable_blobs():
    rng = np.random.default_rng(0)
    x_train, y_train = blobs(rng, 400)
    x_test, y_test = blobs(rng, 200)
    # A large offset and scale: the probe standardises its inputs.
    accuracy = linear_probe_accuracy(
        1e3 * x_train + 50.0, y_train, 1e3 * x_test + 50.0, y_test
    )
    assert accuracy > 0.95


def test_random_labels_are_at_chance():
    rng = np.random.default_rng(1)
    x_train = rng.normal(size=(400, 16))
    x_test = rng.normal(size=(400, 16))
    y_train = rng.integers(0, 4, size=400)
    y_test = rng.integers(0, 4, size=400)
    accuracy = linear_probe_accuracy(x_train, y_train, x_test, y_test)
    assert 0.15 < accuracy < 0.35


def test_evaluate_linear_probe_with_an_encoder():
    rng = np.random.default_rng(2)
    x_train, y_train = blobs(rng, 200, dim=12)
    x_test, y_test = blobs(rng, 100, dim=12)
    # An identity encoder returning one token: mean pooling keeps it intact.
    encoder = keras.Sequential(
        [keras.Input((12,)), keras.layers.Reshape((1, 12))]
    )
    accuracy = evaluate_linear_probe(
        encoder,
        x_train.astype("float32"),
        y_train,
        x_test.astype("float32"),
        y_test,
    )
    assert accuracy > 0.95
