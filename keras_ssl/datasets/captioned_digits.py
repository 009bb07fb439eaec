"""Captioned digits: an offline image-text corpus where the text must be read.

Each image draws one of scikit-learn's bundled handwritten digit scans
(`sklearn.datasets.load_digits`, real 8x8 scans inside the wheel) with three
more attributes drawn at random: a colour from a named palette, a size
(small or large) and, for small digits, a position (a corner or the
centre). The background is a smooth gradient of muted colours whose luma
stays far from the digit's, so the digit is always visible. The caption
names the attributes through one of many templates with synonyms ("top
left", "upper-left corner"), the digit as a word or a numeral, and some
attributes left out, so that matching an image to its caption means reading
the class, the colour, the size and the position.

Source digits are split into training and test digits as in
`load_cluttered_digits` (stratified by class, same seed): no scan of a test
image appears in training.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from sklearn.datasets import load_digits

from keras_ssl.datasets.digits import _bilinear, _stratified_split

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven",
               "eight", "nine")
COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.15),
    "blue": (0.15, 0.3, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
    "orange": (1.0, 0.5, 0.0),
    "purple": (0.6, 0.1, 0.8),
}
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "centre")
# Centre of the digit, as a fraction of the side, per position.
_CENTRES = {"top left": (0.27, 0.27), "top right": (0.73, 0.27),
            "bottom left": (0.27, 0.73), "bottom right": (0.73, 0.73),
            "centre": (0.5, 0.5)}
_SCALES = {"small": (0.45, 0.54), "large": (0.8, 0.9)}
_LUMA = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)

# Phrasings of each attribute; a caption picks one of each at random.
_POSITION_WORDS = {
    "top left": ("top left", "upper left", "top-left corner", "upper-left corner"),
    "top right": ("top right", "upper right", "top-right corner", "upper-right corner"),
    "bottom left": ("bottom left", "lower left", "bottom-left corner", "lower-left corner"),
    "bottom right": ("bottom right", "lower right", "bottom-right corner", "lower-right corner"),
    "centre": ("centre", "center", "middle"),
}
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
_TEMPLATES = (
    "a {size} {colour} {digit} in the {position}",
    "a {colour} {digit} in the {position}",
    "the number {digit}, written in {colour}, {position}",
    "{position}: a {size} {colour} {digit}",
    "a handwritten {digit} in {colour} at the {position}",
    "a {size} handwritten {digit}, {colour}, {position}",
    "there is a {colour} {digit} in the {position} of the picture",
    "a photo of a {size} {colour} {digit}",
    "the digit {digit} in {colour}",
    "a {colour} digit {digit}, {size}, in the {position}",
    "{size} {colour} {digit} on a plain background, {position}",
    "an image of the number {digit} in {colour}",
    "a {digit} drawn in {colour} ink in the {position}",
    "{colour} {digit}",
    "a {size} {digit} in the {position}",
    "the {position} holds a {size} {colour} {digit}",
    "number {digit}: {colour}, {size}, {position}",
    "a scan of a {digit}, coloured {colour}",
    "a {size} {digit} in {colour} placed at the {position}",
    "look, a {colour} {digit} at the {position}",
    "a {digit} in {colour}",
    "a picture of a {size} {digit} coloured {colour}",
)
_LARGE_TEMPLATES = (  # large digits fill the image: no position
    "a {size} {colour} {digit}",
    "a {size} {colour} {digit} filling the image",
    "the number {digit}, written big in {colour}",
    "a {size} handwritten {digit} in {colour}",
    "a {colour} {digit}, {size}",
    "an image of a {size} number {digit} in {colour}",
    "{colour} {digit} covering the picture",
    "a {digit} drawn large in {colour} ink",
)


@dataclasses.dataclass(frozen=True)
class CaptionedDigits:
    """The arrays and captions of the captioned-digits corpus.

    Attributes:
        x_train: `(N, S, S, 3)` float32 images in [0, 1], the pretraining
            pairs' images (`renders_per_digit` renders of each training digit).
        captions_train: their captions.
        y_train, colour_train, size_train, position_train: int32 attribute
            indices (into `class_names`, `colour_names`, `size_names`,
            `position_names`) of each training image.
        x_test, captions_test, y_test, colour_test, size_test,
            position_test: the same for one render of each test digit.
    """

    x_train: np.ndarray
    captions_train: tuple
    y_train: np.ndarray
    colour_train: np.ndarray
    size_train: np.ndarray
    position_train: np.ndarray
    x_test: np.ndarray
    captions_test: tuple
    y_test: np.ndarray
    colour_test: np.ndarray
    size_test: np.ndarray
    position_test: np.ndarray
    class_names: tuple = CLASS_NAMES
    colour_names: tuple = tuple(COLOURS)
    size_names: tuple = SIZES
    position_names: tuple = POSITIONS


def load_captioned_digits(image_size=32, renders_per_digit=4,
                          test_fraction=0.25, seed=0):
    """Builds the captioned-digits corpus; deterministic for a seed, cached.

    Example:

    >>> data = load_captioned_digits()
    >>> data.x_train.shape, len(data.captions_train), data.x_test.shape
    ((5384, 32, 32, 3), 5384, (451, 32, 32, 3))
    >>> isinstance(data.captions_train[0], str)
    True
    """
    if not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
    if not isinstance(renders_per_digit, int) or renders_per_digit < 1:
        raise ValueError(
            f"renders_per_digit must be an integer >= 1, got {renders_per_digit!r}"
        )
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return _build(image_size, renders_per_digit, float(test_fraction), int(seed))


@functools.lru_cache(maxsize=2)
def _build(image_size, renders_per_digit, test_fraction, seed):
    digits = load_digits()
    glyphs = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int32)
    split_seq, train_seq, test_seq = np.random.SeedSequence(seed).spawn(3)
    train_idx, test_idx = _stratified_split(
        labels, test_fraction, np.random.default_rng(split_seq)
    )
    train_idx = np.repeat(train_idx, renders_per_digit)
    np.random.default_rng(train_seq).shuffle(train_idx)
    train = _render_split(glyphs[train_idx], labels[train_idx], image_size,
                          np.random.default_rng(train_seq))
    test = _render_split(glyphs[test_idx], labels[test_idx], image_size,
                         np.random.default_rng(test_seq))
    return CaptionedDigits(
        **{f"{k}_train": v for k, v in train.items()},
        **{f"{k}_test": v for k, v in test.items()},
    )


def _frozen(array):
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def _render_split(glyphs, labels, image_size, rng):
    n = len(glyphs)
    colour = rng.integers(0, len(COLOURS), n).astype(np.int32)
    size = rng.integers(0, len(SIZES), n).astype(np.int32)
    position = rng.integers(0, len(POSITIONS), n).astype(np.int32)
    position[size == SIZES.index("large")] = POSITIONS.index("centre")
    images = _render(glyphs, colour, size, position, image_size, rng)
    captions = tuple(
        _caption(labels[i], colour[i], size[i], position[i], rng) for i in range(n)
    )
    return {
        "x": _frozen(images), "captions": captions, "y": _frozen(labels),
        "colour": _frozen(colour), "size": _frozen(size),
        "position": _frozen(position),
    }


def _render(glyphs, colour, size, position, image_size, rng):
    n, side = len(glyphs), float(image_size)
    centres = np.arange(image_size, dtype=np.float32) + 0.5
    xs, ys = centres[None, None, :], centres[None, :, None]
    rgb = np.array(list(COLOURS.values()), np.float32)[colour]  # (n, 3)
    luma = rgb @ _LUMA
    # Muted background colours in a luma band at least 0.3 from the digit.
    low = np.where(luma > 0.5, 0.05, luma + 0.3)
    high = np.where(luma > 0.5, luma - 0.3, 0.95)
    def background_colour():
        level = low + (high - low) * rng.random(n)
        tint = rng.uniform(-0.08, 0.08, (n, 3))
        tint -= (tint @ _LUMA)[:, None]  # keep the luma
        return np.clip(level[:, None] + tint, 0, 1).astype(np.float32)
    start, end = background_colour(), background_colour()
    angle = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    t = ((xs - side / 2) * np.cos(angle) + (ys - side / 2) * np.sin(angle)) / side + 0.5
    t = np.clip(t, 0, 1)[..., None]
    background = start[:, None, None] + t * (end - start)[:, None, None]

    scale_range = np.array([_SCALES[s] for s in SIZES], np.float32)[size]
    scale = rng.uniform(scale_range[:, 0], scale_range[:, 1]) * side
    centre = np.array([_CENTRES[p] for p in POSITIONS], np.float32)[position]
    centre = (centre + rng.uniform(-0.03, 0.03, (n, 2))) * side
    theta = np.deg2rad(rng.uniform(-12, 12, n))
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    rel_x = xs - centre[:, 0, None, None]
    rel_y = ys - centre[:, 1, None, None]
    cell = (scale / 8.0)[:, None, None]
    u = (cos * rel_x + sin * rel_y) / cell + 3.5
    v = (-sin * rel_x + cos * rel_y) / cell + 3.5
    alpha = np.clip((_bilinear(glyphs, u, v) - 0.3) / 0.4, 0.0, 1.0)
    alpha = (alpha * alpha * (3.0 - 2.0 * alpha))[..., None]
    images = background + alpha * (rgb[:, None, None] - background)
    return np.clip(images, 0, 1).astype(np.float32)


def _caption(label, colour, size, position, rng):
    size_name, position_name = SIZES[size], POSITIONS[position]
    templates = _LARGE_TEMPLATES if size_name == "large" else _TEMPLATES
    template = templates[rng.integers(len(templates))]
    digit = CLASS_NAMES[label] if rng.random() < 0.6 else str(label)
    words = {
        "digit": digit,
        "colour": tuple(COLOURS)[colour],
        "size": _SIZE_WORDS[size_name][rng.integers(len(_SIZE_WORDS[size_name]))],
        "position": _POSITION_WORDS[position_name][
            rng.integers(len(_POSITION_WORDS[position_name]))
        ],
    }
    return template.format(**words)
