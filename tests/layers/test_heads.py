import keras
import numpy as np
import pytest

from keras_ssl.layers import MLPHead


def test_shapes_and_layers():
    head = MLPHead(hidden_dims=(16, 12), output_dim=4)
    out = head(np.zeros((3, 8), "float32"))
    assert tuple(out.shape) == (3, 4)
    kinds = [type(layer).__name__ for layer in head.blocks]
    assert kinds == [
        "Dense", "BatchNormalization", "Activation",
        "Dense", "BatchNormalization", "Activation", "Dense",
    ]
    assert not head.blocks[0].use_bias and head.blocks[-1].use_bias


def test_linear_head_and_output_batch_norm():
    head = MLPHead(hidden_dims=(), output_dim=5, output_batch_norm=True)
    head.build((None, 3))
    assert [type(layer).__name__ for layer in head.blocks] == [
        "Dense", "BatchNormalization",
    ]
    assert head.blocks[1].scale is False


def test_config_round_trip_inside_a_model(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, MLPHead((8,), 3, activation="gelu")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)),
        keras.ops.convert_to_numpy(loaded(x)),
        rtol=1e-6,
    )
    assert loaded.layers[-1].get_config()["activation"] == "gelu"


def test_rejects_bad_widths():
    with pytest.raises(ValueError, match="positive"):
        MLPHead((0,), 4)
