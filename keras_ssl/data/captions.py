"""Image-caption data for CLIP: the embedded corpus, a folder, or TFDS."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from keras_ssl.data.images import _IMAGE_SUFFIXES, _resize
from keras_ssl.data.text import _check_captions


@dataclasses.dataclass
class ImageTextData:
    """(image, caption) pairs for pretraining and a held-out split.

    Attributes:
        name: the spec the data came from (`"digits"`, a folder, `"tfds:NAME"`).
        x_train: `(N, H, W, 3)` float32 images in [0, 1].
        captions_train: their captions, one per image.
        x_test, captions_test: the held-out pairs.
        y_test: int labels of `x_test` for zero-shot classification, or None.
        class_names: the class names `y_test` indexes, or None.

    Example:

    >>> data = load_image_text_data("digits", max_examples=100)
    >>> data.image_shape, len(data.captions_train)
    ((32, 32, 3), 100)
    """

    name: str
    x_train: np.ndarray
    captions_train: list
    x_test: np.ndarray
    captions_test: list
    y_test: np.ndarray | None = None
    class_names: list | None = None

    @property
    def image_shape(self):
        return tuple(self.x_train.shape[1:])

    def __repr__(self):
        return (
            f"ImageTextData(name={self.name!r}, image_shape={self.image_shape}, "
            f"train={len(self.x_train)}, test={len(self.x_test)}, "
            f"classes={None if self.class_names is None else len(self.class_names)})"
        )


def load_image_text_data(spec="digits", image_size=None, data_dir=None,
                         max_examples=None, seed=0, test_fraction=0.25):
    """Loads image-caption pairs into NumPy arrays and lists of strings.

    Args:
        spec: `"digits"` (default): the embedded captioned digits
            (`keras_ssl.datasets.load_captioned_digits`), with digit labels
            for zero-shot classification. A folder path: every image file in
            it (recursively) with a `.txt` file of the same name beside it,
            one caption per non-empty line (an image with several lines
            gives one pair per line); split by `test_fraction`. `"tfds:NAME"`
            (e.g. `tfds:coco_captions`): a TFDS dataset with an image feature
            and a caption text (`captions/text` or a `caption`/`text`
            feature) read from `data_dir`, never downloaded; its train split
            and its test (else validation) split.
        image_size: side to resize images to (required for a folder or TFDS
            data whose images differ in size); the digits default to 32.
        data_dir: the TFDS data directory.
        max_examples: keep at most this many training pairs (and test pairs).
        seed: for the folder split and the subsets.
        test_fraction: the folder split's held-out fraction.

    Raises:
        ValueError: unknown spec, a missing caption file, an undecodable
            image, an empty caption (naming the file or index), no pairs.
    """
    rng = np.random.default_rng(seed)
    if spec == "digits":
        from keras_ssl.datasets.captioned_digits import load_captioned_digits

        corpus = load_captioned_digits(image_size=image_size or 32, seed=seed)
        data = ImageTextData(
            "digits", np.asarray(corpus.x_train), list(corpus.captions_train),
            np.asarray(corpus.x_test), list(corpus.captions_test),
            np.asarray(corpus.y_test), list(corpus.class_names),
        )
    elif isinstance(spec, str) and spec.startswith("tfds:"):
        data = _load_tfds(spec[len("tfds:"):], image_size, data_dir)
    elif isinstance(spec, (str, pathlib.Path)) and pathlib.Path(spec).is_dir():
        data = _load_folder(pathlib.Path(spec), image_size, rng, test_fraction)
    else:
        raise ValueError(
            f"unknown image-text data {spec!r}: expected 'digits', "
            "'tfds:NAME' or an existing folder of images with .txt captions"
        )
    _check_captions(data.captions_train)
    _check_captions(data.captions_test)
    if max_examples is not None:
        data = _subset(data, int(max_examples), rng)
    return data


def _subset(data, limit, rng):
    def pick(n):
        return np.sort(rng.permutation(n)[:limit]) if n > limit else np.arange(n)

    train, test = pick(len(data.x_train)), pick(len(data.x_test))
    return dataclasses.replace(
        data,
        x_train=data.x_train[train],
        captions_train=[data.captions_train[i] for i in train],
        x_test=data.x_test[test],
        captions_test=[data.captions_test[i] for i in test],
        y_test=None if data.y_test is None else data.y_test[test],
    )


def _decode(path, image_size):
    import tensorflow as tf

    try:
        image = tf.io.decode_image(
            tf.io.read_file(str(path)), channels=3, expand_animations=False
        )
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise ValueError(f"cannot decode image {path}: {error}") from None
    image = tf.image.convert_image_dtype(image, tf.float32).numpy()
    return image if image_size is None else _resize(image[None], _size(image_size))[0]


def _size(image_size):
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


def _load_folder(folder, image_size, rng, test_fraction):
    paths = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES
    )
    images, captions = [], []
    for path in paths:
        caption_file = path.with_suffix(".txt")
        if not caption_file.exists():
            raise ValueError(
                f"image {path} has no caption file {caption_file.name} beside it"
            )
        lines = [
            line.strip() for line in caption_file.read_text().splitlines()
            if line.strip()
        ]
        if not lines:
            raise ValueError(f"caption file {caption_file} is empty")
        image = _decode(path, image_size)
        for line in lines:
            images.append(image)
            captions.append(line)
    if len(images) < 2:
        raise ValueError(
            f"found {len(images)} image-caption pairs in {folder}; need at least 2"
        )
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(
            f"the images in {folder} have different sizes {sorted(shapes)}; "
            "pass image_size"
        )
    order = rng.permutation(len(images))
    num_test = min(max(1, int(round(len(images) * test_fraction))), len(images) - 1)
    test, train = order[:num_test], order[num_test:]
    stack = np.stack(images).astype("float32")
    return ImageTextData(
        str(folder), stack[train], [captions[i] for i in train],
        stack[test], [captions[i] for i in test],
    )


def _load_tfds(name, image_size, data_dir):
    import tensorflow_datasets as tfds

    import tensorflow as tf

    where = f"data_dir={data_dir!r}" if data_dir else "the default TFDS data_dir"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise ValueError(
            f"TFDS dataset {name!r} is neither registered nor prepared in {where}"
            " (nothing is downloaded)"
        ) from None
    # Mocked builders (tfds.testing.mock_data) know no splits: train + test.
    splits = set(builder.info.splits) or {"train", "test"}
    test_split = "test" if "test" in splits else "validation"
    if "train" not in splits or test_split not in splits:
        raise ValueError(
            f"tfds:{name} needs a train and a test or validation split; has "
            f"{sorted(splits)}"
        )
    features = builder.info.features
    image_key = next(
        (k for k, f in features.items() if isinstance(f, tfds.features.Image)),
        None,
    )
    if image_key is None:
        raise ValueError(f"tfds:{name} has no image feature")

    def captions_of(example):
        for key in ("captions", "caption", "text"):
            if key not in example:
                continue
            value = example[key]
            if isinstance(value, dict):
                value = value["text"]
            value = np.asarray(value).reshape(-1)
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v)
                    for v in value]
        raise ValueError(
            f"tfds:{name} has no caption feature (captions/text, caption, text)"
        )

    def read(split):
        images, captions = [], []
        try:
            dataset = builder.as_dataset(split=split, shuffle_files=False)
        except (AssertionError, FileNotFoundError, tf.errors.NotFoundError):
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in {where}: nothing is "
                f"downloaded (prepare it with tfds.builder({name!r}, "
                "data_dir=...).download_and_prepare())"
            ) from None
        for example in tfds.as_numpy(dataset):
            image = example[image_key].astype("float32") / 255.0
            if image.shape[-1] == 1:
                image = np.repeat(image, 3, axis=-1)
            if image_size is not None:
                image = _resize(image[None], _size(image_size))[0]
            text = captions_of(example)
            if text:
                images.append(image)
                captions.append(text[0])
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(
                f"tfds:{name} images differ in size; pass image_size"
            )
        return np.stack(images).astype("float32"), captions

    x_train, captions_train = read("train")
    x_test, captions_test = read(test_split)
    return ImageTextData(f"tfds:{name}", x_train, captions_train, x_test,
                         captions_test)
