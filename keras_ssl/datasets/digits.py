"""Cluttered digits: a small, offline, harder-than-MNIST image dataset.

The images are rendered from scikit-learn's bundled handwritten digits
(`sklearn.datasets.load_digits`: 1,797 real 8x8 scans that ship inside the
scikit-learn wheel, so nothing is downloaded). Plain 8x8 digits are too easy
for a self-supervised benchmark (a raw-pixel k-NN already scores ~98%), so each
digit is drawn, at a random scale, angle, position and colour, over a cluttered
background: a smooth two-colour gradient plus a few rectangles, soft blobs and
lines of random colours.

The digit always keeps a luminance gap of at least `MIN_LUMA_GAP` to every
background pixel (a dark digit on a light background or the reverse), so it
stays visible after colour jitter and grayscale augmentations. With the
default arguments a raw-pixel k-NN (k=20, cosine) scores about 0.3 on the
cluttered test images against 0.97 on the same digits unrendered, while a
small supervised CNN still reaches about 0.8: the task is learnable, but only
from features that ignore the clutter.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from sklearn.datasets import load_digits

from keras_ssl.datasets.splits import stratified_split

#: ITU-R BT.601 luma weights, the ones `tf.image.rgb_to_grayscale` uses.
LUMA_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)

#: Smallest luma difference between a digit's colour and any background pixel.
MIN_LUMA_GAP = 0.35

# Colours are drawn this far apart in luma, a margin above `MIN_LUMA_GAP`.
_LUMA_SEPARATION = 0.4
# Luma range of dark digits; bright digits use the mirrored range.
_DARK_DIGIT_LUMA = (0.0, 0.25)
# Digit height/width as a fraction of the image side (14-28 px at 32 px).
_DIGIT_SCALE = (14 / 32, 28 / 32)
_MAX_ROTATION_DEGREES = 15.0
# Clutter shapes per image (each slot is a rectangle, a blob or a line).
_NUM_SHAPES = (2, 6)


@dataclasses.dataclass(frozen=True)
class ClutteredDigits:
    """The arrays of the cluttered-digits dataset.

    Arrays are read-only because results are cached and shared between calls;
    use `np.array(...)` for a writable copy.

    Attributes:
        x_train: `(N, S, S, 3)` float32 images in `[0, 1]`, one rendering of
            each training source digit.
        y_train: `(N,)` int32 labels of `x_train`.
        x_test: `(M, S, S, 3)` float32 images of the held-out source digits.
        y_test: `(M,)` int32 labels of `x_test`.
        x_unlabeled: `(N * renders_per_digit, S, S, 3)` float32 images: the
            training source digits rendered again with fresh clutter, scale,
            angle, position and colour. The pool for self-supervised
            pretraining; it never contains a test source digit.
        class_names: `("0", ..., "9")`.
        source_index_train: `(N,)` index of each `x_train` image's digit in
            `sklearn.datasets.load_digits()`.
        source_index_test: `(M,)` same for `x_test`.
        source_index_unlabeled: same for `x_unlabeled`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_unlabeled: np.ndarray
    class_names: tuple[str, ...]
    source_index_train: np.ndarray
    source_index_test: np.ndarray
    source_index_unlabeled: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Rendering:
    """Rendered images with the layers they were composited from."""

    images: np.ndarray  # (n, S, S, 3) float32
    background: np.ndarray  # (n, S, S, 3) float32, before the digit is drawn
    alpha: np.ndarray  # (n, S, S) float32 digit coverage
    digit_rgb: np.ndarray  # (n, 3) float32 digit colour


def load_cluttered_digits(
    image_size: int = 32,
    renders_per_digit: int = 4,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> ClutteredDigits:
    """Builds the cluttered-digits dataset; deterministic for a given seed.

    The 1,797 source digits are first split, stratified by class, into
    training and test digits, so no rendering of a test digit (nor of its
    source scan) appears in `x_train` or `x_unlabeled`. Each split is then
    rendered from its own random stream: changing `renders_per_digit` leaves
    `x_train` and `x_test` unchanged. Results are cached per argument tuple.

    Args:
        image_size: Side of the square RGB images, at least 16.
        renders_per_digit: How many times each training digit is rendered into
            `x_unlabeled`.
        test_fraction: Fraction of each class's source digits held out for
            `x_test`, in `(0, 1)`.
        seed: Non-negative integer seed for the split and the rendering.

    Returns:
        A `ClutteredDigits` with read-only arrays.

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> data = load_cluttered_digits(seed=0)
    >>> data.x_train.shape, data.x_train.dtype
    ((1346, 32, 32, 3), dtype('float32'))
    >>> data.x_test.shape, data.x_unlabeled.shape
    ((451, 32, 32, 3), (5384, 32, 32, 3))
    >>> data.class_names[:3]
    ('0', '1', '2')
    """
    check_arguments(image_size, renders_per_digit, test_fraction, seed)
    return _build(int(image_size), int(renders_per_digit), float(test_fraction), int(seed))


@functools.lru_cache(maxsize=2)
def _build(
    image_size: int, renders_per_digit: int, test_fraction: float, seed: int
) -> ClutteredDigits:
    digits = load_digits()
    glyphs = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int32)

    split_seq, train_seq, test_seq, unlabeled_seq = np.random.SeedSequence(seed).spawn(4)
    train_idx, test_idx = stratified_split(labels, test_fraction, np.random.default_rng(split_seq))
    unlabeled_idx = np.repeat(train_idx, renders_per_digit)
    np.random.default_rng(unlabeled_seq).shuffle(unlabeled_idx)

    def render(index: np.ndarray, seq: np.random.SeedSequence) -> np.ndarray:
        return _render(glyphs[index], image_size, np.random.default_rng(seq)).images

    return ClutteredDigits(
        x_train=_frozen(render(train_idx, train_seq)),
        y_train=_frozen(labels[train_idx]),
        x_test=_frozen(render(test_idx, test_seq)),
        y_test=_frozen(labels[test_idx]),
        x_unlabeled=_frozen(render(unlabeled_idx, unlabeled_seq)),
        class_names=tuple(str(name) for name in digits.target_names),
        source_index_train=_frozen(train_idx),
        source_index_test=_frozen(test_idx),
        source_index_unlabeled=_frozen(unlabeled_idx),
    )


def check_arguments(image_size, renders_per_digit, test_fraction, seed) -> None:
    """The argument checks of the rendered digit datasets (this one and
    `load_captioned_digits`)."""
    if not _is_int(image_size) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
    if not _is_int(renders_per_digit) or renders_per_digit < 1:
        raise ValueError(f"renders_per_digit must be an integer >= 1, got {renders_per_digit!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _colours_with_luma(rng: np.random.Generator, luma: np.ndarray) -> np.ndarray:
    """Random RGB colours, shape `luma.shape + (3,)`, with exactly that luma.

    A uniform random colour is scaled towards black (to lower its luma) or
    towards white (to raise it); both maps are linear in luma and stay inside
    the RGB cube.
    """
    rgb = rng.random(luma.shape + (3,), dtype=np.float32)
    current = rgb @ LUMA_WEIGHTS
    target = luma.astype(np.float32)
    darker = rgb * (target / np.maximum(current, 1e-6))[..., None]
    lighter = 1.0 - (1.0 - rgb) * ((1.0 - target) / np.maximum(1.0 - current, 1e-6))[..., None]
    return np.where((current > target)[..., None], darker, lighter).astype(np.float32)


def _render(
    glyphs: np.ndarray,
    image_size: int,
    rng: np.random.Generator,
    *,
    digit_rgb: np.ndarray | None = None,
    luma_separation: float = _LUMA_SEPARATION,
    background_saturation: float = 1.0,
    num_shapes: tuple[int, int] = _NUM_SHAPES,
    scale_range: tuple = _DIGIT_SCALE,
    centre: np.ndarray | None = None,
    centre_jitter: float = 0.0,
) -> _Rendering:
    """Draws `(n, 8, 8)` glyphs in `[0, 1]` over cluttered backgrounds.

    The keyword arguments default to the cluttered-digits rendering (which
    they leave unchanged, random stream included); `load_captioned_digits`
    sets them to impose each digit's attributes.

    Args:
        digit_rgb: `(n, 3)` colours to draw the digits in, instead of random
            colours. The background then takes the luma side (darker or
            lighter than the digit) with more room.
        luma_separation: Luma gap between the digit and every background
            colour, at most 0.5.
        background_saturation: Scales the background colours' saturation
            towards grey (1 keeps them, 0 makes them grey); luma is kept.
        num_shapes: Inclusive range of clutter shapes per image.
        scale_range: `(low, high)` side of the digit's 8x8 grid as a fraction
            of the image side; scalars, or `(n,)` arrays for per-image ranges.
        centre: `(n, 2)` digit centres `(x, y)` as fractions of the side,
            instead of random positions that keep the grid inside the image.
        centre_jitter: Uniform jitter of `centre`, as a fraction of the side.
    """
    n = len(glyphs)
    size = float(image_size)
    # Pixel-centre coordinates, broadcastable against (n, 1, 1) parameters.
    centres = np.arange(image_size, dtype=np.float32) + 0.5
    xs, ys = centres[None, None, :], centres[None, :, None]

    def uniform(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=n).astype(np.float32)

    # Polarity and luma bands: background colours stay _LUMA_SEPARATION away.
    bright = rng.random(n) < 0.5
    dark_luma = uniform(*_DARK_DIGIT_LUMA)
    digit_luma = np.where(bright, 1.0 - dark_luma, dark_luma)
    if digit_rgb is not None:
        digit_rgb = np.asarray(digit_rgb, dtype=np.float32).reshape(n, 3)
        digit_luma = digit_rgb @ LUMA_WEIGHTS
        bright = digit_luma >= 0.5  # a bright digit on a darker background
    band_low = np.where(bright, 0.0, digit_luma + luma_separation)[:, None]
    band_high = np.where(bright, digit_luma - luma_separation, 1.0)[:, None]

    def background_colours(count: int) -> np.ndarray:
        luma = band_low + (band_high - band_low) * rng.random((n, count), dtype=np.float32)
        colours = _colours_with_luma(rng, luma)  # (n, count, 3)
        if background_saturation != 1.0:  # towards the grey of the same luma
            grey = luma[..., None]
            colours = (grey + background_saturation * (colours - grey)).astype(np.float32)
        return colours

    # Smooth two-colour gradient along a random direction.
    ends = background_colours(2)
    angle = uniform(0.0, 2 * np.pi)[:, None, None]
    t = ((xs - size / 2) * np.cos(angle) + (ys - size / 2) * np.sin(angle)) / size + 0.5
    t = np.clip(t, 0.0, 1.0)[:, None]
    # Channels-first while compositing: broadcasting a coverage mask over the
    # channel axis is several times faster than over a trailing axis of 3.
    start_rgb, end_rgb = ends[:, 0, :, None, None], ends[:, 1, :, None, None]
    background = start_rgb + t * (end_rgb - start_rgb)  # (n, 3, S, S)

    # Clutter: each slot holds a rectangle, a soft blob or a line, or nothing.
    shape_count = rng.integers(num_shapes[0], num_shapes[1] + 1, size=n)
    shape_colours = background_colours(num_shapes[1])
    for slot in range(num_shapes[1]):
        kind = rng.integers(0, 3, size=n)
        opacity = uniform(0.5, 1.0) * (slot < shape_count)
        start_x, start_y, end_x, end_y = (uniform(0.0, size)[:, None, None] for _ in range(4))
        extent_x, extent_y = (uniform(0.06 * size, 0.3 * size)[:, None, None] for _ in range(2))
        width = uniform(0.03 * size, 0.08 * size)[:, None, None]
        rectangle, blob, line = (kind == shape_kind for shape_kind in range(3))
        coverage = np.empty((n, image_size, image_size), dtype=np.float32)
        coverage[rectangle] = _rectangle(
            xs, ys, start_x[rectangle], start_y[rectangle], extent_x[rectangle], extent_y[rectangle]
        )
        coverage[blob] = _ellipse(
            xs, ys, start_x[blob], start_y[blob], extent_x[blob], extent_y[blob]
        )
        coverage[line] = _segment(
            xs, ys, start_x[line], start_y[line], end_x[line], end_y[line], width[line]
        )
        coverage *= opacity[:, None, None]
        change = shape_colours[:, slot, :, None, None] - background
        change *= coverage[:, None]
        background += change

    # The digit: an inverse affine map from image pixels into the glyph.
    scale = uniform(*scale_range) * size  # side of the 8x8 grid, in pixels
    theta = np.deg2rad(uniform(-_MAX_ROTATION_DEGREES, _MAX_ROTATION_DEGREES))
    offset_x, offset_y = uniform(0.0, 1.0), uniform(0.0, 1.0)
    if centre is None:
        centre_x = offset_x * (size - scale) + scale / 2
        centre_y = offset_y * (size - scale) + scale / 2
    else:
        centre = np.asarray(centre, dtype=np.float32).reshape(n, 2)
        centre_x = ((centre[:, 0] + centre_jitter * (2 * offset_x - 1)) * size).astype(np.float32)
        centre_y = ((centre[:, 1] + centre_jitter * (2 * offset_y - 1)) * size).astype(np.float32)
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    rel_x, rel_y = xs - centre_x[:, None, None], ys - centre_y[:, None, None]
    pixels_per_cell = (scale / 8.0)[:, None, None]
    # Glyph coordinates with cell centres at 0..7.
    u = (cos * rel_x + sin * rel_y) / pixels_per_cell + 3.5
    v = (-sin * rel_x + cos * rel_y) / pixels_per_cell + 3.5
    # Coverage: a smoothstep from glyph intensity 0.3 to 0.7 turns the blurry
    # upsampled scans into crisp strokes of moderate width.
    alpha = np.clip((_bilinear(glyphs, u, v) - 0.3) / 0.4, 0.0, 1.0)
    alpha *= alpha * (3.0 - 2.0 * alpha)

    if digit_rgb is None:
        digit_rgb = _colours_with_luma(rng, digit_luma)
    images = digit_rgb[:, :, None, None] - background
    images *= alpha[:, None]
    images += background
    np.clip(images, 0.0, 1.0, out=images)
    return _Rendering(
        images=np.ascontiguousarray(images.transpose(0, 2, 3, 1)),
        background=np.ascontiguousarray(background.transpose(0, 2, 3, 1)),
        alpha=alpha,
        digit_rgb=digit_rgb,
    )


# Shape coverage masks. `xs` is (1, 1, S) and `ys` (1, S, 1) pixel centres;
# the other arguments are (k, 1, 1); each returns (k, S, S) values in [0, 1].


def _rectangle(
    xs: np.ndarray,
    ys: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    half_width: np.ndarray,
    half_height: np.ndarray,
) -> np.ndarray:
    """Axis-aligned rectangle with antialiased edges."""
    inside_x = np.clip(half_width + 0.5 - np.abs(xs - cx), 0.0, 1.0)
    inside_y = np.clip(half_height + 0.5 - np.abs(ys - cy), 0.0, 1.0)
    return inside_x * inside_y


def _ellipse(
    xs: np.ndarray,
    ys: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    radius_x: np.ndarray,
    radius_y: np.ndarray,
) -> np.ndarray:
    """Axis-aligned ellipse with a soft rim."""
    distance_squared = ((xs - cx) / radius_x) ** 2 + ((ys - cy) / radius_y) ** 2
    return np.clip(3.0 * (1.0 - distance_squared), 0.0, 1.0)


def _segment(
    xs: np.ndarray,
    ys: np.ndarray,
    start_x: np.ndarray,
    start_y: np.ndarray,
    end_x: np.ndarray,
    end_y: np.ndarray,
    width: np.ndarray,
) -> np.ndarray:
    """Antialiased line segment of the given width."""
    dx, dy = end_x - start_x, end_y - start_y
    rel_x, rel_y = xs - start_x, ys - start_y
    along = np.clip((rel_x * dx + rel_y * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
    distance = np.hypot(rel_x - along * dx, rel_y - along * dy)
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0)


def _bilinear(glyphs: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Samples `(n, 8, 8)` glyphs at columns `u` and rows `v`, zero outside.

    `u` and `v` are `(n, S, S)` glyph coordinates with cell centres at 0..7.
    """
    n = len(glyphs)
    # A zero rim of one cell, two on the right and bottom so that every
    # sample's lower-right neighbour exists: n glyphs of 11x11 cells.
    padded = np.pad(glyphs, ((0, 0), (1, 2), (1, 2))).ravel()
    # Shift by the rim and clamp: out-of-range samples read zeros.
    u = np.clip(u + 1.0, 0.0, 9.0, dtype=np.float32)
    v = np.clip(v + 1.0, 0.0, 9.0, dtype=np.float32)
    u0, v0 = u.astype(np.int32), v.astype(np.int32)  # floor, as both are >= 0
    fu, fv = u - u0, v - v0
    corner = v0 * 11 + u0 + (np.arange(n, dtype=np.int32) * 121)[:, None, None]
    top = np.take(padded, corner)
    top += fu * (np.take(padded, corner + 1) - top)
    bottom = np.take(padded, corner + 11)
    bottom += fu * (np.take(padded, corner + 12) - bottom)
    top += fv * (bottom - top)
    return top
