"""Initialising keras-ssl backbones from keras-hub presets on disk
(keras_ssl.backbones.from_keras_hub): presets of random weights are saved
here, copied in, and the two networks must compute the same thing."""

import keras
import keras_hub
import numpy as np
import pytest
from conftest import forward

from keras_ssl.backbones import ViTBackbone, initialize_from_preset
from keras_ssl.backbones.from_keras_hub import resize_positions
from keras_ssl.layers.vit import sincos_position_embedding
from keras_ssl.recipes.configs import PretrainConfig
from keras_ssl.training import build_backbone

# The widths of "vit_tiny" (64, 4 heads), so that the last test's blocks
# have the same weight shapes (JAX compiles each initializer per shape).
HUB_VIT = dict(image_shape=(32, 32, 3), patch_size=8, num_layers=1,
               num_heads=4, hidden_dim=64, mlp_dim=256)
OUR_VIT = dict(image_shape=(32, 32, 3), patch_size=8, hidden_dim=64,
               num_layers=1, num_heads=4, mlp_ratio=4, pooling=None)
# keras-hub's smallest ResNet: its first stage must have 64 filters.
HUB_RESNET = dict(input_conv_filters=[64], input_conv_kernel_sizes=[3],
                  stackwise_num_filters=[64], stackwise_num_blocks=[1],
                  stackwise_num_strides=[1], block_type="basic_block")


def _randomise(model, seed=0):
    """Random values in every weight (biases, norms and BN statistics too),
    so that a weight left out or misplaced changes the output."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = rng.normal(0.0, 0.2, weight.shape)
        if "variance" in weight.path:
            values = 0.5 + np.abs(values)
        weight.assign(values.astype("float32"))
    return model


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _saved_preset(tmp_path_factory, hub, name):
    """`hub` with random weights (BN statistics too), saved as a preset."""
    hub = _randomise(hub)
    path = tmp_path_factory.mktemp(name)
    hub.save_to_preset(str(path))
    return hub, str(path)


@pytest.fixture(scope="module")
def vit_preset(tmp_path_factory):
    """A keras-hub ViT of random weights saved as a preset."""
    return _saved_preset(tmp_path_factory, keras_hub.models.ViTBackbone(**HUB_VIT),
                         "vit_preset")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((2, 32, 32, 3)).astype("float32")


def test_vit_with_learned_positions_computes_the_presets_tokens(
        vit_preset, images, tmp_path):
    hub, path = vit_preset
    ours = ViTBackbone(**OUR_VIT, position_embedding="learned")
    report = initialize_from_preset(ours, path)
    expected = forward(hub, images)
    np.testing.assert_allclose(forward(ours, images), expected, atol=1e-4)
    assert not report.not_copied
    assert any("class token" in line for line in report.copied)
    assert "patch position embeddings" in str(report)
    # The learned positions save with the backbone, and a keras-ssl preset
    # initialises a backbone of its own class.
    ours.save_to_preset(str(tmp_path))
    again = ViTBackbone(**OUR_VIT, position_embedding="learned")
    report = initialize_from_preset(again, str(tmp_path))
    assert report.source == "keras_ssl>ViTBackbone"
    np.testing.assert_allclose(forward(again, images), expected, atol=1e-4)


def test_vit_with_sincos_positions_gets_everything_else(tmp_path, images):
    """A fixed-position backbone takes every weight but the patch positions:
    give the preset our sin-cos table and the two networks agree."""
    hub = _randomise(keras_hub.models.ViTBackbone(**HUB_VIT), seed=2)
    table = hub.get_layer("vit_patching_and_embedding").position_embedding.embeddings
    values = _numpy(table).copy()
    values[1:] = sincos_position_embedding(64, (4, 4))
    table.assign(values)
    hub.save_to_preset(str(tmp_path))

    ours = ViTBackbone(**OUR_VIT)  # position_embedding="sincos"
    report = initialize_from_preset(ours, str(tmp_path))
    assert len(report.not_copied) == 1
    assert "position embeddings" in report.not_copied[0]
    np.testing.assert_allclose(forward(ours, images), forward(hub, images),
                               atol=1e-4)


def test_positions_are_resized_to_another_patch_grid(vit_preset):
    hub, path = vit_preset
    ours = ViTBackbone(**dict(OUR_VIT, image_shape=(48, 48, 3)),
                       position_embedding="learned")
    report = initialize_from_preset(ours, path)
    assert "from a 4×4 to a 6×6 patch grid" in str(report)
    table = _numpy(
        hub.get_layer("vit_patching_and_embedding").position_embedding.embeddings)
    np.testing.assert_allclose(
        _numpy(ours.patch_embedding.learned_positions),
        resize_positions(table[1:], (4, 4), (6, 6)), atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "torch",
                    reason="NumPy only: checked once, where torch is loaded")
def test_resize_positions_is_pytorchs_bicubic():
    import torch

    table = np.random.default_rng(3).normal(size=(4 * 5, 6)).astype("float32")
    for grid in ((6, 7), (2, 3), (4, 5)):
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(table.reshape(1, 4, 5, 6)).permute(0, 3, 1, 2),
            size=grid, mode="bicubic", align_corners=False,
        ).permute(0, 2, 3, 1).reshape(-1, 6).numpy()
        np.testing.assert_allclose(resize_positions(table, (4, 5), grid),
                                   expected, atol=1e-5)


@pytest.fixture(scope="module")
def resnet_preset(tmp_path_factory):
    """A keras-hub ResNet of random weights (BN statistics too) as a preset."""
    return _saved_preset(tmp_path_factory,
                         keras_hub.models.ResNetBackbone(**HUB_RESNET), "resnet_preset")


def test_resnet_preset_loads_layer_by_layer(resnet_preset, images):
    hub, path = resnet_preset
    ours = keras_hub.models.ResNetBackbone(**HUB_RESNET, image_shape=(32, 32, 3))
    report = initialize_from_preset(ours, path)
    np.testing.assert_allclose(forward(ours, images), forward(hub, images),
                               atol=1e-4)
    assert "all" in report.copied[0] and "image_shape" in report.notes[0]


def test_mismatches_name_the_config_field(vit_preset, resnet_preset):
    deeper = ViTBackbone(**dict(OUR_VIT, num_layers=2, layer_norm_epsilon=1e-5))
    with pytest.raises(ValueError, match=r"(?s)num_layers: preset 1, backbone 2"
                       r".*layer_norm_epsilon: preset 1e-06, backbone 1e-05"):
        initialize_from_preset(deeper, vit_preset[1])
    with pytest.raises(ValueError, match="holds a keras_hub>ResNetBackbone"):
        initialize_from_preset(deeper, resnet_preset[1])
    other = keras_hub.models.ResNetBackbone(
        **dict(HUB_RESNET, stackwise_num_blocks=[2]))
    with pytest.raises(ValueError, match=r"stackwise_num_blocks: preset \[1\], "
                       r"backbone \[2\]"):
        initialize_from_preset(other, resnet_preset[1])
    with pytest.raises(FileNotFoundError, match="downloads nothing"):
        initialize_from_preset(other, resnet_preset[1] + "/absent")


def test_pretrain_config_with_init_preset_builds_the_preset(tmp_path, images):
    """`--init-preset DIR`: the vision recipes build their backbone from it."""
    # vit_tiny on 32×32 images: 4×4 patches, width 64, 4 blocks of 4 heads.
    hub = _randomise(keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=4,
        hidden_dim=64, mlp_dim=256))
    hub.save_to_preset(str(tmp_path))
    config = PretrainConfig(method="mae", backbone="vit_tiny",
                            init_preset=str(tmp_path))
    backbone = build_backbone(config.backbone, (32, 32, 3), config.init_preset)
    assert backbone.position_embedding == "learned"
    expected = forward(hub, images)
    if backbone.pooling == "avg":
        expected = expected[:, 1:].mean(axis=1)
    np.testing.assert_allclose(forward(backbone, images), expected, atol=1e-4)
    with pytest.raises(ValueError, match="init_preset must be a keras-hub preset"):
        PretrainConfig(init_preset=str(tmp_path / "absent"))
