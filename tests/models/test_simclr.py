"""SimCLR specifics beyond the shared harness: other encoders, the head."""

import keras
import numpy as np
import pytest

from conftest import JIT_COMPILE
from keras_ssl.models import SimCLR


def _views(size=16, n=8):
    rng = np.random.default_rng(0)
    return tuple(rng.random((2, n, size, size, 3)).astype("float32"))


def _fit_one_step(model, views):
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=JIT_COMPILE)
    h = model.fit(x=views, batch_size=len(views[0]), epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


def test_keras_hub_resnet_feature_maps_are_pooled():
    from keras_hub.models import ResNetBackbone

    encoder = ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(16, 16, 3),
    )
    assert len(encoder.output.shape) == 4  # a feature map
    model = SimCLR(encoder, projection_dim=4)
    z1, z2 = model(_views())
    assert tuple(z1.shape) == (8, 4)
    assert model.projector.hidden_dims == (16,)  # as wide as the features
    _fit_one_step(model, _views())


def test_user_encoder_from_keras_layers():
    encoder = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    model = SimCLR(encoder, projection_dim=4, projection_hidden_dims=(12, 12))
    _fit_one_step(model, _views())
    assert [type(l).__name__ for l in model.projector.blocks].count("Dense") == 3


def test_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(keras.Sequential([keras.layers.Flatten()]), temperature=0.0)
