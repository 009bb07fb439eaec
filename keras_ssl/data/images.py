"""Image datasets as NumPy arrays for pretraining and evaluation.

`load_image_data` turns a dataset spec into an `ImageData`: float32 images in
`[0, 1]` with shape `(N, H, W, 3)` and int32 labels. The supported specs are

* `"digits"`: the embedded cluttered-digits set (`load_cluttered_digits`),
  the default, which needs no files at all;
* `"tfds:NAME"`: a TensorFlow Datasets image classification dataset that is
  already prepared in a local `data_dir` (nothing is ever downloaded);
* `"folder:PATH"`: a folder with one sub-folder of images per class;
* NumPy arrays: `(x, y)`, `(x_train, y_train, x_test, y_test)` or a dict
  with those keys (and optionally `x_unlabeled`).

The arrays are small enough to hold in memory; the augmentation pipeline
builds its `tf.data` input from them.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from keras_ssl.data.bad_files import (
    BadFile,
    BadFiles,
    check_on_bad_file,
    decode_image_file,
    tfds_decoded,
)
from keras_ssl.datasets.digits import load_cluttered_digits
from keras_ssl.datasets.splits import stratified_split

#: What `load_image_data` accepts as a dataset.
DatasetSpec = Union[str, Sequence[np.ndarray], Mapping[str, np.ndarray]]

#: The side `load_image_data("digits")` renders the digits at. The source
#: scans are 8×8, so 16 px keeps all of their detail; 32 px costs 4× the
#: compute per image, so the same training budget gives far fewer epochs
#: and, measured with the default backbone, a worse representation
#: (docs/results/vision.md).
DIGITS_IMAGE_SIZE = 16

_SPEC_HELP = "expected 'digits', 'tfds:NAME', 'folder:PATH' or NumPy arrays"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_BATCH = 1024
_SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclasses.dataclass
class ImageData:
    """Images for self-supervised pretraining and their evaluation splits.

    All images are float32 in `[0, 1]` with shape `(N, H, W, 3)`; labels are
    int32 indices into `class_names`.

    Attributes:
        name: The spec the data came from, e.g. `"digits"` or `"tfds:mnist"`.
        x_unlabeled: Images for self-supervised pretraining. Never contains
            test images.
        x_train: Labelled images for fitting k-NN or linear-probe evaluators.
        y_train: Labels of `x_train`.
        x_test: Held-out labelled images for evaluation.
        y_test: Labels of `x_test`.
        class_names: Name of each class, indexed by label.
        skipped: `(path, reason)` of each bad file (or TFDS example id) left
            out with `on_bad_file="skip"`; empty otherwise.

    Example:

    >>> data = load_image_data("digits", max_examples=100)
    >>> data.image_shape, data.num_classes
    ((16, 16, 3), 10)
    """

    name: str
    x_unlabeled: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(height, width, channels)` of every image."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes, `len(class_names)`."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, unlabeled={len(self.x_unlabeled)}, "
            f"train={len(self.x_train)}, test={len(self.x_test)})"
        )


def load_image_data(
    spec: DatasetSpec = "digits",
    image_size: int | tuple[int, int] | None = None,
    data_dir: str | None = None,
    max_examples: int | None = None,
    seed: int = 0,
    validation_split: float = 0.25,
    on_bad_file: str = "raise",
) -> ImageData:
    """Loads an image classification dataset into NumPy arrays.

    Args:
        spec: The dataset:
            `"digits"` (default): the embedded cluttered digits; `x_unlabeled`
            holds several fresh renderings of the training digits.
            `"tfds:NAME"`: a TFDS dataset with `image` and `label` features,
            read from `data_dir` without downloading. The `train` split gives
            `x_train` and `x_unlabeled`; the `test` split gives `x_test`, or,
            when there is none, a stratified `validation_split` part of
            `train` does.
            `"folder:PATH"`: `PATH/<class_name>/<image>` files (PNG, JPEG, BMP
            or GIF); classes are the sorted sub-folder names and a
            stratified `validation_split` of each class goes to `x_test`.
            NumPy arrays: `(x, y)` (split like a folder),
            `(x_train, y_train, x_test, y_test)`, or a dict with keys `x`,
            `y` or `x_train`, `y_train`, `x_test`, `y_test`, plus an
            optional `x_unlabeled`. Images may be `(N, H, W)`,
            `(N, H, W, 1)` or `(N, H, W, 3)`, integers in `[0, 255]` or
            floats in `[0, 1]`; labels are non-negative integers.
            Except for digits, `x_unlabeled` defaults to `x_train`.
        image_size: `size` or `(height, width)` to resize every image to.
            For digits, the side the digits are rendered at (default
            `DIGITS_IMAGE_SIZE`, 16).
            Otherwise images keep their size, which must then be the same
            for all of them.
        data_dir: Local TFDS data directory (`"tfds:"` specs only); `None`
            means the TFDS default.
        max_examples: Upper bound on the examples kept per split (each of
            `x_unlabeled`, `x_train` and `x_test`). Array, digit and folder
            splits keep a seeded random subset; TFDS splits keep their first
            examples, so no more than that are read (for a TFDS dataset
            without a test split, the cap applies before splitting `train`).
        seed: Seed for splitting, subsetting and the digit rendering.
        validation_split: Fraction of each class held out as test data where
            the source has no test split (digits, folders, `(x, y)` arrays,
            TFDS datasets without one), in `(0, 1)`.
        on_bad_file: What to do with a folder image that cannot be decoded
            (garbage, zero-byte or truncated file) or a TFDS example whose
            image fails to decode: `"raise"` (default) a `ValueError` naming
            the file and the reason, or `"skip"` it: the data's `skipped`
            lists `(path, reason)` for each, a warning gives the count, and
            a `ValueError` says so if nothing is left. Skipped files are not
            replaced, so their split ends up smaller than `max_examples`.

    Returns:
        An `ImageData`. Its arrays are fresh copies that the caller may modify.

    Raises:
        ValueError: If the spec, an argument or the data is invalid, if a
            TFDS dataset is not prepared in `data_dir`, or for a bad file
            (unless skipped).
        FileNotFoundError: If a `"folder:"` path does not exist.

    Example:

    >>> data = load_image_data("digits", max_examples=200)
    >>> data.x_unlabeled.shape, data.x_train.dtype
    ((200, 16, 16, 3), dtype('float32'))
    >>> x = np.zeros((10, 8, 8), np.uint8)  # grayscale, uint8
    >>> y = np.arange(10) % 2
    >>> arrays = load_image_data((x, y), image_size=16, validation_split=0.2)
    >>> arrays.x_train.shape, arrays.x_test.shape, arrays.class_names
    ((8, 16, 16, 3), (2, 16, 16, 3), ['0', '1'])
    """
    size = _check_image_size(image_size)
    if max_examples is not None and (
        isinstance(max_examples, bool)
        or not isinstance(max_examples, (int, np.integer))
        or max_examples < 1
    ):
        raise ValueError(f"max_examples must be a positive integer or None, got {max_examples!r}")
    if not 0.0 < float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    check_on_bad_file(on_bad_file)
    rng = np.random.default_rng(seed)

    if isinstance(spec, str):
        kind, _, argument = spec.partition(":")
        if spec == "digits":
            return _load_digits(size, max_examples, seed, rng, validation_split)
        if kind == "tfds" and argument:
            return _load_tfds(
                argument, size, data_dir, max_examples, rng, validation_split, on_bad_file
            )
        if kind == "folder" and argument:
            return _load_folder(
                argument, size, max_examples, rng, validation_split, on_bad_file
            )
        raise ValueError(f"unknown dataset {spec!r}: {_SPEC_HELP}")
    if isinstance(spec, (Mapping, tuple, list)):
        return _load_arrays(spec, size, max_examples, rng, validation_split)
    raise ValueError(f"unknown dataset of type {type(spec).__name__}: {_SPEC_HELP}")


def _check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    sides = (image_size, image_size) if np.ndim(image_size) == 0 else tuple(image_size)
    if len(sides) != 2 or not all(
        isinstance(side, (int, np.integer)) and not isinstance(side, bool) and side > 0
        for side in sides
    ):
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair, got {image_size!r}"
        )
    return int(sides[0]), int(sides[1])


def _subset(array: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """A seeded random subset of at most `limit` items, in their original order."""
    if limit is None or len(array) <= limit:
        return array
    return array[np.sort(rng.choice(len(array), size=limit, replace=False))]


def _load_digits(
    size: tuple[int, int] | None,
    max_examples: int | None,
    seed: int,
    rng: np.random.Generator,
    validation_split: float,
) -> ImageData:
    if size is not None and size[0] != size[1]:
        raise ValueError(f"digits are square: expected image_size to be an int, got {size!r}")
    digits = load_cluttered_digits(
        image_size=DIGITS_IMAGE_SIZE if size is None else size[0],
        test_fraction=validation_split, seed=seed
    )
    # Indexing copies the cached, read-only arrays into writable ones.
    train = _subset(np.arange(len(digits.x_train)), max_examples, rng)
    test = _subset(np.arange(len(digits.x_test)), max_examples, rng)
    unlabeled = _subset(np.arange(len(digits.x_unlabeled)), max_examples, rng)
    return ImageData(
        name="digits",
        x_unlabeled=digits.x_unlabeled[unlabeled],
        x_train=digits.x_train[train],
        y_train=digits.y_train[train],
        x_test=digits.x_test[test],
        y_test=digits.y_test[test],
        class_names=list(digits.class_names),
    )


def _load_arrays(
    arrays: Sequence[Any] | Mapping[str, Any],
    size: tuple[int, int] | None,
    max_examples: int | None,
    rng: np.random.Generator,
    validation_split: float,
) -> ImageData:
    if isinstance(arrays, Mapping):
        labelled = set(arrays) - {"x_unlabeled"}
        if labelled == {"x", "y"}:
            parts = [arrays["x"], arrays["y"]]
        elif labelled == set(_SPLIT_KEYS):
            parts = [arrays[key] for key in _SPLIT_KEYS]
        else:
            raise ValueError(
                f"unexpected array keys {sorted(arrays)}: expected 'x', 'y' or 'x_train', "
                "'y_train', 'x_test', 'y_test' (plus an optional 'x_unlabeled')"
            )
        unlabeled = arrays.get("x_unlabeled")
    else:
        parts, unlabeled = list(arrays), None
        if len(parts) not in (2, 4):
            raise ValueError(
                f"got a sequence of {len(parts)} arrays: "
                "expected (x, y) or (x_train, y_train, x_test, y_test)"
            )

    if len(parts) == 2:
        x = _as_images(parts[0], "x", size)
        y = _as_labels(parts[1], len(x), "y")
        train, test = stratified_split(y, validation_split, rng)
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    else:
        x_train = _as_images(parts[0], "x_train", size)
        y_train = _as_labels(parts[1], len(x_train), "y_train")
        x_test = _as_images(parts[2], "x_test", size)
        y_test = _as_labels(parts[3], len(x_test), "y_test")
    train = _subset(np.arange(len(x_train)), max_examples, rng)
    test = _subset(np.arange(len(x_test)), max_examples, rng)
    x_train, y_train, x_test, y_test = x_train[train], y_train[train], x_test[test], y_test[test]
    if unlabeled is None:
        x_unlabeled = x_train
    else:
        x_unlabeled = _subset(_as_images(unlabeled, "x_unlabeled", size), max_examples, rng)
    return _assemble("arrays", x_unlabeled, x_train, y_train, x_test, y_test, class_names=None)


def _assemble(
    name: str,
    x_unlabeled: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    class_names: list[str] | None,
) -> ImageData:
    """Checks that the splits fit together and builds the `ImageData`."""
    for what, x in (("train", x_train), ("test", x_test), ("unlabeled", x_unlabeled)):
        if len(x) == 0:
            raise ValueError(f"dataset {name!r} has no {what} images: expected at least one")
    shapes = {x.shape[1:] for x in (x_unlabeled, x_train, x_test)}
    if len(shapes) > 1:
        raise ValueError(
            f"dataset {name!r} mixes image shapes {sorted(shapes)}: "
            "expected one shape (pass image_size to resize)"
        )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if class_names is None:
        class_names = [str(label) for label in range(num_classes)]
    elif num_classes > len(class_names):
        raise ValueError(
            f"dataset {name!r} has label {num_classes - 1}: "
            f"expected labels below {len(class_names)}"
        )
    return ImageData(name, x_unlabeled, x_train, y_train, x_test, y_test, list(class_names))


def _as_images(x: Any, what: str, size: tuple[int, int] | None) -> np.ndarray:
    """Converts images to a fresh float32 `(N, H, W, 3)` array in `[0, 1]`."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"{what} has shape {x.shape}: "
            "expected images of shape (N, H, W), (N, H, W, 1) or (N, H, W, 3)"
        )
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(
                f"{what} has integer values in [{x.min()}, {x.max()}]: expected [0, 255]"
            )
        images = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        images = np.array(x, dtype=np.float32)
        if not np.isfinite(images).all():
            raise ValueError(f"{what} has NaN or infinite values: expected floats in [0, 1]")
        if images.size and (images.min() < 0.0 or images.max() > 1.0):
            raise ValueError(
                f"{what} has float values in [{images.min()}, {images.max()}]: "
                "expected [0, 1] (pass uint8 for 0-255 images)"
            )
    else:
        raise ValueError(
            f"{what} has dtype {x.dtype}: expected integer (0-255) or float (0-1) images"
        )
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return _resize(images, size)


def _as_labels(y: Any, count: int, what: str) -> np.ndarray:
    """Converts labels to a fresh int32 `(N,)` array."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what} has shape {y.shape}: expected labels of shape (N,) or (N, 1)")
    if len(y) != count:
        raise ValueError(
            f"{what} has {len(y)} labels for {count} images: expected one label per image"
        )
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all()
    )
    if not integral or (y.size and y.min() < 0):
        raise ValueError(
            f"{what} must hold non-negative integer class indices, got dtype {y.dtype}"
        )
    return y.astype(np.int32)


def _resize(images: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resizes float `(N, H, W, 3)` images with antialiased bilinear filtering."""
    if size is None or images.shape[1:3] == size:
        return images
    import tensorflow as tf

    resized = np.empty((len(images), *size, 3), dtype=np.float32)
    for start in range(0, len(images), _BATCH):
        batch = images[start : start + _BATCH]
        resized[start : start + _BATCH] = tf.image.resize(batch, size, antialias=True).numpy()
    return np.clip(resized, 0.0, 1.0, out=resized)


def _load_folder(
    path: str,
    size: tuple[int, int] | None,
    max_examples: int | None,
    rng: np.random.Generator,
    validation_split: float,
    on_bad_file: str = "raise",
) -> ImageData:
    root = pathlib.Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {str(root)!r} not found: expected a folder of class sub-folders"
        )
    class_dirs = sorted(
        child for child in root.iterdir() if child.is_dir() and not child.name.startswith(".")
    )
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for file in sorted(class_dir.iterdir()):
            if file.is_file() and file.suffix.lower() in _IMAGE_SUFFIXES:
                files.append(str(file))
                labels.append(label)
    if not files:
        raise ValueError(
            f"image folder {str(root)!r} has no images: expected <class_name>/<image> files "
            f"ending in {', '.join(_IMAGE_SUFFIXES)}"
        )
    labels = np.asarray(labels, dtype=np.int32)
    train, test = stratified_split(labels, validation_split, rng)
    # Cap before decoding, so only the kept images are read.
    train, test = _subset(train, max_examples, rng), _subset(test, max_examples, rng)
    bad = BadFiles(on_bad_file, f"image folder {str(root)!r}")

    def decode(indices: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        """The images of `indices` that decode, and their labels."""
        images: list[np.ndarray] = []
        kept: list[int] = []
        for index in indices:
            file = files[index]
            try:
                image = decode_image_file(file, size)
            except BadFile as error:
                bad.bad(file, str(error), f"could not decode image {file!r}: {error}")
                continue
            if images and image.shape != images[0].shape:
                raise ValueError(
                    f"image {file!r} has shape {image.shape}, others {images[0].shape}: "
                    "expected one size (pass image_size to resize)"
                )
            images.append(image)
            kept.append(index)
        bad.check_left(len(images), f"{what} images")
        stacked = np.stack(images) if images else np.zeros((0, 0, 0, 3), np.float32)
        return stacked, labels[np.asarray(kept, dtype=np.int64)]

    x_train, y_train = decode(train, "train")
    x_test, y_test = decode(test, "test")
    bad.warn()
    class_names = [class_dir.name for class_dir in class_dirs]
    data = _assemble(f"folder:{path}", x_train, x_train, y_train, x_test, y_test, class_names)
    data.skipped = bad.skipped
    return data


def tfds_builder(name: str, data_dir: str | None):
    """`(builder, where)`: the TFDS builder of `name` in `data_dir` (never
    downloading) and a phrase naming the directory, for error messages."""
    from keras_ssl._optional import require

    tfds = require("tensorflow_datasets", "tfds", f"the TFDS dataset {name!r}")

    where = f"data_dir={data_dir!r}" if data_dir is not None else "the default TFDS data_dir"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise ValueError(
            f"TFDS dataset {name!r} is neither registered nor prepared in {where}: "
            "expected a name from tfds.list_builders() (nothing is downloaded)"
        ) from None
    return builder, where


def tfds_split(
    builder,
    name: str,
    where: str,
    split: str,
    max_examples: int | None,
    with_ids: bool = False,
    encoded: str | None = None,
):
    """The `split` of a prepared TFDS `builder` as a `tf.data.Dataset` (at
    most `max_examples`), or a `ValueError` saying it is not prepared.

    `with_ids` adds each example's `tfds_id`; `encoded` names an image
    feature to leave encoded (both for `bad_files.tfds_decoded`)."""
    import tensorflow as tf
    from keras_ssl._optional import require

    tfds = require("tensorflow_datasets", "tfds", f"the TFDS dataset {name!r}")

    options = {}
    if with_ids:
        options["read_config"] = tfds.ReadConfig(add_tfds_id=True)
    if encoded is not None:
        options["decoders"] = {encoded: tfds.decode.SkipDecoding()}
    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False, **options)
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError):
        raise ValueError(
            f"TFDS dataset {name!r} is not prepared in {where}: expected its files there, "
            "nothing is downloaded (prepare it first with "
            f"tfds.builder({name!r}, data_dir=...).download_and_prepare())"
        ) from None
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    return dataset


def _load_tfds(
    name: str,
    size: tuple[int, int] | None,
    data_dir: str | None,
    max_examples: int | None,
    rng: np.random.Generator,
    validation_split: float,
    on_bad_file: str = "raise",
) -> ImageData:
    from keras_ssl._optional import require

    tfds = require("tensorflow_datasets", "tfds", f"the TFDS dataset {name!r}")

    builder, where = tfds_builder(name, data_dir)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ValueError(
            f"TFDS dataset {name!r} has features {sorted(features)}: expected 'image' and 'label'"
        )
    label = features["label"]
    class_names = list(label.names) if isinstance(label, tfds.features.ClassLabel) else None
    # Mocked builders (tfds.testing.mock_data) know no splits; assume both.
    splits = set(builder.info.splits)
    if splits and "train" not in splits:
        raise ValueError(
            f"TFDS dataset {name!r} has splits {sorted(splits)}: expected a 'train' split"
        )

    bad = BadFiles(on_bad_file, f"TFDS dataset {name!r} in {where}")

    def read(split: str) -> tuple[np.ndarray, np.ndarray]:
        dataset, finish = tfds_decoded(
            lambda encoded: tfds_split(
                builder, name, where, split, max_examples, with_ids=True,
                encoded="image" if encoded else None,
            ),
            features["image"],
            "image",
            lambda example: (_tfds_image(example["image"], size), example["label"]),
            bad,
            split,
        )
        if dataset.element_spec[1].shape.is_fully_defined():
            dataset = dataset.batch(_BATCH)
        else:  # Variable image sizes: stack one by one, and only equal ones.
            dataset = dataset.map(lambda *parts: tuple(part[None] for part in parts))
        images, labels, seen = [], [], set()
        for ids, image, label in dataset.as_numpy_iterator():
            seen.update(ids.tolist())
            if images and image.shape[1:] != images[0].shape[1:]:
                raise ValueError(
                    f"TFDS dataset {name!r} has images of shapes {images[0].shape[1:]} and "
                    f"{image.shape[1:]}: expected one size (pass image_size to resize)"
                )
            images.append(image)
            labels.append(label)
        finish(seen)
        bad.check_left(len(images), f"images in split {split!r}")
        if not images:
            raise ValueError(f"TFDS dataset {name!r} split {split!r} is empty: expected images")
        return np.concatenate(images), np.concatenate(labels).astype(np.int32)

    x_train, y_train = read("train")
    if not splits or "test" in splits:
        x_test, y_test = read("test")
    else:
        train, test = stratified_split(y_train, validation_split, rng)
        x_train, y_train, x_test, y_test = (
            x_train[train], y_train[train], x_train[test], y_train[test]
        )
    bad.warn()
    data = _assemble(f"tfds:{name}", x_train, x_train, y_train, x_test, y_test, class_names)
    data.skipped = bad.skipped
    return data


def _tfds_image(image: Any, size: tuple[int, int] | None) -> Any:
    """A TFDS image tensor as float32 RGB in `[0, 1]`, optionally resized."""
    import tensorflow as tf

    image = tf.image.convert_image_dtype(image, tf.float32)
    channels = image.shape[-1]
    if channels == 1:
        image = tf.repeat(image, 3, axis=-1)
    elif channels == 4:
        image = image[..., :3]
    elif channels != 3:
        raise ValueError(f"TFDS images have {channels} channels: expected 1, 3 or 4")
    if size is not None:
        image = tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0.0, 1.0)
    return image
