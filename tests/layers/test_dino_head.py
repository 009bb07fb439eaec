import keras
import numpy as np
import pytest

from keras_ssl.layers.dino_head import DINOHead


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_shapes_and_weight_normalised_last_layer():
    head = DINOHead(output_dim=32, hidden_dims=(16, 16), bottleneck_dim=8)
    x = np.random.default_rng(0).normal(size=(5, 12)).astype("float32")
    out = _np(head(x))
    assert out.shape == (5, 32)
    kinds = [type(layer).__name__ for layer in head.mlp.blocks]
    assert kinds == ["Dense", "Activation", "Dense", "Activation", "Dense"]
    # g frozen to 1: there is no gain variable and every column is unit norm.
    assert head.last_layer_g is None
    assert [w.name for w in head.trainable_weights].count("last_layer_v") == 1
    np.testing.assert_allclose(
        np.linalg.norm(_np(head.last_layer_kernel()), axis=0), 1.0, rtol=1e-5
    )
    # The reference computation: MLP → ℓ2 norm → V / ‖V‖ (per output unit).
    z = _np(head.mlp(x))
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    v = _np(head.last_layer_v)
    np.testing.assert_allclose(out, z @ (v / np.linalg.norm(v, axis=0)),
                               rtol=1e-5, atol=1e-6)
    # Rescaling V's columns leaves the output unchanged.
    head.last_layer_v.assign(v * np.linspace(0.5, 3.0, 32, dtype="float32"))
    np.testing.assert_allclose(_np(head(x)), out, rtol=1e-5, atol=1e-6)
    # Outputs are cosines: bounded by 1.
    assert np.abs(out).max() <= 1.0 + 1e-5


def test_trainable_gain_when_last_layer_is_not_normalised():
    head = DINOHead(output_dim=6, hidden_dims=(), bottleneck_dim=4,
                    norm_last_layer=False)
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    out = _np(head(x))
    assert head.last_layer_g.trainable
    head.last_layer_g.assign(np.full(6, 2.0, "float32"))
    np.testing.assert_allclose(_np(head(x)), 2.0 * out, rtol=1e-5, atol=1e-6)


def test_gradient_reaches_every_trainable_weight():
    head = DINOHead(output_dim=8, hidden_dims=(8,), bottleneck_dim=4)
    x = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    head(x)
    model = keras.Sequential([keras.Input((3,)), head])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = [_np(w).copy() for w in head.trainable_weights]
    model.fit(x, np.ones((4, 8), "float32"), epochs=1, verbose=0)
    for b, w in zip(before, head.trainable_weights):
        assert not np.array_equal(b, _np(w)), w.name


def test_config_round_trip_inside_a_model(tmp_path):
    inputs = keras.Input((6,))
    head = DINOHead(output_dim=10, hidden_dims=(8,), bottleneck_dim=4,
                    use_batch_norm=True, norm_last_layer=False)
    model = keras.Model(inputs, head(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    np.testing.assert_allclose(_np(model(x)), _np(loaded(x)), rtol=1e-6)
    config = loaded.layers[-1].get_config()
    assert config["output_dim"] == 10 and config["norm_last_layer"] is False
    assert config["use_batch_norm"] is True and config["bottleneck_dim"] == 4


def test_rejects_bad_widths():
    with pytest.raises(ValueError, match="positive"):
        DINOHead(output_dim=0)
    with pytest.raises(ValueError, match="positive"):
        DINOHead(bottleneck_dim=0)
