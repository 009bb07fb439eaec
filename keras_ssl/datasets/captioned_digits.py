"""Captioned digits: a small, offline image-text corpus whose text must be read.

CLIP needs (image, caption) pairs whose captions say things a model can only
get right by looking: which digit, in which colour, how big and where. This
corpus renders scikit-learn's bundled handwritten digits
(`sklearn.datasets.load_digits`: real 8x8 scans shipped inside the wheel, so
nothing is downloaded) with four attributes drawn at random per image:

* class: the digit itself, `class_names = ("zero", ..., "nine")`;
* colour: one of `COLOUR_NAMES` (eight clearly distinct named colours; each
  render jitters the named RGB a little);
* size: `"small"` (the digit's 8x8 grid spans 40-55% of the side) or
  `"large"` (75-90%);
* position: small digits sit in one of the four corners or the centre
  (`POSITION_NAMES`); large digits are always centred.

The digits are drawn by the cluttered-digits renderer (`digits._render`) over
a lighter background than `load_cluttered_digits` uses: a gradient of muted
colours (saturation scaled by 0.35) with at most two clutter shapes, all at
least `LUMA_SEPARATION` in luma away from the digit on whichever side (darker
or lighter) has more room. Colour and position stay readable at 16-32 px, and
the digit is the only thing of its colour in the image.

Captions are written from `len(TEMPLATES)` templates (40) that name the
attributes in different orders and grammatical frames, with synonyms
("small", "little", "tiny"; "top left", "upper-left corner", "at the top
left"; "centre", "center", "middle"), the digit as a word ("seven") or a
numeral ("7"), and some attributes left out. Every caption names the class;
most name the colour, size and position. So matching images to captions
means reading the text, not matching fixed strings: "a small red seven in
the top left corner", "the number 7, written in red, upper left",
"top-left: a tiny red 7", "big blue digit two, middle".

Source digits are split into training and test digits exactly as
`load_cluttered_digits` splits them (stratified by class, same seed and
`test_fraction`, so the same test digits): no scan of a test image is ever
rendered into the training pool. Each split is rendered and captioned from
its own random streams, so `renders_per_digit` leaves the test split
unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re

import numpy as np
from sklearn.datasets import load_digits

from keras_ssl.datasets.digits import (
    _Rendering,
    _render,
    check_arguments,
)
from keras_ssl.datasets.splits import stratified_split

#: Class names, indexed by label: the words the digits are captioned with.
CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: The named colours and their RGB values in `[0, 1]`.
PALETTE = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.70, 0.10),
    "blue": (0.10, 0.30, 1.00),
    "yellow": (1.00, 0.90, 0.10),
    "white": (1.00, 1.00, 1.00),
    "black": (0.00, 0.00, 0.00),
    "orange": (1.00, 0.50, 0.00),
    "purple": (0.60, 0.10, 0.80),
}
COLOUR_NAMES = tuple(PALETTE)
SIZE_NAMES = ("small", "large")
POSITION_NAMES = ("top left", "top right", "bottom left", "bottom right", "centre")

#: Smallest luma gap between a digit's colour and any background pixel.
LUMA_SEPARATION = 0.3

# Digit grid side as a fraction of the image side, per size.
_SCALES = {"small": (0.40, 0.55), "large": (0.75, 0.90)}
# Digit centre (x, y) as a fraction of the side, per position: a small digit
# in a corner stays inside its quadrant.
_CENTRES = {
    "top left": (0.3, 0.3),
    "top right": (0.7, 0.3),
    "bottom left": (0.3, 0.7),
    "bottom right": (0.7, 0.7),
    "centre": (0.5, 0.5),
}
_CENTRE_JITTER = 0.02
_COLOUR_JITTER = 0.06
_BACKGROUND_SATURATION = 0.35
_NUM_SHAPES = (0, 2)
_P_SMALL = 0.6
_P_DIGIT_AS_WORD = 0.5

# Synonyms. Sizes are adjectives; positions come as a prepositional phrase
# ("{where}", e.g. "in the upper-left corner") or a bare tag ("{tag}").
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
_VERTICAL = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}


def _corner_phrases(position: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    vertical, horizontal = position.split()
    tags = tuple(
        f"{v}{joint}{horizontal}{suffix}"
        for v, joint, suffix in itertools.product(_VERTICAL[vertical], (" ", "-"), ("", " corner"))
    )
    wheres = tuple(f"{prep} the {tag}" for prep in ("in", "at") for tag in tags)
    return wheres + tuple(f"in the {tag} of the image" for tag in tags[1::2]), tags


_WHERE, _TAG = {}, {}
for _position in POSITION_NAMES[:4]:
    _WHERE[_position], _TAG[_position] = _corner_phrases(_position)
_WHERE["centre"] = (
    "in the centre", "in the center", "in the middle", "at the centre", "at the center",
    "centred", "centered", "in the middle of the image",
)
_TAG["centre"] = ("centre", "center", "middle", "centred")

#: Caption templates. Slots: `{digit}` (a word or a numeral), `{colour}`,
#: `{size}`, `{where}` (a prepositional phrase) and `{tag}` (a bare position).
TEMPLATES = (
    # All four attributes.
    "a {size} {colour} {digit} {where}",
    "{tag}: a {size} {colour} {digit}",
    "the number {digit}, {size} and {colour}, {tag}",
    "a {size} handwritten {digit} in {colour}, {where}",
    "there is a {size} {colour} {digit} {where}",
    "{where} there is a {size} {colour} {digit}",
    "a {colour} {digit}, {size}, {where}",
    "{size} {colour} digit {digit}, {tag}",
    "a {size} {digit} drawn in {colour} ink {where}",
    "number {digit}: {colour}, {size}, {tag}",
    "a photo of a {size} {colour} {digit} {where}",
    "{tag}, {colour}, {size}: the digit {digit}",
    "a {size} {colour} numeral {digit} sits {where}",
    "the image shows a {size} {digit} in {colour} {where}",
    "{colour} and {size}, a {digit} {where}",
    "a {size}, {colour}, handwritten {digit} {where}",
    "a {size} {digit}, written in {colour}, {where}",
    "{tag}: the {size} digit {digit} in {colour}",
    # Class, colour and position.
    "a {colour} {digit} {where}",
    "the number {digit}, written in {colour}, {tag}",
    "{tag}: a {colour} {digit}",
    "a handwritten {digit} in {colour} {where}",
    "the digit {digit} in {colour}, {tag}",
    # Class, size and colour.
    "a {size} {colour} {digit}",
    "a {size} handwritten {digit} in {colour}",
    "a {colour} digit {digit}, {size}",
    "an image of a {size} {colour} {digit}",
    "a {size} number {digit} coloured {colour}",
    "the {size} {colour} numeral {digit}",
    # Class, size and position.
    "a {size} {digit} {where}",
    "{tag}: a {size} {digit}",
    "a {size} handwritten {digit}, {tag}",
    # Class and colour.
    "a {colour} {digit}",
    "a handwritten {digit} in {colour}",
    "the number {digit} written in {colour}",
    "{digit}, in {colour} ink",
    # Class and position.
    "a {digit} {where}",
    "{tag}: the digit {digit}",
    # Class and size.
    "a {size} {digit}",
    "the {size} number {digit}",
)

# "a" before a vowel sound: "an orange 8", "an eight", but "a one".
_ARTICLE = re.compile(r"\ba (?=(?!one\b)[aeiou8])")


@dataclasses.dataclass(frozen=True)
class CaptionedDigits:
    """The images, captions and attributes of the captioned-digits corpus.

    Arrays are read-only because results are cached and shared between calls;
    use `np.array(...)` for a writable copy. Attribute arrays are int32
    indices into the matching name tuple.

    Attributes:
        x_train: `(N, S, S, 3)` float32 images in `[0, 1]`: the pretraining
            pool, `renders_per_digit` renders of each training source digit
            (shuffled), each with fresh attributes.
        captions_train: `N` captions, one per `x_train` image.
        y_train: `(N,)` digit labels, indices into `class_names`.
        colour_train: `(N,)` indices into `colour_names`.
        size_train: `(N,)` indices into `size_names`.
        position_train: `(N,)` indices into `position_names`.
        x_test: `(M, S, S, 3)` one render of each held-out source digit.
        captions_test, y_test, colour_test, size_test, position_test: the same
            for `x_test`.
        source_index_train: `(N,)` index of each `x_train` digit in
            `sklearn.datasets.load_digits()`.
        source_index_test: `(M,)` same for `x_test`; disjoint from the above.
        class_names: `("zero", ..., "nine")`.
        colour_names: `COLOUR_NAMES`.
        size_names: `("small", "large")`.
        position_names: `("top left", "top right", "bottom left",
            "bottom right", "centre")`.
    """

    x_train: np.ndarray
    captions_train: tuple[str, ...]
    y_train: np.ndarray
    colour_train: np.ndarray
    size_train: np.ndarray
    position_train: np.ndarray
    x_test: np.ndarray
    captions_test: tuple[str, ...]
    y_test: np.ndarray
    colour_test: np.ndarray
    size_test: np.ndarray
    position_test: np.ndarray
    source_index_train: np.ndarray
    source_index_test: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    colour_names: tuple[str, ...] = COLOUR_NAMES
    size_names: tuple[str, ...] = SIZE_NAMES
    position_names: tuple[str, ...] = POSITION_NAMES


def load_captioned_digits(
    image_size: int = 32,
    renders_per_digit: int = 4,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> CaptionedDigits:
    """Builds the captioned-digits corpus; deterministic for a given seed.

    The source digits are split as in `load_cluttered_digits` (same test
    digits for the same `seed` and `test_fraction`); the training digits are
    rendered `renders_per_digit` times each into `x_train`, the test digits
    once each into `x_test`. Results are cached per argument tuple.

    Args:
        image_size: Side of the square RGB images, at least 16.
        renders_per_digit: Renders (and captions) of each training digit.
        test_fraction: Fraction of each class's source digits held out for
            `x_test`, in `(0, 1)`.
        seed: Non-negative integer seed for the split, attributes, rendering
            and captions.

    Returns:
        A `CaptionedDigits` with read-only arrays and tuples of captions.

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> data = load_captioned_digits(seed=0)
    >>> data.x_train.shape, data.x_train.dtype, len(data.captions_train)
    ((5384, 32, 32, 3), dtype('float32'), 5384)
    >>> data.x_test.shape, data.y_test.dtype
    ((451, 32, 32, 3), dtype('int32'))
    >>> i = 0
    >>> caption = data.captions_train[i]
    >>> name = data.class_names[data.y_train[i]]
    >>> name in caption or str(data.y_train[i]) in caption
    True
    >>> data.colour_names
    ('red', 'green', 'blue', 'yellow', 'white', 'black', 'orange', 'purple')
    """
    check_arguments(image_size, renders_per_digit, test_fraction, seed)
    return _build(int(image_size), int(renders_per_digit), float(test_fraction), int(seed))


@functools.lru_cache(maxsize=2)
def _build(
    image_size: int, renders_per_digit: int, test_fraction: float, seed: int
) -> CaptionedDigits:
    return _generate(image_size, renders_per_digit, test_fraction, seed)[0]


def _generate(
    image_size: int, renders_per_digit: int, test_fraction: float, seed: int
) -> tuple[CaptionedDigits, _Rendering, _Rendering]:
    """The corpus and the train and test renderings (with their alpha masks)."""
    digits = load_digits()
    glyphs = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int32)

    # Child 0 is the split stream of load_cluttered_digits (children 1-3
    # render it); 4 and 5 are this corpus's train and test streams.
    streams = np.random.SeedSequence(seed).spawn(6)
    train_idx, test_idx = stratified_split(
        labels, test_fraction, np.random.default_rng(streams[0])
    )
    order_seq, train_seq = streams[4].spawn(2)
    train_idx = np.repeat(train_idx, renders_per_digit)
    np.random.default_rng(order_seq).shuffle(train_idx)

    train, train_rendering = _render_split(glyphs, labels, train_idx, image_size, train_seq)
    test, test_rendering = _render_split(glyphs, labels, test_idx, image_size, streams[5])
    corpus = CaptionedDigits(
        **{f"{key}_train": value for key, value in train.items()},
        **{f"{key}_test": value for key, value in test.items()},
    )
    return corpus, train_rendering, test_rendering


def _render_split(
    glyphs: np.ndarray,
    labels: np.ndarray,
    index: np.ndarray,
    image_size: int,
    seq: np.random.SeedSequence,
) -> tuple[dict, _Rendering]:
    attribute_rng, render_rng, caption_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    n = len(index)
    colour = attribute_rng.integers(0, len(COLOUR_NAMES), size=n).astype(np.int32)
    size = np.where(attribute_rng.random(n) < _P_SMALL, 0, 1).astype(np.int32)
    position = attribute_rng.integers(0, len(POSITION_NAMES), size=n).astype(np.int32)
    position[size == SIZE_NAMES.index("large")] = POSITION_NAMES.index("centre")
    rgb = np.array([PALETTE[name] for name in COLOUR_NAMES], np.float32)[colour]
    rgb = np.clip(rgb + attribute_rng.uniform(-_COLOUR_JITTER, _COLOUR_JITTER, (n, 3)), 0.0, 1.0)

    scales = np.array([_SCALES[name] for name in SIZE_NAMES], np.float32)[size]
    rendering = _render(
        glyphs[index],
        image_size,
        render_rng,
        digit_rgb=rgb.astype(np.float32),
        luma_separation=LUMA_SEPARATION,
        background_saturation=_BACKGROUND_SATURATION,
        num_shapes=_NUM_SHAPES,
        scale_range=(scales[:, 0], scales[:, 1]),
        centre=np.array([_CENTRES[name] for name in POSITION_NAMES], np.float32)[position],
        centre_jitter=_CENTRE_JITTER,
    )
    y = labels[index]
    captions = _captions(y, colour, size, position, caption_rng)
    arrays = {
        "x": _frozen(rendering.images),
        "captions": captions,
        "y": _frozen(y),
        "colour": _frozen(colour),
        "size": _frozen(size),
        "position": _frozen(position),
        "source_index": _frozen(np.array(index)),
    }
    return arrays, rendering


def _captions(
    y: np.ndarray,
    colour: np.ndarray,
    size: np.ndarray,
    position: np.ndarray,
    rng: np.random.Generator,
) -> tuple[str, ...]:
    """One caption per image, from a random template and random synonyms."""
    n = len(y)
    template = rng.integers(0, len(TEMPLATES), size=n)
    as_word = rng.random(n) < _P_DIGIT_AS_WORD
    # Uniform draws in [0, 1) pick a synonym from lists of any length.
    size_pick, where_pick, tag_pick = rng.random((3, n))
    captions = []
    for i in range(n):
        size_words = _SIZE_WORDS[SIZE_NAMES[size[i]]]
        position_name = POSITION_NAMES[position[i]]
        where, tag = _WHERE[position_name], _TAG[position_name]
        text = TEMPLATES[template[i]].format(
            digit=CLASS_NAMES[y[i]] if as_word[i] else str(int(y[i])),
            colour=COLOUR_NAMES[colour[i]],
            size=size_words[int(size_pick[i] * len(size_words))],
            where=where[int(where_pick[i] * len(where))],
            tag=tag[int(tag_pick[i] * len(tag))],
        )
        captions.append(_ARTICLE.sub("an ", text))
    return tuple(captions)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array
