import keras
import keras_hub
import numpy as np
import pytest

from keras_ssl.backbones import ViTBackbone


def tiny(**kwargs):
    config = dict(image_shape=(16, 16, 3), patch_size=4, hidden_dim=16,
                  num_layers=1, num_heads=2)
    config.update(kwargs)
    return ViTBackbone(**config)


def _np(x):
    return keras.ops.convert_to_numpy(x)


X = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({}, (None, 17, 16)),  # tokens by default, as keras-hub's ViT
        ({"pooling": "avg"}, (None, 16)),
        ({"pooling": "cls"}, (None, 16)),
        ({"pooling": None}, (None, 17, 16)),  # class token + 16 patches
        ({"pooling": None, "use_class_token": False}, (None, 16, 16)),
    ],
)
def test_output_shapes(kwargs, shape):
    assert tuple(tiny(**kwargs).output.shape) == shape


def test_halves_run_the_same_weights_on_any_subset_of_tokens():
    backbone = tiny(pooling=None)
    tokens = backbone.embed_patches(X)
    assert tuple(tokens.shape) == (2, 16, 16)
    np.testing.assert_allclose(
        _np(backbone.encode_tokens(tokens)), _np(backbone(X)), rtol=1e-5, atol=1e-6
    )
    assert tuple(backbone.encode_tokens(tokens[:, 3:7]).shape) == (2, 5, 16)
    pooled = tiny(pooling="avg")
    pooled.set_weights(backbone.get_weights())
    np.testing.assert_allclose(
        _np(pooled(X)), _np(backbone(X))[:, 1:].mean(axis=1), rtol=1e-5, atol=1e-6
    )


def test_is_a_keras_hub_backbone_with_preset_and_keras_round_trip(tmp_path):
    backbone = tiny()
    assert isinstance(backbone, keras_hub.models.Backbone)
    expected = _np(backbone(X))
    backbone.save_to_preset(str(tmp_path / "preset"))
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(loaded, ViTBackbone)
    np.testing.assert_allclose(_np(loaded(X)), expected, rtol=1e-6, atol=1e-6)
    backbone.save(tmp_path / "vit.keras")
    reloaded = keras.saving.load_model(tmp_path / "vit.keras")
    np.testing.assert_allclose(_np(reloaded(X)), expected, rtol=1e-6, atol=1e-6)
    # The reloaded halves are the reloaded weights.
    np.testing.assert_allclose(
        _np(reloaded.encode_tokens(reloaded.embed_patches(X))),
        expected, rtol=1e-5, atol=1e-6,
    )


def test_config_mirrors_constructor():
    config = tiny(mlp_ratio=2.0, pooling="cls", layer_norm_epsilon=1e-5).get_config()
    assert config["image_shape"] == [16, 16, 3] and config["patch_size"] == 4
    assert config["mlp_ratio"] == 2.0 and config["pooling"] == "cls"
    assert config["layer_norm_epsilon"] == 1e-5
    rebuilt = ViTBackbone.from_config(config)
    assert rebuilt.count_params() == tiny(mlp_ratio=2.0).count_params()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"image_shape": (18, 16, 3)}, "not divisible by the patch size 4"),
        ({"image_shape": (None, None, 3)}, "known image size"),
        ({"image_shape": (16, 16)}, "image_shape"),
        ({"hidden_dim": 18}, "multiple of 4"),
        ({"hidden_dim": 16, "num_heads": 3}, "divisible by `num_heads`"),
        ({"pooling": "max"}, "pooling"),
        ({"pooling": "cls", "use_class_token": False}, "use_class_token"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs)
