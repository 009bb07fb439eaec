"""fine_tune_accuracy: end-to-end fine-tuning of a copy of an encoder."""

import keras
import numpy as np
import pytest

from keras_ssl.evaluation import copy_encoder, fine_tune_accuracy


def _separable(n, seed):
    """Noisy images whose class is their brightness level (one of 4)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, 8, 8, 1)) * 0.4 + 0.2 * y[:, None, None, None]
    return x.astype("float32"), y


def _encoder():
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, padding="same",
                                                     activation="relu")],
        name="conv_encoder",
    )


def test_learns_a_separable_task_and_leaves_the_encoder_alone():
    x_train, y_train = _separable(256, 0)
    x_test, y_test = _separable(128, 1)
    encoder = _encoder()
    before = [w.copy() for w in encoder.get_weights()]
    accuracy = fine_tune_accuracy(encoder, x_train, y_train, x_test, y_test,
                                  epochs=15, batch_size=32, learning_rate=1e-2)
    assert accuracy > 0.6  # chance is 0.25; feature maps are pooled
    for a, b in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_same_encoder_and_seed_give_the_same_accuracy():
    x, y = _separable(96, 2)
    args = (x[:64], y[:64], x[64:], y[64:])
    keras.utils.set_random_seed(5)
    encoder = _encoder()
    a = fine_tune_accuracy(encoder, *args, epochs=2, seed=3)
    keras.utils.set_random_seed(99)  # fine_tune_accuracy seeds itself
    b = fine_tune_accuracy(encoder, *args, epochs=2, seed=3)
    assert a == b


def test_copy_encoder_copies_values_not_variables():
    encoder = _encoder()
    copy = copy_encoder(encoder)
    assert copy is not encoder and copy.trainable
    for a, b in zip(encoder.weights, copy.weights):
        assert a is not b
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))


def test_clear_errors():
    x, y = _separable(16, 0)
    with pytest.raises(ValueError, match="as many"):
        fine_tune_accuracy(_encoder(), x, y[:3], x, y)
    with pytest.raises(ValueError, match="non-empty"):
        fine_tune_accuracy(_encoder(), x[:0], y[:0], x, y)
    with pytest.raises(ValueError, match="epochs"):
        fine_tune_accuracy(_encoder(), x, y, x, y, epochs=0)
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Reshape((4, 2, 8, 1))])
    with pytest.raises(ValueError, match="rank 2, 3 or 4"):
        fine_tune_accuracy(flat, x, y, x, y, epochs=1)
