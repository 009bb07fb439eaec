"""Streamed images (`keras_ssl.data.image_files`): folders flat, nested, with
labels from sub-folders or a CSV, every format TensorFlow decodes, bad files
listed before training, TFDS from a local data_dir, and the endless stream's
exact start. The loaders are tf.data only (backend-free): tested under
TensorFlow; the CLI run on a folder runs on every backend."""

import io
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import BACKEND
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
from keras_ssl.data.image_files import (
    ImageFiles,
    check_image_files,
    decode_image,
    file_problem,
    find_image_files,
    load_size,
    stream_image_data,
)
from keras_ssl.datasets.image_folder import write_image_folder

backend_free = pytest.mark.skipif(BACKEND != "tensorflow",
                                  reason="tf.data only: tested under TensorFlow")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    write_image_folder(root, 24, size=(20, 28), num_classes=3,
                       formats=("jpg", "png", "webp", "bmp"))
    return root


@backend_free
def test_find_flat_nested_and_folder_labels(tmp_path, labelled):
    write_image_folder(tmp_path / "flat", 5, size=12)
    write_image_folder(tmp_path / "nested", 150, size=8, nested=True)
    (tmp_path / "flat" / "notes.txt").write_text("not an image")
    (tmp_path / "flat" / ".hidden.jpg").write_bytes(b"x")
    flat = find_image_files(tmp_path / "flat")
    assert len(flat) == 5 and flat.labels is None
    nested = find_image_files(tmp_path / "nested")
    assert len(nested) == 150 and any("part_1" in p for p in nested.paths)
    files = find_image_files(labelled, labels="folders")
    assert files.class_names == ["class_0", "class_1", "class_2"]
    assert np.bincount(files.labels).tolist() == [8, 8, 8]
    with pytest.raises(ValueError, match="in no sub-folder"):
        find_image_files(tmp_path / "flat", labels="folders")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no images"):
        find_image_files(tmp_path / "empty")


@backend_free
def test_csv_labels(tmp_path):
    paths = write_image_folder(tmp_path, 4, size=8)
    table = tmp_path / "labels.csv"
    table.write_text("path,label\n" + "".join(
        f"{p.rsplit('/', 1)[-1]},{'cat' if i % 2 else 'dog'}\n"
        for i, p in enumerate(paths[:3])))
    files = find_image_files(tmp_path, labels=str(table))
    assert len(files) == 3 and files.class_names == ["cat", "dog"]
    assert files.labels.tolist() == [1, 0, 1]
    table.write_text("missing.jpg,0\n")
    with pytest.raises(ValueError, match="do not exist"):
        find_image_files(tmp_path, labels=str(table))


@backend_free
def test_decode_every_format_to_a_centre_square(tmp_path):
    shapes = {}
    for name, mode, suffix in [("gray", "L", "jpg"), ("rgba", "RGBA", "png"),
                               ("cmyk", "CMYK", "jpg"), ("webp", "RGB", "webp"),
                               ("bmp", "RGB", "bmp"), ("gif", "P", "gif")]:
        buffer = io.BytesIO()
        Image.new(mode, (30, 18)).save(buffer, format={"jpg": "JPEG"}.get(suffix, suffix.upper()))
        image = decode_image(buffer.getvalue(), 12).numpy()
        shapes[name] = (image.shape, str(image.dtype))
    assert set(shapes.values()) == {((12, 12, 3), "uint8")}
    # The shorter side is resized to the size, then the centre is kept.
    stripes = np.zeros((10, 30, 3), np.uint8)
    stripes[:, 10:20] = 255
    buffer = io.BytesIO()
    Image.fromarray(stripes).save(buffer, format="PNG")
    centre = decode_image(buffer.getvalue(), 10).numpy()
    assert centre[:, 1:-1].min() == 255  # only the white middle third is left
    assert load_size(224) == 256


@backend_free
def test_bad_files_listed_at_once_before_training(tmp_path):
    paths = write_image_folder(tmp_path, 6, size=16, formats=("jpg", "png"))
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"not an image at all")
    data = open(paths[0], "rb").read()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    data = open(paths[1], "rb").read()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert file_problem(paths[0]) is None
    files = find_image_files(tmp_path)
    with pytest.raises(ValueError) as info:
        check_image_files(files, "raise")
    message = str(info.value)
    assert message.startswith("4 bad image file(s)") and "--skip-bad-files" in message
    for reason in ("is empty", "not an image", "truncated JPEG", "truncated PNG"):
        assert reason in message
    with pytest.warns(UserWarning, match="skipped 4 bad file"):
        good, skipped = check_image_files(files, "skip")
    assert len(good) == 6 and len(skipped) == 4


@backend_free
def test_endless_stream_starts_exactly_and_stays_bounded(tmp_path):
    write_image_folder(tmp_path, 10, size=(14, 18), formats=("jpg", "png"))
    files = find_image_files(tmp_path, image_size=12)
    views = multi_view_dataset(files, SimCLRAugmentation(8), batch_size=4,
                               seed=5, repeat=True)
    skipped = [v[0][0].numpy() for v in views.skip(7).take(2)]
    started = [v[0][0].numpy() for v in views.from_batch(7).take(2)]
    assert all(np.array_equal(a, b) for a, b in zip(skipped, started))
    assert started[0].shape == (4, 8, 8, 3)
    # Every pass holds each file once; passes differ in order.
    order = [int(i) for i in files._records(True, 5, 0, True).take(20)]
    assert sorted(order[:10]) == sorted(order[10:]) == list(range(10))
    assert order[:10] != order[10:]


@backend_free
def test_stream_data_splits_labelled_folders(labelled):
    data = stream_image_data(f"folder:{labelled}", image_size=16, labels="folders")
    assert data.labelled and data.class_names == ["class_0", "class_1", "class_2"]
    assert len(data.train) + len(data.test) == 24 and len(data.test) == 6
    assert set(data.unlabeled.paths) == set(data.train.paths)  # test never trained on
    assert data.unlabeled.image_size == load_size(16) and data.train.image_size == 16
    images, labels = next(iter(data.test.batches(4)))
    assert images.shape == (4, 16, 16, 3) and labels.dtype.name == "int32"
    assert stream_image_data(f"folder:{labelled}", 16, max_examples=5).unlabeled.paths.size == 5


class TinyPhotos(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A local TFDS image dataset of mixed sizes, train and test."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["a", "b"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12), "test": self._generate_examples(4)}

    def _generate_examples(self, count):
        rng = np.random.default_rng(count)
        for index in range(count):
            side = 10 + index % 3
            yield index, {"image": rng.integers(0, 256, (side, side + 2, 3), dtype=np.uint8),
                          "label": index % 2}


@backend_free
def test_tfds_streamed_from_a_local_data_dir(tmp_path):
    TinyPhotos(data_dir=str(tmp_path)).download_and_prepare()
    data = stream_image_data("tfds:tiny_photos", image_size=8, data_dir=str(tmp_path))
    assert len(data.unlabeled) == 12 and data.labelled and data.class_names == ["a", "b"]
    views = multi_view_dataset(data.unlabeled, SimCLRAugmentation(8), batch_size=4,
                               seed=1, repeat=True)
    first = [v[0][1].numpy() for v in views.skip(4).take(1)]
    again = [v[0][1].numpy() for v in views.from_batch(4).take(1)]
    assert np.array_equal(first[0], again[0]) and first[0].shape == (4, 8, 8, 3)
    images, labels = next(iter(data.test.batches(8)))
    assert images.shape == (4, 8, 8, 3) and sorted(labels.numpy()) == [0, 0, 1, 1]


def test_cli_pretrains_on_a_flat_folder_then_scores_a_labelled_one(tmp_path, labelled, capsys):
    from keras_ssl.cli import main

    write_image_folder(tmp_path / "flat", 12, size=(18, 22))
    tiny = ["--image-size", "8", "--batch-size", "4", "--steps", "2", "--quiet"]
    assert main(["pretrain", "simclr", "--dataset", f"folder:{tmp_path / 'flat'}",
                 "--out", str(tmp_path / "a"), *tiny]) == 0
    assert "not scored: the data has no labels" in capsys.readouterr().out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["scores"] == {"simclr": {}}
    if BACKEND != "torch":
        return  # scoring is backend-free beyond the step: once is enough
    assert main(["pretrain", "simclr", "--dataset", f"folder:{labelled}", "--labels",
                 "folders", "--out", str(tmp_path / "b"), *tiny]) == 0
    scores = json.loads((tmp_path / "b" / "summary.json").read_text())["scores"]
    assert set(scores) == {"simclr", "random_init"}
    assert 0.0 <= scores["simclr"]["knn_accuracy"] <= 1.0


def test_image_files_is_a_plain_value():
    files = ImageFiles(np.asarray(["a.jpg", "b.jpg"]), np.asarray([0, 1], np.int32), ["x", "y"], 8)
    assert len(files.subset([1])) == 1 and files.subset([1]).labels.tolist() == [1]
    assert files.resized(4).image_size == 4 and files.image_size == 8
