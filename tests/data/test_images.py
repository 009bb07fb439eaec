"""Tests for `load_image_data`: digits, NumPy arrays, image folders and TFDS."""

import doctest

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_ssl.data import ImageData, load_image_data
from keras_ssl.data import images as images_module
from keras_ssl.datasets import load_cluttered_digits


class TinyShapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A locally prepared TFDS dataset: a train split only, mixed image sizes."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=["circle", "square", "star"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for index in range(30):
            side = 8 + 2 * (index % 2)
            image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            yield index, {"image": image, "label": index % 3}


class TinyUnlabelled(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A locally prepared TFDS dataset without a `label` feature."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(4, 4, 3))})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for index in range(3):
            yield index, {"image": np.zeros((4, 4, 3), np.uint8)}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    for builder in (TinyShapes, TinyUnlabelled):
        builder(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


@pytest.fixture()
def image_folder(tmp_path):
    """Three classes of four 10x10 images each, in mixed formats."""
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "eel"):
        (tmp_path / name).mkdir()
        for index in range(4):
            pixels = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
            if index == 0:
                Image.fromarray(pixels[..., 0], mode="L").save(tmp_path / name / "gray.png")
            elif index == 1:
                rgba = np.concatenate([pixels, np.full((10, 10, 1), 255, np.uint8)], axis=-1)
                Image.fromarray(rgba, mode="RGBA").save(tmp_path / name / "alpha.PNG")
            elif index == 2:
                Image.fromarray(pixels).save(tmp_path / name / "photo.jpg")
            else:
                Image.fromarray(pixels).save(tmp_path / name / "plain.bmp")
        (tmp_path / name / "notes.txt").write_text("not an image")
    return tmp_path


def _check(data, image_shape, num_classes):
    assert isinstance(data, ImageData)
    assert data.image_shape == image_shape
    assert data.num_classes == num_classes == len(data.class_names)
    for x in (data.x_unlabeled, data.x_train, data.x_test):
        assert x.dtype == np.float32 and x.ndim == 4 and x.shape[1:] == image_shape
        assert 0.0 <= x.min() and x.max() <= 1.0
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert y.dtype == np.int32 and y.shape == (len(x),)
        assert 0 <= y.min() and y.max() < num_classes


# Digits.


def test_digits_default():
    data = load_image_data()
    _check(data, (16, 16, 3), 10)
    assert data.name == "digits"
    assert (len(data.x_unlabeled), len(data.x_train), len(data.x_test)) == (5384, 1346, 451)
    assert data.class_names == [str(d) for d in range(10)]
    assert "unlabeled=5384" in repr(data)


def test_digits_are_writable_copies():
    data = load_image_data("digits")
    data.x_train[0] = 0.0
    assert load_cluttered_digits().x_train[0].max() > 0.0


def test_digits_options():
    data = load_image_data("digits", image_size=24, max_examples=50, seed=1, validation_split=0.5)
    _check(data, (24, 24, 3), 10)
    assert (len(data.x_unlabeled), len(data.x_train), len(data.x_test)) == (50, 50, 50)


def test_digits_need_square_size():
    with pytest.raises(ValueError, match="square"):
        load_image_data("digits", image_size=(24, 32))


# NumPy arrays.


def test_arrays_x_y_grayscale_uint8():
    x = np.arange(40 * 6 * 6, dtype=np.int64).reshape(40, 6, 6) % 256
    y = np.arange(40) % 4
    data = load_image_data((x.astype(np.uint8), y), seed=3)
    _check(data, (6, 6, 3), 4)
    assert data.name == "arrays"
    assert (len(data.x_train), len(data.x_test)) == (28, 12)
    assert np.bincount(data.y_test).tolist() == [3, 3, 3, 3]  # Stratified.
    assert data.x_unlabeled is data.x_train
    # Every image comes back once, scaled to [0, 1] and with equal channels.
    restored = np.concatenate([data.x_train, data.x_test])[..., 0] * 255
    np.testing.assert_allclose(
        np.sort(restored.reshape(40, -1), axis=0), np.sort(x.reshape(40, -1), axis=0), atol=1e-3
    )
    np.testing.assert_array_equal(data.x_train[..., 0], data.x_train[..., 2])
    again = load_image_data((x.astype(np.uint8), y), seed=3)
    np.testing.assert_array_equal(again.x_test, data.x_test)


def test_arrays_four_tuple_float():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((20, 8, 8, 3)), rng.random((6, 8, 8, 1)).astype(np.float32)
    y_train, y_test = np.arange(20) % 5, (np.arange(6) % 5).reshape(6, 1)
    data = load_image_data((x_train, y_train, x_test, y_test))
    _check(data, (8, 8, 3), 5)
    np.testing.assert_allclose(data.x_train, x_train.astype(np.float32))
    np.testing.assert_array_equal(data.y_test, y_test[:, 0])
    data.x_train[0] = 0.0  # The loader copies its input.
    assert x_train[0].max() > 0.0


def test_arrays_dict_with_unlabeled_resize_and_cap():
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8),
        "y_train": np.arange(12) % 2,
        "x_test": rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8),
        "y_test": np.arange(12) % 3,
        "x_unlabeled": rng.integers(0, 256, (30, 8, 8), dtype=np.uint8),
    }
    data = load_image_data(arrays, image_size=(4, 6), max_examples=10)
    _check(data, (4, 6, 3), 3)
    assert (len(data.x_unlabeled), len(data.x_train), len(data.x_test)) == (10, 10, 10)


def test_arrays_x_y_dict():
    arrays = {"x": np.zeros((8, 4, 4, 3)), "y": np.arange(8) % 2}
    data = load_image_data(arrays, validation_split=0.5)
    assert (len(data.x_train), len(data.x_test)) == (4, 4)


@pytest.mark.parametrize(
    "spec, message",
    [
        ((np.zeros((10, 16)), np.zeros(10, int)), r"shape \(10, 16\): expected images"),
        ((np.zeros((10, 4, 4, 3, 1)), np.zeros(10, int)), "expected images of shape"),
        ((np.zeros((10, 4, 4, 2)), np.zeros(10, int)), "expected images of shape"),
        ((np.zeros((10, 4, 4, 3)), np.zeros(9, int)), "9 labels for 10 images"),
        ((np.full((10, 4, 4, 3), 255.0), np.zeros(10, int)), r"expected \[0, 1\]"),
        ((np.full((10, 4, 4, 3), np.nan), np.zeros(10, int)), "NaN or infinite"),
        ((np.full((10, 4, 4, 3), 300), np.zeros(10, int)), r"expected \[0, 255\]"),
        ((np.zeros((10, 4, 4, 3), bool), np.zeros(10, int)), "dtype bool"),
        ((np.zeros((10, 4, 4, 3)), -np.ones(10, int)), "non-negative integer"),
        ((np.zeros((10, 4, 4, 3)), np.full(10, 0.5)), "non-negative integer"),
        ((np.zeros((10, 4, 4, 3)), np.zeros((10, 2), int)), r"expected labels of shape \(N,\)"),
        ((np.zeros((4, 4, 4, 3)),) * 3, "got a sequence of 3 arrays"),
        ({"images": np.zeros((4, 4, 4, 3)), "labels": np.zeros(4, int)}, "unexpected array keys"),
        (
            (np.zeros((4, 4, 4, 3)), np.zeros(4, int), np.zeros((4, 5, 5, 3)), np.zeros(4, int)),
            "mixes image shapes",
        ),
        (
            (np.zeros((0, 4, 4, 3)), np.zeros(0, int), np.zeros((4, 4, 4, 3)), np.zeros(4, int)),
            "no train images",
        ),
    ],
)
def test_array_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        load_image_data(spec)


# Spec and argument errors.


@pytest.mark.parametrize("spec", ["foo", "mnist", "tfds:", "folder:", "", 3, None])
def test_unknown_spec(spec):
    expected = "expected 'digits', 'tfds:NAME', 'folder:PATH' or NumPy arrays"
    with pytest.raises(ValueError, match=expected):
        load_image_data(spec)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": (8, 8, 3)}, "image_size"),
        ({"image_size": 8.0}, "image_size"),
        ({"max_examples": 0}, "max_examples"),
        ({"max_examples": 2.5}, "max_examples"),
        ({"validation_split": 1.0}, "validation_split"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_image_data("digits", **kwargs)


def test_error_messages_are_one_line():
    with pytest.raises(ValueError) as info:
        load_image_data("foo")
    assert "\n" not in str(info.value)


# Image folders.


def test_folder(image_folder):
    data = load_image_data(f"folder:{image_folder}", seed=1)
    _check(data, (10, 10, 3), 3)
    assert data.class_names == ["cat", "dog", "eel"]
    assert data.name == f"folder:{image_folder}"
    assert np.bincount(data.y_train).tolist() == [3, 3, 3]
    assert np.bincount(data.y_test).tolist() == [1, 1, 1]
    assert data.x_unlabeled is data.x_train
    # The grayscale PNG of each class comes back with three equal channels.
    gray = np.array(Image.open(image_folder / "cat" / "gray.png"), np.float32) / 255
    all_x = np.concatenate([data.x_train, data.x_test])
    assert np.any(np.all(np.abs(all_x - gray[None, ..., None]) < 1e-6, axis=(1, 2, 3)))


def test_folder_resize_and_cap(image_folder):
    data = load_image_data(f"folder:{image_folder}", image_size=6, max_examples=5)
    _check(data, (6, 6, 3), 3)
    assert (len(data.x_train), len(data.x_test)) == (5, 3)


def test_folder_mixed_sizes_need_image_size(image_folder):
    Image.fromarray(np.zeros((12, 9, 3), np.uint8)).save(image_folder / "dog" / "big.png")
    with pytest.raises(ValueError, match="pass image_size"):
        load_image_data(f"folder:{image_folder}", validation_split=0.5)
    data = load_image_data(f"folder:{image_folder}", image_size=(12, 9), validation_split=0.5)
    _check(data, (12, 9, 3), 3)


def test_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image_data(f"folder:{tmp_path / 'absent'}")


def test_folder_without_images(tmp_path):
    with pytest.raises(ValueError, match="has no images"):
        load_image_data(f"folder:{tmp_path}")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="has no images"):
        load_image_data(f"folder:{tmp_path}")


def test_folder_corrupt_image(image_folder):
    (image_folder / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="could not decode image .*broken.png"):
        load_image_data(f"folder:{image_folder}", validation_split=0.5)


# TensorFlow Datasets, from local files only.


@pytest.mark.parametrize("name, image_shape", [("mnist", (28, 28, 3)), ("cifar10", (32, 32, 3))])
def test_tfds_mock(tmp_path, name, image_shape):
    with tfds.testing.mock_data(num_examples=12):
        data = load_image_data(f"tfds:{name}", data_dir=str(tmp_path))
        capped = load_image_data(
            f"tfds:{name}", data_dir=str(tmp_path), max_examples=5, image_size=(16, 20)
        )
    _check(data, image_shape, 10)
    assert (len(data.x_train), len(data.x_test)) == (12, 12)
    assert data.x_unlabeled is data.x_train
    assert data.name == f"tfds:{name}"
    _check(capped, (16, 20, 3), 10)
    assert (len(capped.x_unlabeled), len(capped.x_train), len(capped.x_test)) == (5, 5, 5)


def test_tfds_local_dataset_without_test_split(tfds_dir):
    data = load_image_data(
        "tfds:tiny_shapes", data_dir=tfds_dir, image_size=12, validation_split=0.2
    )
    _check(data, (12, 12, 3), 3)
    assert data.class_names == ["circle", "square", "star"]
    assert (len(data.x_train), len(data.x_test)) == (24, 6)
    assert np.bincount(data.y_test).tolist() == [2, 2, 2]


def test_tfds_mixed_sizes_need_image_size(tfds_dir):
    with pytest.raises(ValueError, match="pass image_size"):
        load_image_data("tfds:tiny_shapes", data_dir=tfds_dir)


def test_tfds_needs_image_and_label(tfds_dir):
    with pytest.raises(ValueError, match="expected 'image' and 'label'"):
        load_image_data("tfds:tiny_unlabelled", data_dir=tfds_dir)


def test_tfds_not_prepared_is_not_downloaded(tmp_path):
    expected = "not prepared in data_dir=.*nothing is downloaded"
    with pytest.raises(ValueError, match=expected) as info:
        load_image_data("tfds:mnist", data_dir=str(tmp_path))
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())


def test_tfds_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="neither registered nor prepared in data_dir") as info:
        load_image_data("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))
    assert "\n" not in str(info.value)


def test_docstring_examples():
    assert doctest.testmod(images_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
