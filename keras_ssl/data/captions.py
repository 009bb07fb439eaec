"""Image-caption pairs for CLIP as NumPy arrays and lists of strings.

`load_image_text_data` turns a spec into an `ImageTextData`: float32 images
in `[0, 1]` with shape `(N, H, W, 3)`, one caption string per image, and a
held-out split. The supported specs are

* `"digits"`: the embedded captioned digits (`load_captioned_digits`), the
  default; its test split also has digit labels and class names, for
  zero-shot classification;
* a folder (`"PATH"` or `"folder:PATH"`): image files, searched recursively,
  each with a caption file of the same name ending in `.txt` beside it;
* `"tfds:NAME"` (e.g. `"tfds:coco_captions"`): a TensorFlow Datasets dataset
  with an image feature and captions, already prepared in a local
  `data_dir` (nothing is ever downloaded).

Nothing is fetched from the network. Every caption is checked to be a
non-empty string (after stripping whitespace) when it is loaded, so a bad
caption fails here, naming its file or index, rather than inside a tokenizer.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_ssl.data.bad_files import (
    BadFile,
    BadFiles,
    check_on_bad_file,
    decode_image_file,
    read_caption_file,
    tfds_decoded,
)
from keras_ssl.data.images import (
    _IMAGE_SUFFIXES,
    _check_image_size,
    _tfds_image,
    tfds_builder,
    tfds_split,
)

_SPEC_HELP = "expected 'digits', 'tfds:NAME' or a folder of images with .txt captions"
# TFDS splits used for the held-out pairs, in order of preference.
_TFDS_TEST_SPLITS = ("test", "validation", "val")
# Caption features looked for in a TFDS dataset, in order of preference.
_TFDS_CAPTION_KEYS = ("captions", "caption", "text")


@dataclasses.dataclass
class ImageTextData:
    """(image, caption) pairs for pretraining and a held-out split.

    Attributes:
        name: The spec the data came from: `"digits"`, `"folder:PATH"` or
            `"tfds:NAME"`.
        x_train: `(N, H, W, 3)` float32 images in `[0, 1]`, for pretraining.
        captions_train: `N` caption strings, one per `x_train` image.
        x_test: `(M, H, W, 3)` held-out images (never in `x_train`).
        captions_test: their `M` captions.
        y_test: `(M,)` int32 labels of `x_test` for zero-shot classification,
            indices into `class_names`; None when the source has no labels.
        class_names: The class names `y_test` indexes (the words to build
            zero-shot prompts with), or None.
        skipped: `(path, reason)` of each bad file (or TFDS example id) left
            out with `on_bad_file="skip"`; empty otherwise.

    Example:

    >>> data = load_image_text_data("digits", image_size=16, max_examples=100)
    >>> data.image_shape, len(data.captions_train), len(data.x_test)
    ((16, 16, 3), 100, 100)
    >>> data.class_names[:3], data.y_test.dtype
    (['zero', 'one', 'two'], dtype('int32'))
    """

    name: str
    x_train: np.ndarray
    captions_train: list[str]
    x_test: np.ndarray
    captions_test: list[str]
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(height, width, channels)` of every image."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        classes = None if self.class_names is None else len(self.class_names)
        return (
            f"ImageTextData(name={self.name!r}, image_shape={self.image_shape}, "
            f"train={len(self.x_train)}, test={len(self.x_test)}, "
            f"labelled={self.y_test is not None}, num_classes={classes})"
        )


def load_image_text_data(
    spec: str | pathlib.Path = "digits",
    image_size: int | tuple[int, int] | None = None,
    data_dir: str | None = None,
    max_examples: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.25,
    on_bad_file: str = "raise",
) -> ImageTextData:
    """Loads image-caption pairs into NumPy arrays and lists of strings.

    Args:
        spec: The data:
            `"digits"` (default): the embedded captioned digits
            (`keras_ssl.datasets.load_captioned_digits`): 4 captioned renders
            of each training digit in `x_train`, one of each test digit in
            `x_test`, with `y_test` and `class_names` ("zero" ... "nine").
            A folder, as a path or `"folder:PATH"`: every image file in it,
            recursively (PNG, JPEG, BMP or GIF), with a caption file of the
            same stem and suffix `.txt` beside it (`cat.png` -> `cat.txt`)
            holding one caption per non-empty line. An image with several
            lines gives one pair per line. Images, not pairs, are split: a
            seeded `test_fraction` of the images goes to the test split, with
            all of its captions. No labels.
            `"tfds:NAME"` (e.g. `"tfds:coco_captions"`): a TFDS dataset
            prepared in `data_dir` (never downloaded) with an image feature
            (`image`, else the first one) and captions: a `captions` sequence
            of `{"text": ...}` (as in coco_captions), or a text feature (or
            sequence of texts) named `captions`, `caption` or `text`. Each
            image gives one pair, with its first non-empty caption. `train`
            is the training split; `test`, else `validation`, else `val`, the
            test split. A `label` class feature becomes `y_test` and
            `class_names`.
        image_size: `size` or `(height, width)` to resize every image to.
            For digits, the side they are rendered at (default 32). Otherwise
            images keep their size, which must then be the same for all.
        data_dir: Local TFDS data directory (`"tfds:"` specs only); None
            means the TFDS default.
        max_examples: Upper bound on the pairs kept per split. Digit and
            folder splits keep a seeded random subset (in order); TFDS
            splits keep their first examples, so no more are read.
        seed: Seed for the digits, the folder split and the subsets.
        test_fraction: Held-out fraction, in `(0, 1)`: of each class's source
            digits for digits, of the images for a folder (at least one
            image on each side). TFDS datasets use their own splits.
        on_bad_file: What to do with a bad folder image (undecodable,
            zero-byte or truncated; no, an empty or a non-UTF-8 caption file)
            or a TFDS example whose image fails to decode or that has no
            non-empty caption: `"raise"` (default) a `ValueError` naming the
            file and the reason, or `"skip"` the image and its captions:
            the data's `skipped` lists
            `(path, reason)` for each, a warning gives the count, and a
            `ValueError` says so if a split is left empty. Skipped images are
            not replaced, so a split may end up below `max_examples`.

    Returns:
        An `ImageTextData`; its arrays and lists are fresh copies that the
        caller may modify.

    Raises:
        ValueError: For an unknown spec or a bad argument; a folder image
            without a caption file, an undecodable image, an empty caption
            (each naming the file or index); a source without pairs; images
            of different sizes without `image_size`; a TFDS dataset that is
            not prepared in `data_dir` or has no image or caption feature.
        FileNotFoundError: If a `"folder:PATH"` does not exist.
    """
    size = _check_image_size(image_size)
    if max_examples is not None and (
        isinstance(max_examples, bool)
        or not isinstance(max_examples, (int, np.integer))
        or max_examples < 1
    ):
        raise ValueError(f"max_examples must be a positive integer or None, got {max_examples!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    check_on_bad_file(on_bad_file)
    rng = np.random.default_rng(seed)

    if isinstance(spec, str) and spec == "digits":
        data = _load_digits(size, max_examples, seed, rng, test_fraction)
    elif isinstance(spec, str) and spec.startswith("tfds:") and spec[len("tfds:"):]:
        data = _load_tfds(spec[len("tfds:"):], size, data_dir, max_examples, on_bad_file)
    elif isinstance(spec, str) and spec.startswith("folder:") and spec[len("folder:"):]:
        folder = pathlib.Path(spec[len("folder:"):]).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"caption folder {str(folder)!r} not found: expected a folder of images "
                "with .txt captions"
            )
        data = _load_folder(folder, size, max_examples, rng, test_fraction, on_bad_file)
    elif isinstance(spec, (str, pathlib.Path)) and pathlib.Path(spec).expanduser().is_dir():
        data = _load_folder(
            pathlib.Path(spec).expanduser(), size, max_examples, rng, test_fraction, on_bad_file
        )
    else:
        raise ValueError(f"unknown image-text data {spec!r}: {_SPEC_HELP}")
    data.captions_train = _check_captions(data.captions_train, f"{data.name} train")
    data.captions_test = _check_captions(data.captions_test, f"{data.name} test")
    return data


def _check_captions(captions: Sequence[Any], where: str) -> list[str]:
    """The captions, stripped; raises for a non-string or an empty one."""
    checked = []
    for index, caption in enumerate(captions):
        if isinstance(caption, bytes):
            caption = caption.decode("utf-8")
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(
                f"{where} caption {index} is {caption!r}: expected a non-empty string"
            )
        checked.append(caption.strip())
    return checked


def _subset(count: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a seeded random subset of at most `limit` items, in order."""
    if limit is None or count <= limit:
        return np.arange(count)
    return np.sort(rng.choice(count, size=limit, replace=False))


def _load_digits(
    size: tuple[int, int] | None,
    max_examples: int | None,
    seed: int,
    rng: np.random.Generator,
    test_fraction: float,
) -> ImageTextData:
    from keras_ssl.datasets.captioned_digits import load_captioned_digits

    if size is not None and size[0] != size[1]:
        raise ValueError(f"digits are square: expected image_size to be an int, got {size!r}")
    corpus = load_captioned_digits(
        image_size=32 if size is None else size[0], test_fraction=test_fraction, seed=seed
    )
    train = _subset(len(corpus.x_train), max_examples, rng)
    test = _subset(len(corpus.x_test), max_examples, rng)
    # Indexing copies the cached, read-only arrays into writable ones.
    return ImageTextData(
        name="digits",
        x_train=corpus.x_train[train],
        captions_train=[corpus.captions_train[i] for i in train],
        x_test=corpus.x_test[test],
        captions_test=[corpus.captions_test[i] for i in test],
        y_test=corpus.y_test[test],
        class_names=list(corpus.class_names),
    )


def _load_folder(
    folder: pathlib.Path,
    size: tuple[int, int] | None,
    max_examples: int | None,
    rng: np.random.Generator,
    test_fraction: float,
    on_bad_file: str = "raise",
) -> ImageTextData:
    bad = BadFiles(on_bad_file, f"caption folder {str(folder)!r}")
    candidates = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in _IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    files, captions = [], []  # per image, its caption lines
    for path in candidates:
        caption_file = path.with_suffix(".txt")
        if not caption_file.is_file():
            bad.bad(
                str(path),
                f"has no caption file {caption_file.name!r}",
                f"image {str(path)!r} has no caption file: expected {caption_file.name!r} "
                "beside it, one caption per line",
            )
            continue
        try:
            lines = read_caption_file(caption_file)
        except BadFile as error:
            bad.bad(str(caption_file), str(error), f"caption file {str(caption_file)!r} {error}")
            continue
        files.append(path)
        captions.append(lines)
    bad.check_left(len(files), "captioned images")
    if len(files) < 2:
        raise ValueError(
            f"caption folder {str(folder)!r} has {len(files)} captioned images: expected at "
            f"least 2 (one for each split), images ending in {', '.join(_IMAGE_SUFFIXES)} "
            "with a .txt caption file beside each"
        )

    # Split images (so no image's captions straddle the splits), then pairs.
    order = rng.permutation(len(files))
    num_test = min(max(int(np.floor(len(files) * test_fraction + 0.5)), 1), len(files) - 1)
    decoded: dict[int, np.ndarray | None] = {}  # None: skipped as bad

    def pairs(images: np.ndarray, what: str) -> tuple[np.ndarray, list[str]]:
        pair_list = [(i, line) for i in np.sort(images) for line in captions[i]]
        pair_list = [pair_list[k] for k in _subset(len(pair_list), max_examples, rng)]
        for i, _ in pair_list:
            if i in decoded:
                continue
            try:
                decoded[i] = decode_image_file(files[i], size)
            except BadFile as error:
                bad.bad(str(files[i]), str(error),
                        f"could not decode image {str(files[i])!r}: {error}")
                decoded[i] = None
                continue
            first = next(image for image in decoded.values() if image is not None)
            if decoded[i].shape != first.shape:
                raise ValueError(
                    f"image {str(files[i])!r} has shape {decoded[i].shape}, others "
                    f"{first.shape}: expected one size (pass image_size to resize)"
                )
        pair_list = [(i, line) for i, line in pair_list if decoded[i] is not None]
        bad.check_left(len(pair_list), f"{what} pairs")
        return np.stack([decoded[i] for i, _ in pair_list]), [line for _, line in pair_list]

    x_train, captions_train = pairs(order[num_test:], "train")
    x_test, captions_test = pairs(order[:num_test], "test")
    bad.warn()
    return ImageTextData(
        f"folder:{folder}", x_train, captions_train, x_test, captions_test,
        skipped=bad.skipped,
    )


def _load_tfds(
    name: str,
    size: tuple[int, int] | None,
    data_dir: str | None,
    max_examples: int | None,
    on_bad_file: str = "raise",
) -> ImageTextData:
    import tensorflow as tf
    from keras_ssl._optional import require

    tfds = require("tensorflow_datasets", "tfds", f"the TFDS dataset {name!r}")

    builder, where = tfds_builder(name, data_dir)
    features = builder.info.features
    image_keys = [
        key for key, feature in features.items() if isinstance(feature, tfds.features.Image)
    ]
    if not image_keys:
        raise ValueError(
            f"TFDS dataset {name!r} has features {sorted(features)}: expected an image"
        )
    image_key = "image" if "image" in image_keys else image_keys[0]
    caption_key = next((key for key in _TFDS_CAPTION_KEYS if key in features), None)
    if caption_key is None:
        raise ValueError(
            f"TFDS dataset {name!r} has features {sorted(features)}: expected captions "
            f"(one of {', '.join(_TFDS_CAPTION_KEYS)})"
        )
    label = features["label"] if "label" in features else None
    class_names = list(label.names) if isinstance(label, tfds.features.ClassLabel) else None

    # Mocked builders (tfds.testing.mock_data) know no splits; assume all.
    splits = set(builder.info.splits)
    if splits and "train" not in splits:
        raise ValueError(
            f"TFDS dataset {name!r} has splits {sorted(splits)}: expected a 'train' split"
        )
    test_split = next((s for s in _TFDS_TEST_SPLITS if not splits or s in splits), None)
    if test_split is None:
        raise ValueError(
            f"TFDS dataset {name!r} has splits {sorted(splits)}: expected a test split "
            f"(one of {', '.join(_TFDS_TEST_SPLITS)})"
        )

    def texts(example: dict) -> Any:
        value = example[caption_key]
        if isinstance(value, dict):
            if "text" not in value:
                raise ValueError(
                    f"TFDS dataset {name!r} feature {caption_key!r} has keys {sorted(value)}: "
                    "expected 'text'"
                )
            value = value["text"]
        return tf.reshape(value, [-1])

    bad = BadFiles(on_bad_file, f"TFDS dataset {name!r} in {where}")

    def read(split: str) -> tuple[np.ndarray, list[str], np.ndarray | None]:
        dataset, finish = tfds_decoded(
            lambda encoded: tfds_split(
                builder, name, where, split, max_examples, with_ids=True,
                encoded=image_key if encoded else None,
            ),
            features[image_key],
            image_key,
            lambda example: (
                _tfds_image(example[image_key], size),
                texts(example),
                example["label"] if class_names is not None else tf.constant(-1, tf.int64),
            ),
            bad,
            split,
        )
        images, captions, labels, seen = [], [], [], set()
        for index, (tfds_id, image, candidates, label) in enumerate(
            dataset.as_numpy_iterator()
        ):
            seen.add(tfds_id)
            text = next(
                (c.decode("utf-8").strip() for c in candidates if c.decode("utf-8").strip()),
                None,
            )
            if text is None:
                bad.bad(
                    tfds_id.decode("utf-8"),
                    f"has no non-empty caption in {caption_key!r}",
                    f"TFDS dataset {name!r} split {split!r} example {index} has no non-empty "
                    f"caption in {caption_key!r} (TFDS example {tfds_id.decode('utf-8')!r}): "
                    "expected at least one",
                )
                continue
            if images and image.shape != images[0].shape:
                raise ValueError(
                    f"TFDS dataset {name!r} has images of shapes {images[0].shape} and "
                    f"{image.shape}: expected one size (pass image_size to resize)"
                )
            images.append(image)
            captions.append(text)
            labels.append(label)
        finish(seen)
        bad.check_left(len(images), f"pairs in split {split!r}")
        if not images:
            raise ValueError(f"TFDS dataset {name!r} split {split!r} is empty: expected pairs")
        y = np.asarray(labels, np.int32) if class_names is not None else None
        return np.stack(images).astype(np.float32), captions, y

    x_train, captions_train, _ = read("train")
    x_test, captions_test, y_test = read(test_split)
    bad.warn()
    return ImageTextData(
        f"tfds:{name}", x_train, captions_train, x_test, captions_test, y_test, class_names,
        skipped=bad.skipped,
    )
