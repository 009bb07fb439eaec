"""Streamed images: folders of files and TFDS data sets far larger than memory.

`stream_image_data(spec, image_size)` lists the images of a folder (flat or
nested, labels from sub-folders or a CSV only when asked) or opens a TFDS data
set prepared in a local `data_dir`, and returns an `ImageStreamData`. Nothing
is decoded up front: the file names (or TFDS records) are the only thing held,
and every image is read, decoded, resized and augmented inside `tf.data`
(parallel calls, prefetch) when a batch needs it. Peak memory therefore does
not grow with the number of images.

Every source is an `ImageSource`: `source.dataset(...)` gives its images one
at a time (uint8 `(size, size, 3)`), optionally endless and starting anywhere
in the endless stream without decoding what comes before, which is how a
resumed run continues exactly where an interrupted one stopped.

Before training, `check_image_files` reads each file's first and last bytes
(not the image) and lists every empty, unreadable, unknown-format or truncated
file, so problems come out before the first step. A file that still fails to
decode while streaming is dropped with a warning.

Example:

```python
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
from keras_ssl.data.image_files import stream_image_data

data = stream_image_data("folder:/path/to/images", image_size=224)
views = multi_view_dataset(data.unlabeled, SimCLRAugmentation(224),
                           batch_size=256, seed=0, repeat=True)
```
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib

import numpy as np

from keras_ssl.data.bad_files import BadFiles, check_on_bad_file

#: File name endings the folder loaders pick up (TensorFlow decodes them all).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
#: Labelled images per split kept for evaluation unless told otherwise: the
#: features of a larger split are rarely worth their memory (k-NN and probe
#: accuracies settle long before).
EVAL_EXAMPLES = 10_000
#: Encoded TFDS records in the shuffle buffer of a streamed TFDS split.
TFDS_SHUFFLE_BUFFER = 2_000

# Leading bytes of each format TensorFlow decodes.
_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


# --- one image --------------------------------------------------------------------
def load_size(image_size: int) -> int:
    """The side a training image is loaded at before the random crops: 8/7
    of the crop side (256 for 224), ImageNet's resize-then-crop ratio."""
    return int(round(image_size * 8 / 7))


def decode_image(contents, size: int, crop: bool = True):
    """Encoded image bytes (JPEG, PNG, GIF, BMP, WebP; grayscale, RGBA or
    CMYK) → uint8 RGB `(size, size, 3)`: the shorter side resized to `size`
    (antialiased), then the centre square (`crop`), or the whole image
    squeezed to `size × size` (`crop=False`). A TensorFlow function, for
    `tf.data.Dataset.map`."""
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    if not crop:
        resized = tf.image.resize(image, (size, size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    new = tf.maximum(tf.cast(tf.math.ceil(shape * scale), tf.int32), size)
    resized = tf.image.resize(image, new, antialias=True)
    top = (new[0] - size) // 2
    left = (new[1] - size) // 2
    square = resized[top:top + size, left:left + size]
    square = tf.ensure_shape(square, (size, size, 3))
    return tf.cast(tf.clip_by_value(tf.round(square), 0, 255), tf.uint8)


def file_problem(path: str) -> str | None:
    """Why the image file `path` cannot be used, from its first and last
    bytes only (no decoding), or None when it looks whole."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "is empty (0 bytes)"
        with open(path, "rb") as file:
            head = file.read(16)
            file.seek(max(0, size - 64))
            tail = file.read(64)
    except OSError as error:
        return f"cannot be read ({error.strerror or type(error).__name__})"
    kind = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "WebP"
    if kind is None:
        return "is not an image TensorFlow decodes (JPEG, PNG, GIF, BMP or WebP)"
    if kind == "JPEG" and b"\xff\xd9" not in tail:
        return "is a truncated JPEG (no end-of-image marker)"
    if kind == "PNG" and b"IEND" not in tail:
        return "is a truncated PNG (no IEND chunk)"
    return None


# --- sources ------------------------------------------------------------------------
class ImageSource:
    """Images read one at a time inside `tf.data`.

    Subclasses give `__len__` (images per pass), `image_size`,
    `_records(shuffle, seed, start, repeat)` (the stream of records) and
    `_decoders()` (record → image, record → (image, label)); `dataset`
    assembles them.
    """

    image_size: int
    crop: bool = True

    def dataset(self, shuffle: bool = True, seed: int | None = None, start: int = 0,
                repeat: bool = False, labels: bool = False):
        """A `tf.data.Dataset` of single uint8 images `(size, size, 3)`
        (`labels=True`: `(image, label)` pairs).

        Args:
            shuffle: a new order at each pass (seeded).
            seed: the order's seed; the same seed gives the same stream
                from every new iterator (`repeat` needs one).
            start: the first element, counted in the endless stream
                (`repeat=True`); what comes before is not decoded.
            repeat: pass after pass, without end.
            labels: yield `(image, label)`; the source must have labels.
        """
        import tensorflow as tf

        if labels and not self.has_labels:
            raise ValueError(f"{self!r} has no labels")
        if repeat and seed is None:
            raise ValueError("an endless stream (repeat=True) needs a seed")
        records = self._records(shuffle, seed, int(start), repeat)
        decode, decode_labelled = self._decoders()
        decode = decode_labelled if labels else decode
        dataset = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
        # A file that passed the byte check and still fails to decode is
        # dropped (TensorFlow logs it); the rest of the stream goes on.
        dataset = dataset.ignore_errors(log_warning=True)
        if repeat:
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(
                tf.data.INFINITE_CARDINALITY))
        return dataset

    def batches(self, batch_size: int = 256, labels: bool = True):
        """One ordered pass in batches, `(images, labels)` (or images), for
        feature extraction."""
        import tensorflow as tf

        return self.dataset(shuffle=False, labels=labels).batch(
            batch_size).prefetch(tf.data.AUTOTUNE)

    def resized(self, image_size: int) -> "ImageSource":
        """The same images, decoded to another side."""
        import copy

        other = copy.copy(self)
        other.image_size = int(image_size)
        return other

    def sample(self, count: int) -> np.ndarray:
        """The first `count` images of one ordered pass, uint8 NumPy."""
        images = [image for image in self.dataset(shuffle=False).take(count)
                  .as_numpy_iterator()]
        if not images:
            raise ValueError(f"{self!r} yielded no image")
        return np.stack(images)

    @property
    def has_labels(self) -> bool:
        return False


def _endless_indices(size: int, shuffle: bool, seed: int, start: int):
    """Element `start` onwards of the endless stream of indices into
    `size` items: pass after pass, each a permutation drawn statelessly from
    `(seed, pass)` (or in order), so any iterator gives the same stream and
    the passes before `start` are never drawn."""
    import tensorflow as tf

    first_pass, offset = divmod(int(start), int(size))

    def permutation(p):
        indices = tf.range(size, dtype=tf.int64)
        if shuffle:
            key = tf.stack([tf.constant(seed, tf.int64), p])
            indices = tf.random.experimental.stateless_shuffle(indices, seed=key)
        return tf.data.Dataset.from_tensor_slices(indices)

    stream = tf.data.Dataset.counter(start=first_pass).flat_map(permutation)
    # flat_map leaves the cardinality unknown; `fit` (and a resumed run's
    # skip) must know that the stream never ends.
    return stream.skip(offset).apply(
        tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))


@dataclasses.dataclass(repr=False)
class ImageFiles(ImageSource):
    """Image files, with optional integer labels.

    Attributes:
        paths: the files (NumPy array of str), in a fixed order.
        labels: int32 label per file, or None.
        class_names: the name of each label, or None.
        image_size: the side images are decoded and resized to.
        crop: resize the shorter side and keep the centre square (True), or
            squeeze the whole image to a square.
    """

    paths: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    image_size: int = 224
    crop: bool = True

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        where = os.path.commonpath(list(self.paths[:1000])) if len(self.paths) else "-"
        return f"ImageFiles({len(self)} files under {where!r}, size {self.image_size})"

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def subset(self, indices, image_size: int | None = None) -> "ImageFiles":
        """The files at `indices` (and their labels)."""
        indices = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(
            self, paths=self.paths[indices],
            labels=None if self.labels is None else self.labels[indices],
            image_size=image_size or self.image_size)

    def _records(self, shuffle, seed, start, repeat):
        import tensorflow as tf

        if repeat:
            return _endless_indices(len(self), shuffle, seed, start)
        indices = tf.data.Dataset.range(len(self))
        if shuffle:
            indices = indices.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return indices.skip(start)

    def _decoders(self):
        import tensorflow as tf

        paths = tf.constant(self.paths.astype(str))
        labels = tf.constant(self.labels if self.labels is not None
                             else np.zeros(len(self), np.int32))

        def decode(index):
            return decode_image(tf.io.read_file(tf.gather(paths, index)),
                                self.image_size, self.crop)

        return decode, lambda index: (decode(index), tf.gather(labels, index))


class TFDSImages(ImageSource):
    """One split of a TFDS image data set prepared in a local `data_dir`,
    read record by record (the images stay encoded until a batch needs
    them; the shuffle buffer holds `TFDS_SHUFFLE_BUFFER` encoded records).

    Args:
        name: the TFDS name, e.g. `"imagenet2012"`.
        split: a TFDS split (`"train"`, `"test"`, `"train[:10%]"`).
        image_size: the side images are decoded and resized to.
        data_dir: the local TFDS data directory (nothing is downloaded).
        max_examples: read only the split's first examples.
    """

    def __init__(self, name: str, split: str, image_size: int, data_dir: str | None = None,
                 max_examples: int | None = None, crop: bool = True):
        from keras_ssl.data.images import tfds_builder

        self.name, self.split, self.data_dir = name, split, data_dir
        self.image_size, self.crop, self.max_examples = int(image_size), crop, max_examples
        self.builder, self.where = tfds_builder(name, data_dir)
        features = self.builder.info.features
        if "image" not in features:
            raise ValueError(
                f"TFDS dataset {name!r} has features {sorted(features)}: expected 'image'")
        self._has_labels = "label" in features
        label = features["label"] if self._has_labels else None
        self.class_names = list(label.names) if hasattr(label, "names") else None
        splits = self.builder.info.splits
        total = splits[split].num_examples if split in splits else None
        if max_examples is not None:
            total = max_examples if total is None else min(total, max_examples)
        self._size = total

    def __len__(self) -> int:
        if self._size is None:
            raise ValueError(f"the size of TFDS split {self.name}:{self.split} is unknown")
        return self._size

    def __repr__(self) -> str:
        return f"TFDSImages({self.name!r}, split={self.split!r}, size {self.image_size})"

    @property
    def has_labels(self) -> bool:
        return self._has_labels

    def _records(self, shuffle, seed, start, repeat):
        from keras_ssl.data.images import tfds_split

        records = tfds_split(self.builder, self.name, self.where, self.split,
                             self.max_examples, encoded="image")
        if repeat:
            records = records.repeat()
        if shuffle:
            records = records.shuffle(TFDS_SHUFFLE_BUFFER, seed=seed,
                                      reshuffle_each_iteration=not repeat)
        return records.skip(start)

    def _decoders(self):
        import tensorflow as tf

        def decode(example):
            return decode_image(example["image"], self.image_size, self.crop)

        return decode, lambda example: (decode(example),
                                        tf.cast(example["label"], tf.int32))


# --- finding and checking files -------------------------------------------------------------
def find_image_files(root: str | os.PathLike, labels: str | None = None,
                     image_size: int = 224) -> ImageFiles:
    """Every image file under `root` (recursively, hidden folders skipped),
    in sorted order.

    Args:
        root: a folder of images, flat or nested.
        labels: None (unlabelled), `"folders"` (the first-level sub-folder
            of each file is its class; files directly in `root` are an
            error), or the path of a CSV file with columns `path,label`
            (paths relative to `root`; labels are class names, or integers
            for unnamed classes). Files not in the CSV are left out.
        image_size: the side images are decoded to.

    Raises:
        FileNotFoundError: `root` or the CSV does not exist.
        ValueError: no image, or labels that do not fit.
    """
    root = pathlib.Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} not found")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [os.path.join(folder, f) for f in sorted(files)
                  if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]
    if not found:
        raise ValueError(
            f"image folder {str(root)!r} has no images: expected files ending in "
            f"{', '.join(IMAGE_SUFFIXES)} (in it or in its sub-folders)")
    paths = np.asarray(found)
    if labels is None:
        return ImageFiles(paths, image_size=int(image_size))
    if labels == "folders":
        parts = [os.path.relpath(p, root).split(os.sep) for p in found]
        loose = [p for p, part in zip(found, parts) if len(part) == 1]
        if loose:
            raise ValueError(
                f"labels from sub-folders, but {len(loose)} image(s) of {str(root)!r} are in "
                f"no sub-folder, e.g. {loose[0]!r}: expected ROOT/<class>/<image>")
        names = sorted({part[0] for part in parts})
        index = {name: i for i, name in enumerate(names)}
        ids = np.asarray([index[part[0]] for part in parts], np.int32)
        return ImageFiles(paths, ids, names, image_size=int(image_size))
    return _csv_labelled(root, pathlib.Path(labels).expanduser(), image_size)


def _csv_labelled(root, table, image_size):
    if not table.is_file():
        raise FileNotFoundError(f"label file {str(table)!r} not found")
    with open(table, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    bad = [i for i, row in enumerate(rows) if len(row) < 2 or not row[0].strip()]
    if bad:
        raise ValueError(f"{str(table)!r} row {bad[0] + 1}: expected 'path,label'")
    paths = [str(root / row[0].strip()) for row in rows]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(
            f"{len(missing)} file(s) named in {str(table)!r} do not exist under "
            f"{str(root)!r}, e.g. {missing[0]!r}")
    values = [row[1].strip() for row in rows]
    if all(v.isdigit() for v in values):
        ids = np.asarray([int(v) for v in values], np.int32)
        names = [str(i) for i in range(int(ids.max()) + 1)]
    else:
        names = sorted(set(values))
        index = {name: i for i, name in enumerate(names)}
        ids = np.asarray([index[v] for v in values], np.int32)
    return ImageFiles(np.asarray(paths), ids, names, image_size=int(image_size))


def check_image_files(files: ImageFiles, on_bad_file: str = "raise", source: str = "",
                      verbose: bool = False) -> tuple[ImageFiles, list[tuple[str, str]]]:
    """`(good files, skipped)`: every file's first and last bytes checked
    (`file_problem`); with `on_bad_file="raise"`, a `ValueError` listing the
    problems of all files at once; with `"skip"`, they are left out and
    listed in `skipped`."""
    check_on_bad_file(on_bad_file)
    progress = None
    if verbose and len(files) > 10_000:
        import keras

        progress = keras.utils.Progbar(len(files), unit_name="file")
    problems = []
    for i, path in enumerate(files.paths):
        reason = file_problem(path)
        if reason is not None:
            problems.append((i, str(path), reason))
        if progress is not None and (i + 1) % 5000 == 0:
            progress.update(i + 1)
    if not problems:
        return files, []
    bad = BadFiles("skip", source or repr(files))
    for _, path, reason in problems:
        bad.bad(path, reason)
    if on_bad_file == "raise":
        raise ValueError(
            f"{len(problems)} bad image file(s) in {bad.source}: {bad._listing()}; "
            "pass --skip-bad-files (on_bad_file='skip') to leave them out")
    bad.check_left(len(files) - len(problems), "images")
    keep = np.setdiff1d(np.arange(len(files)), [i for i, _, _ in problems])
    bad.warn()
    return files.subset(keep), bad.skipped


# --- the data of a run ------------------------------------------------------------------------
@dataclasses.dataclass
class ImageStreamData:
    """Streamed images for pretraining, and labelled splits to evaluate on.

    Attributes:
        name: the spec, e.g. `"folder:/data/photos"`.
        unlabeled: the `ImageSource` pretraining reads.
        train, test: labelled `ImageSource`s for k-NN and the linear probe,
            or None when the data has no labels.
        image_size: the side the model sees.
        class_names: the classes of `train`/`test`, or None.
        skipped: `(path, reason)` of each file left out as bad.
    """

    name: str
    unlabeled: ImageSource
    train: ImageSource | None
    test: ImageSource | None
    image_size: int
    class_names: list[str] | None = None
    skipped: list = dataclasses.field(default_factory=list)

    streamed = True

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)

    @property
    def num_classes(self) -> int:
        return len(self.class_names or ())

    @property
    def labelled(self) -> bool:
        return self.train is not None and self.test is not None

    def __repr__(self) -> str:
        return (f"ImageStreamData(name={self.name!r}, image_size={self.image_size}, "
                f"unlabeled={len(self.unlabeled)}, labelled={self.labelled})")


def stream_image_data(spec: str, image_size: int = 224, labels: str | None = None,
                      data_dir: str | None = None, max_examples: int | None = None,
                      eval_examples: int | None = EVAL_EXAMPLES, seed: int = 0,
                      validation_split: float = 0.25, on_bad_file: str = "raise",
                      verbose: bool = False) -> ImageStreamData:
    """Streamed images of a `"folder:PATH"` or `"tfds:NAME"` spec.

    Args:
        spec: `"folder:PATH"`: every image under PATH (flat or nested);
            `"tfds:NAME"`: the TFDS data set NAME prepared in `data_dir`
            (its `train` split is pretrained on without labels; with a
            `label` feature, `train` and `test` (or a held-out part of
            `train`) are the evaluation splits).
        image_size: the side the model sees.
        labels: folders only: None (unlabelled: no evaluation), `"folders"`
            or a CSV path (see `find_image_files`). Labelled files are split
            into train (also pretrained on) and a stratified held-out test.
        data_dir: the local TFDS data directory.
        max_examples: cap on the images pretrained on (the first ones of a
            TFDS split; a seeded subset of a folder).
        eval_examples: cap on each evaluation split (None: no cap).
        seed: seed of the splits and subsets.
        validation_split: the held-out fraction of labelled folders (and of
            TFDS sets without a `test` split).
        on_bad_file: `"raise"` to list every bad file in one error before
            training, `"skip"` to leave them out (folders).

    Example:

    ```python
    data = stream_image_data("folder:photos", image_size=224)
    images = data.unlabeled.sample(8)  # (8, 224, 224, 3) uint8
    ```
    """
    from keras_ssl.datasets.splits import stratified_split

    kind, _, argument = spec.partition(":")
    if kind not in ("folder", "tfds") or not argument:
        raise ValueError(f"unknown streamed dataset {spec!r}: expected folder:PATH or tfds:NAME")
    rng = np.random.default_rng(seed)
    size = int(image_size)

    def cap(indices, limit):
        if limit is None or len(indices) <= limit:
            return indices
        return np.sort(rng.choice(indices, size=limit, replace=False))

    if kind == "tfds":
        if labels is not None:
            raise ValueError("labels= is for folders; TFDS data sets bring their own")
        train = TFDSImages(argument, "train", load_size(size), data_dir, max_examples)
        data = ImageStreamData(spec, train, None, None, size)
        if train.has_labels:
            splits = train.builder.info.splits
            if "test" in splits:
                test_split = "test"
                eval_train = "train"
            else:  # hold out the end of train
                cut = int(round(100 * (1 - validation_split)))
                eval_train, test_split = f"train[:{cut}%]", f"train[{cut}%:]"
            data.train = TFDSImages(argument, eval_train, size, data_dir, eval_examples)
            data.test = TFDSImages(argument, test_split, size, data_dir, eval_examples)
            data.class_names = train.class_names or [
                str(i) for i in range(train.builder.info.features["label"].num_classes)]
        return data

    files = find_image_files(argument, labels, image_size=load_size(size))
    files, skipped = check_image_files(files, on_bad_file, f"image folder {argument!r}",
                                       verbose=verbose)
    if files.labels is None:
        unlabeled = files.subset(cap(np.arange(len(files)), max_examples))
        return ImageStreamData(spec, unlabeled, None, None, size, skipped=skipped)
    train, test = (np.sort(part) for part in
                   stratified_split(files.labels, validation_split, rng))
    unlabeled = files.subset(cap(train, max_examples))
    return ImageStreamData(
        spec, unlabeled,
        files.subset(cap(train, eval_examples), image_size=size),
        files.subset(cap(test, eval_examples), image_size=size),
        size, files.class_names, skipped)


def is_streamed(data) -> bool:
    """Whether `data` is streamed (an `ImageStreamData`), not in-memory arrays."""
    return getattr(data, "streamed", False)
