"""Tests for `SimCLRAugmentation` and `multi_view_dataset`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.data import SimCLRAugmentation, augment, multi_view_dataset
from keras_ssl.data.views import measure_pipeline_throughput


def _images(n=64, size=32, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


_slices = tf.data.Dataset.from_tensor_slices


def _crop(batch, seed):
    """A cheap seeded augmentation, for tests about the pipeline itself."""
    return augment.random_resized_crop(batch, 16, seed=seed)


def _batches(dataset, count):
    return [element for element, _ in zip(dataset.as_numpy_iterator(), range(count))]


# ---------------------------------------------------------------------------
# SimCLRAugmentation.
# ---------------------------------------------------------------------------


def test_simclr_augmentation_output():
    images = tf.constant(_images(16, size=40))
    aug = SimCLRAugmentation(24, blur_p=0.5, solarize_p=0.2)
    out = aug(images).numpy()
    assert out.shape == (16, 24, 24, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, aug(images).numpy())
    np.testing.assert_array_equal(aug(images, seed=[1, 2]), aug(images, seed=[1, 2]))
    # uint8 batches are rescaled to [0, 1] first.
    as_uint8 = tf.constant((_images(4) * 255).astype(np.uint8))
    out = SimCLRAugmentation((32, 16))(as_uint8, seed=[0, 0]).numpy()
    assert out.shape == (4, 32, 16, 3) and out.max() <= 1.0


def test_simclr_augmentation_config_round_trip():
    aug = SimCLRAugmentation(
        (64, 48), crop_scale=(0.2, 1.0), flip=False, jitter_strength=1.0, blur_p=0.5
    )
    config = aug.get_config()
    assert list(config) == [
        "image_size", "crop_scale", "crop_ratio", "flip", "jitter_strength",
        "jitter_p", "grayscale_p", "blur_p", "solarize_p",
    ]
    assert SimCLRAugmentation.from_config(config).get_config() == config
    # Through JSON (tuples become lists) and Keras serialisation.
    restored = SimCLRAugmentation.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(aug)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, SimCLRAugmentation)
    assert restored.get_config() == config
    assert repr(aug).startswith("SimCLRAugmentation(image_size=(64, 48)")
    assert SimCLRAugmentation(32).get_config()["image_size"] == 32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_size=0), "size"),
        (dict(image_size=(32, -1)), "size"),
        (dict(image_size=32, crop_scale=(0.0, 1.0)), "crop_scale"),
        (dict(image_size=32, crop_scale=(0.5, 1.5)), "crop_scale"),
        (dict(image_size=32, crop_scale=(0.8, 0.2)), "min <= max"),
        (dict(image_size=32, crop_ratio=(0.0, 1.0)), "crop_ratio"),
        (dict(image_size=32, crop_ratio=(2.0, 1.0)), "min <= max"),
        (dict(image_size=32, jitter_strength=-0.5), "jitter_strength"),
        (dict(image_size=32, jitter_strength=3.0), "jitter_strength"),
        (dict(image_size=32, jitter_p=1.5), "jitter_p"),
        (dict(image_size=32, grayscale_p=-0.1), "grayscale_p"),
        (dict(image_size=32, blur_p=2.0), "blur_p"),
        (dict(image_size=32, solarize_p=-1.0), "solarize_p"),
    ],
)
def test_simclr_augmentation_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimCLRAugmentation(**kwargs)


# ---------------------------------------------------------------------------
# multi_view_dataset.
# ---------------------------------------------------------------------------


def test_elements_are_a_tuple_of_views_for_fit():
    dataset = multi_view_dataset(_images(), SimCLRAugmentation(32), batch_size=16)
    element = next(iter(dataset))
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(element)
    assert isinstance(x, tuple) and len(x) == 2
    assert y is None and sample_weight is None
    for view in x:
        assert tuple(view.shape) == (16, 32, 32, 3) and view.dtype == tf.float32
    assert dataset.element_spec[0][0].shape.as_list() == [16, 32, 32, 3]
    assert len(list(dataset)) == 4


def test_views_differ_and_epochs_differ():
    dataset = multi_view_dataset(
        _images(32), SimCLRAugmentation(32), batch_size=32, shuffle=False
    )
    ((first, second),) = _batches(dataset, 1)[0]
    assert not np.allclose(first, second)
    ((again, _),) = _batches(dataset, 1)[0]
    assert not np.allclose(first, again)


def test_seed_makes_the_stream_reproducible():
    def first_epoch(seed):
        dataset = multi_view_dataset(_images(), _crop, batch_size=32, seed=seed)
        return [views for (views,) in dataset.as_numpy_iterator()]

    run_a, run_b, other = first_epoch(3), first_epoch(3), first_epoch(4)
    np.testing.assert_array_equal(np.array(run_a), np.array(run_b))
    assert not np.allclose(np.array(run_a), np.array(other))
    # Still a new draw at every epoch (same images: no shuffle).
    dataset = multi_view_dataset(
        _images(), _crop, batch_size=64, shuffle=False, seed=3
    )
    epoch_1, epoch_2 = (next(dataset.as_numpy_iterator()) for _ in range(2))
    assert not np.allclose(epoch_1[0][0], epoch_2[0][0])


def test_batching_shuffling_and_uint8_conversion():
    images = (_images(10) * 255).astype(np.uint8)
    expected = images.astype(np.float32) / 255
    identity = lambda batch: batch  # noqa: E731
    dataset = multi_view_dataset(
        images, identity, num_views=1, batch_size=4, shuffle=False, drop_remainder=False
    )
    batches = [views[0] for (views,) in dataset.as_numpy_iterator()]
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_allclose(np.concatenate(batches), expected, atol=1e-6)
    shuffled = multi_view_dataset(images, identity, num_views=1, batch_size=10, seed=0)
    (batch,), = next(shuffled.as_numpy_iterator())
    assert not np.allclose(batch, expected)
    np.testing.assert_allclose(
        np.sort(batch, axis=None), np.sort(expected, axis=None), atol=1e-6
    )


def test_dataset_input_repeat_and_asymmetric_views():
    source = tf.data.Dataset.from_tensor_slices((_images(20) * 255).astype(np.uint8))
    global_view = SimCLRAugmentation(32)
    local_view = lambda batch, seed: augment.random_resized_crop(  # noqa: E731
        batch, 16, scale=(0.05, 0.4), seed=seed
    )
    plain_flip = tf.image.flip_left_right  # No `seed` parameter: called as fn(x).
    dataset = multi_view_dataset(
        source,
        [global_view, local_view, plain_flip],
        num_views=3,
        batch_size=8,
        repeat=True,
    )
    batches = _batches(dataset, 5)  # More than the 20 images hold.
    assert len(batches) == 5
    views = batches[0][0]
    assert [v.shape for v in views] == [(8, 32, 32, 3), (8, 16, 16, 3), (8, 32, 32, 3)]
    assert all(v.min() >= 0.0 and v.max() <= 1.0 for v in views)


def test_measure_pipeline_throughput():
    rate = measure_pipeline_throughput(
        _images(32), _crop, batch_size=16, num_batches=2, warmup_batches=1
    )
    assert rate > 0


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (_images(10), dict(batch_size=16), "larger than the dataset"),
        (_images(10), dict(batch_size=0), "batch_size"),
        (_images(10), dict(num_views=0), "num_views"),
        (_images(10), dict(augment=[lambda x: x] * 3), "one per view"),
        (_images(10), dict(augment=[lambda x: x, "flip"]), "callable"),
        (_images(10)[..., 0], {}, "shape"),
        (_images(10)[..., :1], {}, "RGB"),
        (_images(10) * 255, {}, r"\[0, 1\]"),
        (_images(10).astype(np.int32), {}, "uint8"),
        (_slices(_images(10)).batch(2), {}, "RGB"),
        (_slices((_images(4), _images(4))), {}, "single image"),
        (_slices(_images(4)), dict(batch_size=8), "larger than"),
    ],
)
def test_invalid_arguments(images, kwargs, match):
    kwargs = {"augment": lambda x: x, "batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        multi_view_dataset(images, **kwargs)
