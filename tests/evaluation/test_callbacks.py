"""Tests for KNNMonitor."""

import keras
import numpy as np
import pytest

from keras_ssl.evaluation import KNNMonitor, extract_features, knn_accuracy

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = RNG.integers(0, 3, size=64)
X_TRAIN, Y_TRAIN, X_TEST, Y_TEST = X[:48], Y[:48], X[48:], Y[48:]
JIT_COMPILE = keras.backend.backend() != "torch"


class TinySSLModel(keras.Model):
    """A model exposing its encoder, like every keras-ssl model."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(4)], name="encoder"
        )
        self.head = keras.layers.Dense(3)

    def call(self, inputs, training=False):
        return self.head(self.encoder(inputs, training=training))


def compiled_model():
    model = TinySSLModel()
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT_COMPILE,
    )
    return model


class FeatureRecorder(keras.callbacks.Callback):
    """Records what a callback placed after KNNMonitor sees at epoch end."""

    def __init__(self):
        super().__init__()
        self.features, self.accuracies = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.features.append(
            (
                extract_features(self.model.encoder, X_TRAIN),
                extract_features(self.model.encoder, X_TEST),
            )
        )
        self.accuracies.append(logs["knn_accuracy"])


def test_writes_knn_accuracy_into_history():
    model = compiled_model()
    monitor = KNNMonitor(X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, k=5, verbose=0)
    history = model.fit(
        X_TRAIN, Y_TRAIN, batch_size=16, epochs=2, callbacks=[monitor],
        verbose=0,
    )
    accuracies = history.history["knn_accuracy"]
    assert len(accuracies) == 2
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert monitor.evaluated_epochs == [1, 2]
    assert monitor.accuracies == accuracies


def test_sees_the_weights_of_the_epoch_just_trained():
    model = compiled_model()
    initial = extract_features(model.encoder, X_TEST)
    recorder = FeatureRecorder()
    model.fit(
        X_TRAIN, Y_TRAIN, batch_size=16, epochs=2, verbose=0,
        callbacks=[KNNMonitor(X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, k=5,
                              verbose=0),
                   recorder],
    )
    (train_1, test_1), (train_2, test_2) = recorder.features
    # Training moved the weights, and each epoch end saw the moved ones
    # (under JAX, the state `fit` keeps outside the variables was synced).
    assert np.abs(test_1 - initial).max() > 1e-3
    assert np.abs(test_2 - test_1).max() > 1e-3
    np.testing.assert_allclose(
        test_2, extract_features(model.encoder, X_TEST), atol=1e-6
    )
    # The logged accuracies were computed from those very features.
    for (train, test), logged in zip(recorder.features, recorder.accuracies):
        assert logged == knn_accuracy(
            train, Y_TRAIN, test, Y_TEST, num_classes=3, k=5
        )


def test_every_n_epochs_and_the_last_epoch(capsys):
    model = compiled_model()
    encoder_only = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    monitor = KNNMonitor(
        X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, every_n_epochs=2, k=5,
        encoder=encoder_only,
    )
    history = model.fit(
        X_TRAIN, Y_TRAIN, batch_size=16, epochs=3, callbacks=[monitor],
        verbose=0,
    )
    assert monitor.evaluated_epochs == [2, 3]
    assert len(history.history["loss"]) == 3
    assert len(history.history["knn_accuracy"]) == 2
    # The explicit encoder is untrained: its accuracy does not change.
    assert monitor.accuracies[0] == monitor.accuracies[1]
    assert "Epoch 3: knn_accuracy" in capsys.readouterr().out


def test_model_without_encoder_fails_early():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    monitor = KNNMonitor(X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, verbose=0)
    with pytest.raises(ValueError, match="encoder"):
        model.fit(X_TRAIN, np.zeros((48, 3)), epochs=1, verbose=0,
                  callbacks=[monitor])
