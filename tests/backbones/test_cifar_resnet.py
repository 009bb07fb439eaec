import keras
import keras_hub
import numpy as np
import pytest

from keras_ssl.backbones import CIFARResNetBackbone


def tiny(**kwargs):
    return CIFARResNetBackbone((4, 8, 8), (1, 2, 1), image_shape=(16, 16, 3), **kwargs)


def test_cifar_stem_keeps_resolution_and_stages_halve_it():
    # Feature maps by default, as keras-hub's backbones: 16 → 16 → 8 → 4.
    assert tuple(tiny().output.shape) == (None, 4, 4, 8)
    assert tuple(tiny(pooling="avg").output.shape) == (None, 8)


def test_is_a_keras_hub_backbone_with_preset_round_trip(tmp_path):
    backbone = tiny()
    assert isinstance(backbone, keras_hub.models.Backbone)
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    backbone.save_to_preset(str(tmp_path / "preset"))
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(loaded, CIFARResNetBackbone)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(backbone(x)),
        rtol=1e-6,
    )


def test_config_mirrors_constructor():
    config = tiny(batch_norm_momentum=0.8).get_config()
    assert config["stackwise_num_filters"] == [4, 8, 8]
    assert config["stackwise_num_blocks"] == [1, 2, 1]
    assert config["image_shape"] == [16, 16, 3]
    assert config["batch_norm_momentum"] == 0.8
    rebuilt = CIFARResNetBackbone.from_config(config)
    assert rebuilt.count_params() == tiny().count_params()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"stackwise_num_filters": (4, 8), "stackwise_num_blocks": (1,)}, "same length"),
        ({"stackwise_num_filters": (0,), "stackwise_num_blocks": (1,)}, "positive"),
        ({"stackwise_num_filters": (4,), "stackwise_num_blocks": (0,)}, "positive"),
        ({"pooling": "max"}, "pooling"),
        ({"image_shape": (16, 16)}, "image_shape"),
    ],
)
def test_bad_configuration(kwargs, message):
    args = {"stackwise_num_filters": (4,), "stackwise_num_blocks": (1,)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        CIFARResNetBackbone(**args)
