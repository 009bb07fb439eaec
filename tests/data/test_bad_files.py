"""Corrupt inputs in the folder and TFDS loaders: raised naming the file, or
skipped and counted (`on_bad_file`)."""

import re
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ssl.data import load_image_data, load_image_text_data
from keras_ssl.data.bad_files import BadFiles, check_on_bad_file, op_error_reason

_HINT = "on_bad_file='skip'"


def _png(seed=0, side=8):
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return tf.io.encode_png(pixels).numpy()


def _jpeg(seed=0, side=8):
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


#: Bad image files: name -> (bytes, what the reason says).
_BAD = {
    "empty.png": (b"", "empty (0 bytes)"),
    "truncated.jpg": (_jpeg()[:40], "not a decodable image"),
    "garbage.jpg": (b"these bytes are no image", "not a decodable image"),
}


@pytest.fixture()
def class_folder(tmp_path):
    """Two classes of four good 8x8 PNGs each."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(4):
            (tmp_path / name / f"{index}.png").write_bytes(_png(index))
    return tmp_path


@pytest.fixture()
def caption_folder(tmp_path):
    """Six good captioned 8x8 images."""
    for index in range(6):
        (tmp_path / f"{index}.png").write_bytes(_png(index))
        (tmp_path / f"{index}.txt").write_text(f"picture {index}\n")
    return tmp_path


# The option and its helper.


def test_option_values():
    assert check_on_bad_file("raise") == "raise" and check_on_bad_file("skip") == "skip"
    for loader in (load_image_data, load_image_text_data):
        with pytest.raises(ValueError, match="on_bad_file must be one of 'raise', 'skip'"):
            loader("digits", on_bad_file="ignore")


def test_op_error_reason_is_one_clean_line():
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        tf.io.decode_image(b"garbage")
    reason = op_error_reason(info.value)
    assert reason.startswith("Unknown image file format") and "{{" not in reason
    assert "[Op:" not in reason and "\n" not in reason


def test_bad_files_collects_and_warns():
    bad = BadFiles("skip", "somewhere")
    bad.check_left(0, "images")  # nothing skipped: not this helper's error
    for index in range(7):
        bad.bad(f"f{index}.png", "is broken")
    assert len(bad.skipped) == 7 and bad.skipped[0] == ("f0.png", "is broken")
    with pytest.warns(UserWarning, match=r"skipped 7 bad file\(s\) in somewhere: "
                      r"'f0\.png' \(is broken\).*'f4\.png'.* and 2 more"):
        bad.warn()
    with pytest.raises(ValueError, match="no images left in somewhere: 7 file"):
        bad.check_left(0, "images")
    with pytest.raises(ValueError, match=r"^bad file 'x\.png': is broken \(in here; "):
        BadFiles("raise", "here").bad("x.png", "is broken")


# Class folders (load_image_data).


@pytest.mark.parametrize("name", sorted(_BAD))
def test_class_folder_raises_naming_the_file(class_folder, name):
    content, reason = _BAD[name]
    (class_folder / "b" / name).write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_image_data(f"folder:{class_folder}", validation_split=0.5)
    message = str(info.value)
    assert f"could not decode image {str(class_folder / 'b' / name)!r}: " in message
    assert reason in message and _HINT in message and "--skip-bad-files" in message
    assert "\n" not in message and "{{" not in message
    assert not isinstance(info.value, tf.errors.OpError)


def test_class_folder_skips_and_counts(class_folder):
    for name, (content, _) in _BAD.items():
        (class_folder / "a" / name).write_bytes(content)
    with pytest.warns(UserWarning, match=r"skipped 3 bad file\(s\) in image folder"):
        data = load_image_data(
            f"folder:{class_folder}", validation_split=0.5, on_bad_file="skip"
        )
    assert len(data.x_train) + len(data.x_test) == 8  # all the good ones
    assert len(data.y_train) == len(data.x_train) and len(data.y_test) == len(data.x_test)
    assert sorted(path for path, _ in data.skipped) == sorted(
        str(class_folder / "a" / name) for name in _BAD
    )
    reasons = dict(data.skipped)
    for name, (_, reason) in _BAD.items():
        assert reason in reasons[str(class_folder / "a" / name)]
    # The good images keep their labels.
    np.testing.assert_array_equal(np.bincount(np.r_[data.y_train, data.y_test]), [4, 4])


def test_class_folder_clean_skip_has_no_warning(class_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_image_data(f"folder:{class_folder}", on_bad_file="skip")
    assert data.skipped == []


def test_class_folder_all_bad(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(2):
            (tmp_path / name / f"{index}.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no train images left in image folder .*: 2 "
                       r"file\(s\) were skipped as bad: .*empty \(0 bytes\)"):
        load_image_data(f"folder:{tmp_path}", on_bad_file="skip")


# Caption folders (load_image_text_data).


_BAD_CAPTIONS = {
    "empty": (b"", "has no caption"),
    "blank": (b"  \n\t\n", "has no caption"),
    "latin1": ("une légende".encode("latin-1"), "is not UTF-8 text"),
}


@pytest.mark.parametrize("kind", sorted(_BAD_CAPTIONS))
def test_caption_folder_bad_caption_raises(caption_folder, kind):
    content, reason = _BAD_CAPTIONS[kind]
    (caption_folder / "3.txt").write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_image_text_data(str(caption_folder))
    message = str(info.value)
    assert f"caption file {str(caption_folder / '3.txt')!r} {reason}" in message
    assert _HINT in message and "\n" not in message


def test_caption_folder_bad_image_raises(caption_folder):
    (caption_folder / "3.png").write_bytes(_png(3)[:30])  # truncated PNG
    with pytest.raises(ValueError, match=r"could not decode image .*3\.png': is not a "
                       r"decodable image \(.*on_bad_file='skip'"):
        load_image_text_data(str(caption_folder))


def test_caption_folder_skips_and_counts(caption_folder):
    (caption_folder / "0.txt").write_bytes(b"   \n")
    (caption_folder / "1.txt").write_bytes(b"\xff\xfe caption")
    (caption_folder / "2.txt").unlink()
    (caption_folder / "3.png").write_bytes(b"")
    (caption_folder / "4.png").write_bytes(b"not a png at all")
    (caption_folder / "6.jpg").write_bytes(_jpeg()[:-20])  # truncated JPEG
    (caption_folder / "6.txt").write_text("picture 6")
    for index in range(7, 11):
        (caption_folder / f"{index}.png").write_bytes(_png(index))
        (caption_folder / f"{index}.txt").write_text(f"picture {index}\n")
    with pytest.warns(UserWarning, match=r"skipped 6 bad file\(s\) in caption folder"):
        data = load_image_text_data(str(caption_folder), test_fraction=0.34, on_bad_file="skip")
    # Captions are checked before the split, images only when decoded.
    assert sorted(data.captions_train + data.captions_test) == [
        f"picture {index}" for index in (10, 5, 7, 8, 9)
    ]
    assert len(data.x_train) == len(data.captions_train)
    assert len(data.x_test) == len(data.captions_test)
    reasons = {pathlib_name(path): reason for path, reason in data.skipped}
    assert reasons == {
        "0.txt": "has no caption: expected a non-empty caption on at least one line",
        "1.txt": "is not UTF-8 text (invalid start byte at byte 0)",
        "2.png": "has no caption file '2.txt'",
        "3.png": "is empty (0 bytes)",
        "4.png": reasons["4.png"],
        "6.jpg": reasons["6.jpg"],
    }
    assert reasons["4.png"].startswith("is not a decodable image (Unknown image file format")
    assert reasons["6.jpg"].startswith("is not a decodable image (")


def pathlib_name(path):
    return path.rsplit("/", 1)[-1]


def test_caption_folder_all_bad(caption_folder):
    for index in range(6):
        (caption_folder / f"{index}.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"no captioned images left in caption folder .*"
                       r"6 file\(s\) were skipped as bad"):
        load_image_text_data(str(caption_folder), on_bad_file="skip")


def test_caption_folder_split_left_empty(caption_folder):
    for index in range(1, 6):
        (caption_folder / f"{index}.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no (train|test) pairs left in caption folder"):
        load_image_text_data(str(caption_folder), on_bad_file="skip")


# TFDS examples whose image does not decode.


class TinyCorrupt(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A local TFDS dataset whose examples 1 and 4 hold undecodable image
    bytes (and example 2 a blank caption), in train and test."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["x", "y"]),
                "caption": tfds.features.Text(),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(), "test": self._generate_examples()}

    def _generate_examples(self):
        for index in range(6):
            image = b"garbage, not a png" if index in (1, 4) else _png(index)
            caption = " " if index == 2 else f"image {index}"
            yield index, {"image": image, "label": index % 2, "caption": caption}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    TinyCorrupt(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


def test_tfds_raises_naming_the_example(tfds_dir):
    with pytest.raises(ValueError) as info:
        load_image_data("tfds:tiny_corrupt", data_dir=tfds_dir)
    message = str(info.value)
    assert "could not decode the 'image' image of TFDS example 'tiny_corrupt-train" in message
    assert "(split 'train'): Unknown image file format" in message
    assert _HINT in message and "\n" not in message
    # The caption loader meets the blank caption (during the pass) before
    # the undecodable images (named after it).
    with pytest.raises(ValueError) as info:
        load_image_text_data("tfds:tiny_corrupt", data_dir=tfds_dir)
    message = str(info.value)
    assert re.search(r"example \d has no non-empty caption in 'caption' \(TFDS example "
                     r"'tiny_corrupt-train\.tfrecord-00000-of-00001__\d'\)", message)
    assert _HINT in message and "\n" not in message


def test_tfds_image_skips_and_counts(tfds_dir):
    with pytest.warns(UserWarning, match=r"skipped 4 bad file\(s\) in TFDS dataset"):
        data = load_image_data("tfds:tiny_corrupt", data_dir=tfds_dir, on_bad_file="skip")
    assert (len(data.x_train), len(data.x_test)) == (4, 4)
    assert len(data.skipped) == 4
    assert all(name.startswith("tiny_corrupt-") and reason.startswith("is not a decodable")
               for name, reason in data.skipped)
    # Examples 0, 2, 3 and 5 are left (TFDS stores them in its own order).
    assert sorted(data.y_train.tolist()) == sorted(data.y_test.tolist()) == [0, 0, 1, 1]
    names = [name for name, _ in data.skipped]  # tfds ids: shard file and record index
    assert len(set(names)) == 4 and sum("-train.tfrecord-" in name for name in names) == 2


def test_tfds_captions_skip_bad_images_and_blank_captions(tfds_dir):
    with pytest.warns(UserWarning, match=r"skipped 6 bad file\(s\)"):
        data = load_image_text_data("tfds:tiny_corrupt", data_dir=tfds_dir, on_bad_file="skip")
    assert sorted(data.captions_train) == ["image 0", "image 3", "image 5"]
    assert sorted(data.captions_test) == sorted(data.captions_train)
    for caption, label in zip(data.captions_test, data.y_test):
        assert label == int(caption.split()[-1]) % 2
    assert sum("no non-empty caption" in reason for _, reason in data.skipped) == 2
