"""wav2vec 2.0's positional convolution, plain and weight-normalised, against
a NumPy reference."""

import keras
import numpy as np
import pytest
from scipy.special import erf

from keras_ssl.layers.wav2vec2 import PositionalConvEmbedding


def _reference(x, mask, kernel, bias, groups):
    """`x + gelu(grouped "same" conv(x · mask))` in NumPy (odd kernels)."""
    x = x * mask[:, :, None]
    k, per_group, dim = kernel.shape
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    out = np.zeros_like(x)
    step = dim // groups
    for g in range(groups):
        inputs = padded[:, :, g * per_group:(g + 1) * per_group]
        for t in range(x.shape[1]):
            window = inputs[:, t:t + k, :]  # (B, k, per_group)
            out[:, t, g * step:(g + 1) * step] = np.einsum(
                "bki,kio->bo", window, kernel[:, :, g * step:(g + 1) * step])
    y = out + bias
    return x + 0.5 * y * (1.0 + erf(y / np.sqrt(2.0)))


@pytest.mark.parametrize("weight_norm", [False, True])
def test_positional_conv_matches_a_grouped_numpy_convolution(weight_norm):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8)).astype("float32")
    mask = np.ones((2, 9), bool)
    mask[1, 6:] = False
    layer = PositionalConvEmbedding(5, groups=2, weight_norm=weight_norm)
    got = keras.ops.convert_to_numpy(layer(x, mask))
    kernel = keras.ops.convert_to_numpy(layer.kernel())
    bias = np.zeros(8, "float32") if not weight_norm else (
        keras.ops.convert_to_numpy(layer.bias))
    if weight_norm:
        # g starts at the norm of each offset's slice: kernel == direction.
        np.testing.assert_allclose(
            kernel, keras.ops.convert_to_numpy(layer.kernel_direction), rtol=1e-5)
        layer.kernel_gain.assign(np.linspace(0.5, 2.0, 5).reshape(5, 1, 1))
        got = keras.ops.convert_to_numpy(layer(x, mask))
        kernel = keras.ops.convert_to_numpy(layer.kernel())
        norms = np.sqrt((kernel ** 2).sum(axis=(1, 2)))
        np.testing.assert_allclose(norms, np.linspace(0.5, 2.0, 5), rtol=1e-5)
    np.testing.assert_allclose(got, _reference(x, mask, kernel, bias, 2),
                               rtol=1e-4, atol=1e-5)


def test_weight_norm_round_trips_through_config():
    layer = PositionalConvEmbedding(4, groups=2, weight_norm=True)
    layer.build((None, None, 8))
    clone = PositionalConvEmbedding.from_config(layer.get_config())
    assert clone.weight_norm and clone.kernel_size == 4 and clone.groups == 2
    clone.build((None, None, 8))
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    with pytest.raises(ValueError, match="divisible"):
        PositionalConvEmbedding(4, groups=3, weight_norm=True).build((None, None, 8))


def test_a_weight_normed_backbone_saves_and_loads(tmp_path):
    from keras_ssl.backbones import Wav2Vec2Backbone

    backbone = Wav2Vec2Backbone.small(
        conv_channels=(8,) * 7, hidden_dim=8, num_layers=1, num_heads=2,
        intermediate_dim=16, pos_conv_kernel=4, pos_conv_groups=2,
        pos_conv_weight_norm=True)
    backbone.pos_conv.kernel_gain.assign(np.full((4, 1, 1), 0.3, "float32"))
    audio = np.random.default_rng(1).normal(size=(2, 4000)).astype("float32")
    inputs = {"audio": audio, "padding_mask": np.ones_like(audio, bool)}
    expected = keras.ops.convert_to_numpy(backbone(inputs))
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.pos_conv.weight_norm
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.pos_conv.kernel_gain), 0.3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), expected,
                               atol=1e-5)


def test_group_norm_ignores_the_padding_of_a_bucketed_batch():
    """BASE's per-channel group norm takes its statistics over the real
    frames: an utterance padded with zeros gives the same real frames as
    the utterance alone (without the mask the padding shifts them)."""
    from keras_ssl.layers.wav2vec2 import ConvFeatureEncoder

    encoder = ConvFeatureEncoder((8,) * 3, (10, 3, 3), (5, 2, 2), norm="group")
    audio = np.random.default_rng(0).normal(size=(1, 500)).astype("float32")
    alone = keras.ops.convert_to_numpy(encoder(audio))
    padded = np.concatenate([audio, np.zeros((1, 300), "float32")], axis=1)
    mask = np.arange(800)[None, :] < 500
    frames = alone.shape[1]
    masked = keras.ops.convert_to_numpy(encoder(padded, padding_mask=mask))
    np.testing.assert_allclose(masked[:, :frames], alone, atol=1e-4)
    unmasked = keras.ops.convert_to_numpy(encoder(padded))
    assert np.abs(unmasked[:, :frames] - alone).max() > 0.1
    # With nothing padded the mask changes nothing.
    full = np.ones((1, 500), bool)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(audio, padding_mask=full)), alone,
        atol=1e-4)


def test_waveform_normalization_standardises_the_real_samples_only():
    from keras_ssl.layers.wav2vec2 import WaveformNormalization

    rng = np.random.default_rng(1)
    audio = rng.normal(2.0, 3.0, size=(2, 50)).astype("float32")
    mask = np.arange(50)[None, :] < np.array([[50], [30]])
    audio[1, 30:] = 0.0
    out = keras.ops.convert_to_numpy(WaveformNormalization()(audio, mask))
    for row, n in enumerate((50, 30)):
        real = audio[row, :n]
        np.testing.assert_allclose(
            out[row, :n], (real - real.mean()) / np.sqrt(real.var() + 1e-5),
            atol=1e-4)
        assert not out[row, n:].any()  # padding stays zero
