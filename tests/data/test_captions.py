"""Tests for `load_image_text_data`: embedded digits, caption folders and TFDS."""

import doctest

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_ssl.data import ImageTextData, load_image_text_data
from keras_ssl.data import captions as captions_module
from keras_ssl.datasets import load_captioned_digits


class TinyCaptioned(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A local TFDS dataset: a plain `caption` text, labels, train + validation."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(6, 6, 3)),
                    "caption": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(8), "validation": self._generate_examples(4)}

    def _generate_examples(self, count):
        for index in range(count):
            light = index % 2
            image = np.full((6, 6, 3), 200 if light else 30, np.uint8)
            yield index, {"image": image, "caption": f" a {'light' if light else 'dark'} square ",
                          "label": light}


class TinyBlankCaption(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A local TFDS dataset whose second example has only blank captions."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict(
            {"image": tfds.features.Image(shape=(4, 4, 3)),
             "text": tfds.features.Sequence(tfds.features.Text())}
        )
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(), "test": self._generate_examples()}

    def _generate_examples(self):
        for index, texts in enumerate([["", "a square"], ["  ", ""]]):
            yield index, {"image": np.zeros((4, 4, 3), np.uint8), "text": texts}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    for builder in (TinyCaptioned, TinyBlankCaption):
        builder(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


_FILES = ["a.png", "b.jpg", "c.bmp", "d.PNG", "e.gif", "nested/f.png"]


def _pixels(seed, side=10):
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _save(path, side=10, seed=0, mode="RGB"):
    Image.fromarray(_pixels(seed, side)).convert(mode).save(path)


@pytest.fixture()
def caption_folder(tmp_path):
    """Six captioned images in mixed formats, one in a sub-folder, one with two
    caption lines (and a blank line), plus a stray text file."""
    (tmp_path / "nested").mkdir()
    for index, name in enumerate(_FILES):
        _save(tmp_path / name, seed=index, mode="P" if name.endswith(".gif") else "RGB")
        lines = [f"picture {name}"] + (["", f"  second caption of {name}  "] if index == 0 else [])
        (tmp_path / name).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "notes.md").write_text("not an image")
    return tmp_path


def _check(data, image_shape):
    assert isinstance(data, ImageTextData)
    assert data.image_shape == image_shape
    for x, captions in ((data.x_train, data.captions_train), (data.x_test, data.captions_test)):
        assert x.dtype == np.float32 and x.shape[1:] == image_shape and len(x) == len(captions)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert isinstance(captions, list)
        assert all(isinstance(c, str) and c and c == c.strip() for c in captions)


# Digits.


def test_digits():
    data = load_image_text_data("digits", image_size=16)
    _check(data, (16, 16, 3))
    corpus = load_captioned_digits(image_size=16)
    assert (len(data.x_train), len(data.x_test)) == (5384, 451)
    assert data.captions_train == list(corpus.captions_train)
    np.testing.assert_array_equal(data.y_test, corpus.y_test)
    assert data.class_names == ["zero", "one", "two", "three", "four", "five", "six", "seven",
                                "eight", "nine"]
    assert data.name == "digits"
    assert repr(data) == (
        "ImageTextData(name='digits', image_shape=(16, 16, 3), train=5384, test=451, "
        "labelled=True, num_classes=10)"
    )
    data.x_train[0] = 0.0  # a writable copy of the cached corpus
    assert corpus.x_train[0].max() > 0.0


def test_digits_max_examples_and_errors():
    data = load_image_text_data("digits", image_size=16, max_examples=40, seed=0)
    _check(data, (16, 16, 3))
    assert (len(data.x_train), len(data.x_test), len(data.y_test)) == (40, 40, 40)
    with pytest.raises(ValueError, match="square"):
        load_image_text_data("digits", image_size=(16, 20))
    with pytest.raises(ValueError, match="max_examples"):
        load_image_text_data("digits", max_examples=0)
    with pytest.raises(ValueError, match="test_fraction"):
        load_image_text_data("digits", test_fraction=0.0)


# Folders.


def test_folder(caption_folder):
    data = load_image_text_data(str(caption_folder), test_fraction=0.34, seed=1)
    _check(data, (10, 10, 3))
    assert data.name == f"folder:{caption_folder}"
    assert data.y_test is None and data.class_names is None
    assert "labelled=False" in repr(data)
    pairs = data.captions_train + data.captions_test
    assert sorted(pairs) == sorted(
        ["picture a.png", "second caption of a.png", "picture b.jpg", "picture c.bmp",
         "picture d.PNG", "picture e.gif", "picture nested/f.png"]
    )
    # Images are split, not pairs: both captions of a.png are on one side.
    both = {"picture a.png", "second caption of a.png"}
    assert both <= set(data.captions_train) or both <= set(data.captions_test)
    assert len({c.split()[-1] for c in data.captions_test}) == 2  # round(6 * 0.34) images
    # Images and captions stay paired (checked on the lossless formats).
    for x, captions in ((data.x_train, data.captions_train), (data.x_test, data.captions_test)):
        for image, caption in zip(x, captions):
            name = caption.split()[-1]
            if name.lower().endswith((".png", ".bmp")):
                expected = _pixels(_FILES.index(name))
                np.testing.assert_allclose(image * 255, expected, atol=1e-3)
    again = load_image_text_data(f"folder:{caption_folder}", test_fraction=0.34, seed=1)
    assert again.captions_test == data.captions_test
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_folder_resize_and_max_examples(caption_folder):
    _save(caption_folder / "nested" / "big.png", side=14)
    (caption_folder / "nested" / "big.txt").write_text("a bigger picture")
    with pytest.raises(ValueError, match="pass image_size"):
        load_image_text_data(str(caption_folder))
    data = load_image_text_data(caption_folder, image_size=8, max_examples=3)
    _check(data, (8, 8, 3))
    assert len(data.x_train) == 3 and len(data.x_test) == 2


def test_folder_missing_caption_file(caption_folder):
    (caption_folder / "c.txt").unlink()
    with pytest.raises(ValueError, match=r"c\.bmp.*no caption file.*c\.txt"):
        load_image_text_data(str(caption_folder))


def test_folder_empty_caption(caption_folder):
    (caption_folder / "b.txt").write_text("  \n\n")
    with pytest.raises(ValueError, match=r"b\.txt.*has no caption"):
        load_image_text_data(str(caption_folder))


def test_folder_undecodable_image(caption_folder):
    (caption_folder / "nested" / "broken.png").write_bytes(b"this is not a png")
    (caption_folder / "nested" / "broken.txt").write_text("a broken picture")
    with pytest.raises(ValueError, match=r"could not decode image .*broken\.png"):
        load_image_text_data(str(caption_folder))


def test_folder_without_pairs(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="0 captioned images"):
        load_image_text_data(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image_text_data(f"folder:{tmp_path / 'missing'}")


def test_unknown_spec(tmp_path):
    for spec in ("nowhere", str(tmp_path / "missing"), "tfds:", 3):
        with pytest.raises(ValueError, match="unknown image-text data"):
            load_image_text_data(spec)


def test_bad_captions_are_named():
    with pytest.raises(ValueError, match="x train caption 1 is '  '"):
        captions_module._check_captions(["fine", "  "], "x train")
    with pytest.raises(ValueError, match="caption 0 is None"):
        captions_module._check_captions([None], "x train")
    assert captions_module._check_captions([b" ok "], "x") == ["ok"]


# TFDS.


def test_tfds_coco_captions_mock(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        data = load_image_text_data("tfds:coco_captions", data_dir=str(tmp_path), image_size=16)
        capped = load_image_text_data(
            "tfds:coco_captions", data_dir=str(tmp_path), image_size=(12, 8), max_examples=4
        )
        with pytest.raises(ValueError, match="pass image_size"):  # mock images vary in size
            load_image_text_data("tfds:coco_captions", data_dir=str(tmp_path))
    _check(data, (16, 16, 3))
    assert data.name == "tfds:coco_captions"
    assert (len(data.x_train), len(data.x_test)) == (6, 6)
    assert data.y_test is None and data.class_names is None
    _check(capped, (12, 8, 3))
    assert (len(capped.x_train), len(capped.x_test)) == (4, 4)


def test_tfds_local_text_feature_with_labels(tfds_dir):
    data = load_image_text_data("tfds:tiny_captioned", data_dir=tfds_dir)
    _check(data, (6, 6, 3))
    assert (len(data.x_train), len(data.x_test)) == (8, 4)  # the validation split
    assert data.class_names == ["dark", "light"]
    assert set(data.captions_train) == {"a dark square", "a light square"}
    for x, caption, label in zip(data.x_test, data.captions_test, data.y_test):
        assert caption == ("a light square" if label else "a dark square")
        assert (x.mean() > 0.5) == bool(label)


def test_tfds_blank_captions(tfds_dir):
    with pytest.raises(ValueError, match="example 1 has no non-empty caption"):
        load_image_text_data("tfds:tiny_blank_caption", data_dir=tfds_dir)


def test_tfds_not_prepared(tmp_path):
    with pytest.raises(ValueError, match="not prepared"):
        load_image_text_data("tfds:coco_captions", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="neither registered nor prepared"):
        load_image_text_data("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))


def test_doctests():
    assert doctest.testmod(captions_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
