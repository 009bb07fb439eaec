"""Tests for extract_features."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.evaluation import extract_features

IMAGES = np.random.default_rng(0).random((70, 8, 8, 3)).astype("float32")


def encoder_with_output_rank(rank):
    layers = {
        2: [keras.layers.Flatten(), keras.layers.Dense(5)],
        3: [keras.layers.Reshape((16, 12)), keras.layers.Dense(5)],
        4: [keras.layers.Conv2D(5, 3, strides=2, padding="same")],
    }[rank]
    return keras.Sequential([keras.Input((8, 8, 3))] + layers)


@pytest.mark.parametrize("rank", [2, 3, 4])
def test_pools_feature_maps_and_tokens(rank):
    encoder = encoder_with_output_rank(rank)
    raw = np.asarray(encoder.predict(IMAGES, verbose=0))
    assert raw.ndim == rank
    expected = raw.mean(axis=tuple(range(1, rank - 1))) if rank > 2 else raw

    # batch_size=4 splits the 70 images into chunks of 64 and 6.
    features = extract_features(encoder, IMAGES, batch_size=4)
    assert features.shape == (70, 5)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_accepts_a_dataset():
    encoder = encoder_with_output_rank(4)
    dataset = tf.data.Dataset.from_tensor_slices(IMAGES).batch(16)
    np.testing.assert_allclose(
        extract_features(encoder, dataset),
        extract_features(encoder, IMAGES),
        rtol=1e-5,
        atol=1e-6,
    )


def test_rejects_other_ranks():
    encoder = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Reshape((2, 4, 8, 3, 1))]
    )
    with pytest.raises(ValueError, match="rank 2"):
        extract_features(encoder, IMAGES)
