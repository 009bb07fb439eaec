import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.data import dino_multicrop
from keras_ssl.data.multicrop import MultiCropAugmentation, multi_crop_dataset


def _images(n=16, side=32, seed=0):
    return np.random.default_rng(seed).random((n, side, side, 3)).astype("float32")


def test_call_returns_globals_then_locals():
    augmentation = MultiCropAugmentation(24, 12, num_local_crops=3)
    crops = augmentation(tf.constant(_images(4)), seed=[1, 2])
    assert augmentation.num_crops == len(crops) == 5
    assert [tuple(c.shape) for c in crops] == [(4, 24, 24, 3)] * 2 + [(4, 12, 12, 3)] * 3
    for crop in crops:
        assert crop.dtype == tf.float32
        assert 0.0 <= float(tf.reduce_min(crop)) and float(tf.reduce_max(crop)) <= 1.0
    # Same seed, same crops; different crops differ from each other.
    again = augmentation(tf.constant(_images(4)), seed=[1, 2])
    for a, b in zip(crops, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(crops[0].numpy(), crops[1].numpy())
    assert not np.allclose(crops[2].numpy(), crops[3].numpy())


def test_uint8_images_are_rescaled():
    augmentation = MultiCropAugmentation(16, 8, num_local_crops=1, jitter_strength=0,
                                         grayscale_p=0, global_blur_p=(0, 0),
                                         local_blur_p=0, solarize_p=0)
    uint8 = (_images(2) * 255).astype("uint8")
    crops = augmentation(uint8, seed=[0, 0])
    assert float(tf.reduce_max(crops[0])) <= 1.0


def test_dataset_yields_resolution_groups():
    augmentation = MultiCropAugmentation(16, 8, num_local_crops=2, local_scale=(0.1, 0.4))
    ds = multi_crop_dataset(_images(32), augmentation, batch_size=8, seed=0)
    (crops,) = next(iter(ds))
    assert [tuple(c.shape) for c in crops] == [(8, 16, 16, 3)] * 2 + [(8, 8, 8, 3)] * 2
    # Seeded pipelines are reproducible.
    (again,) = next(iter(multi_crop_dataset(_images(32), augmentation, batch_size=8, seed=0)))
    for a, b in zip(crops, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(list(ds)) == 4


def test_no_local_crops():
    ds = multi_crop_dataset(_images(8), MultiCropAugmentation(16, 8, num_local_crops=0),
                            batch_size=4, seed=0)
    (crops,) = next(iter(ds))
    assert len(crops) == 2


def test_dino_multicrop():
    augmentation = dino_multicrop(32, 16, num_local_crops=4, global_scale=(0.4, 1.0),
                                  local_scale=(0.1, 0.4), jitter_strength=2.0,
                                  grayscale_p=0.5)
    assert isinstance(augmentation, MultiCropAugmentation)
    assert augmentation.get_config() == MultiCropAugmentation(
        32, 16, num_local_crops=4, global_scale=(0.4, 1.0), local_scale=(0.1, 0.4),
        jitter_strength=2.0, grayscale_p=0.5,
    ).get_config()
    ds = multi_crop_dataset(_images(64), augmentation, batch_size=16, seed=0)
    (crops,) = next(iter(ds))
    assert [tuple(c.shape) for c in crops] == [(16, 32, 32, 3)] * 2 + [(16, 16, 16, 3)] * 4


def test_config_round_trip():
    augmentation = MultiCropAugmentation(32, 16, num_local_crops=4, local_scale=(0.1, 0.4),
                                         jitter_strength=2.0, grayscale_p=0.5)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(augmentation)
    )
    assert isinstance(restored, MultiCropAugmentation)
    assert restored.get_config() == augmentation.get_config()
    assert "num_local_crops=4" in repr(restored)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_local_crops": -1}, "num_local_crops"),
        ({"num_local_crops": 2.5}, "num_local_crops"),
        ({"global_scale": (0.0, 1.0)}, "global_scale"),
        ({"local_scale": (0.5, 0.2)}, "local_scale"),
        ({"global_blur_p": (1.0,)}, "global_blur_p"),
        ({"solarize_p": 1.5}, "solarize_p"),
        ({"jitter_strength": 6.0}, "jitter_strength"),
        ({"global_size": 0}, "size"),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiCropAugmentation(**kwargs)


def test_dataset_rejects_other_augmentations():
    with pytest.raises(ValueError, match="MultiCropAugmentation"):
        multi_crop_dataset(_images(8), augmentation=lambda x: x, batch_size=4)
