"""Batched, per-sample random image augmentations in pure TensorFlow.

Every function here takes a *batch* of float32 images in `[0, 1]` with shape
`(batch, height, width, 3)` and draws independent random parameters for each
image, without `tf.map_fn`: the whole batch goes through a handful of
vectorised ops. They are meant to run inside a `tf.data` map on whole batches
(see `keras_ssl.data.multi_view_dataset`), which then feeds any Keras backend.

Randomness. Each function takes an optional `seed`, a shape `[2]` integer
tensor (or pair of ints) for TensorFlow's stateless random ops:

* `seed=None`: a fresh seed is drawn with the stateful `tf.random.uniform`
  at every call (or every execution of a traced graph), so results differ
  from call to call.
* `seed=[a, b]`: the output is a deterministic function of the inputs and
  the seed. Pass a different seed for each batch (e.g. from
  `tf.data.Dataset.random(..., rerandomize_each_iteration=True)`, as
  `multi_view_dataset` does) to get new draws every batch and every epoch
  while keeping runs reproducible.

Example:

```python
import tensorflow as tf
from keras_ssl.data import augment

images = tf.random.uniform((8, 32, 32, 3))
views = augment.random_resized_crop(images, 32, seed=[1, 2])
views = augment.random_flip_left_right(views)
views = augment.color_jitter(views, 0.4, 0.4, 0.4, 0.1, p=0.8)
views = augment.random_grayscale(views, p=0.2)
```
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import tensorflow as tf

__all__ = [
    "color_jitter",
    "gaussian_blur",
    "random_flip_left_right",
    "random_grayscale",
    "random_resized_crop",
    "random_solarize",
    "sample_crop_boxes",
]

SeedLike = tf.Tensor | Sequence[int] | None

# The functions are plain TensorFlow without tensor-dependent Python control
# flow: AutoGraph (which `tf.data` and `tf.function` apply to what they call)
# has nothing to convert in them, and skipping it saves seconds of tracing.
_no_autograph = tf.autograph.experimental.do_not_convert

# ITU-R BT.601 luma weights, as in torchvision and PIL.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------


def _resolve_seed(seed: SeedLike) -> tf.Tensor:
    """Returns a shape `[2]` seed; draws one from the global RNG if `None`."""
    if seed is None:
        return tf.random.uniform([2], 0, tf.int32.max, dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"`seed` must be integer, got dtype {seed.dtype.name}.")
    if seed.shape.rank is not None and seed.shape.as_list() != [2]:
        raise ValueError(f"`seed` must have shape [2], got {seed.shape}.")
    return seed


def _split(seed: SeedLike, num: int) -> list[tf.Tensor]:
    """Splits `seed` into `num` independent stateless seeds."""
    seeds = tf.random.split(_resolve_seed(seed), num)
    return [seeds[i] for i in range(num)]


def _check_images(images: tf.Tensor) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(
            "Expected a batch of images of shape (batch, height, width, "
            f"channels), got shape {images.shape}."
        )
    if images.dtype != tf.float32:
        raise ValueError(
            "Expected float32 images in [0, 1], got dtype "
            f"{images.dtype.name}. Convert with "
            "`tf.image.convert_image_dtype(images, tf.float32)`."
        )
    return images


def _check_rgb(images: tf.Tensor, name: str) -> None:
    if images.shape[-1] != 3:
        raise ValueError(
            f"`{name}` needs RGB images with 3 channels, got shape {images.shape}."
        )


def _check_probability(p: float, name: str = "p") -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1], got {p}.")
    return float(p)


def _check_range(
    value: Sequence[float], name: str, low: float, high: float
) -> tuple[float, float]:
    """Validates a `(min, max)` pair within `(low, high]`."""
    if len(value) != 2:
        raise ValueError(f"`{name}` must be a pair (min, max), got {value!r}.")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"`{name}` must satisfy min <= max, got {value!r}.")
    if lo <= low or hi > high:
        raise ValueError(f"`{name}` must lie in ({low}, {high}], got {value!r}.")
    return lo, hi


def _image_size(size: int | Sequence[int]) -> tuple[int, int]:
    """Validates an output size given as an int or `(height, width)`."""
    pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    if len(pair) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
        for s in pair
    ):
        raise ValueError(
            f"`size` must be a positive int or a pair of them, got {size!r}."
        )
    return int(pair[0]), int(pair[1])


def _bernoulli(batch_size: tf.Tensor, p: float, seed: tf.Tensor) -> tf.Tensor:
    """A `(batch,)` boolean mask, each entry `True` with probability `p`."""
    return tf.random.stateless_uniform([batch_size], seed) < p


def _select(mask: tf.Tensor, images: tf.Tensor, others: tf.Tensor) -> tf.Tensor:
    """Per image, `images` where `mask` (shape `(batch,)`) is set, else `others`."""
    # A (batch, 1) mask against flattened images is much faster than a
    # (batch, 1, 1, 1) one against 4-D images.
    shape = tf.shape(images)
    flat_shape = [shape[0], tf.reduce_prod(shape[1:])]
    flat = tf.where(
        mask[:, None],
        tf.reshape(images, flat_shape),
        tf.reshape(others, flat_shape),
    )
    return tf.reshape(flat, shape)


def _hw(images: tf.Tensor) -> tuple[int | tf.Tensor, int | tf.Tensor]:
    """Height and width, as Python ints when static."""
    shape = tf.shape(images)
    height = images.shape[1] if images.shape[1] is not None else shape[1]
    width = images.shape[2] if images.shape[2] is not None else shape[2]
    return height, width


# ---------------------------------------------------------------------------
# Random resized crop.
# ---------------------------------------------------------------------------


@_no_autograph
def sample_crop_boxes(
    batch_size: int | tf.Tensor,
    height: int | tf.Tensor,
    width: int | tf.Tensor,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    attempts: int = 10,
    seed: SeedLike = None,
) -> tf.Tensor:
    """Samples random-resized-crop boxes, one per image, as torchvision does.

    For each image, up to `attempts` candidates are drawn (all at once): an
    area fraction uniform in `scale` and an aspect ratio (width / height)
    log-uniform in `ratio`. The first candidate that fits inside the image is
    kept and placed uniformly at random. If none fits, the box falls back to
    torchvision's deterministic *centre crop* of the whole image, with the
    aspect ratio clamped to `ratio`.

    Unlike torchvision the box sides are not rounded to whole pixels: boxes
    are continuous, which bilinear resampling handles directly, so the area
    fraction of an accepted box is exactly the sampled one.

    Args:
        batch_size: Number of boxes.
        height: Image height in pixels.
        width: Image width in pixels.
        scale: `(min, max)` fraction of the image area, in `(0, 1]`.
        ratio: `(min, max)` aspect ratio (width / height), positive.
        attempts: Candidates drawn per image before falling back.
        seed: Optional shape `[2]` stateless seed.

    Returns:
        float32 tensor of shape `(batch_size, 4)`: boxes
        `[y_min, x_min, y_max, x_max]` as fractions of the image height and
        width (continuous coordinates, `0` = top/left edge, `1` = bottom/right
        edge), so the box's area fraction is
        `(y_max - y_min) * (x_max - x_min)`.

    Example:

    ```python
    boxes = sample_crop_boxes(4, 32, 32, scale=(0.2, 1.0), seed=[0, 1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ```
    """
    scale_lo, scale_hi = _check_range(scale, "scale", 0.0, 1.0)
    ratio_lo, ratio_hi = _check_range(ratio, "ratio", 0.0, math.inf)
    if attempts < 1:
        raise ValueError(f"`attempts` must be >= 1, got {attempts}.")
    area_seed, ratio_seed, offset_seed = _split(seed, 3)
    h_img = tf.cast(height, tf.float32)
    w_img = tf.cast(width, tf.float32)

    shape = [batch_size, attempts]
    area = h_img * w_img * tf.random.stateless_uniform(
        shape, area_seed, scale_lo, scale_hi
    )
    aspect = tf.exp(
        tf.random.stateless_uniform(
            shape, ratio_seed, math.log(ratio_lo), math.log(ratio_hi)
        )
    )
    crop_w = tf.sqrt(area * aspect)
    crop_h = tf.sqrt(area / aspect)
    fits = (crop_w <= w_img) & (crop_h <= h_img)
    # argmax returns the first maximum: the first candidate that fits.
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    found = tf.reduce_any(fits, axis=1)
    crop_h = tf.gather(crop_h, first, axis=1, batch_dims=1)
    crop_w = tf.gather(crop_w, first, axis=1, batch_dims=1)

    # Fallback: the largest centred box whose aspect ratio is within `ratio`.
    image_ratio = w_img / h_img
    fallback_w = tf.where(image_ratio > ratio_hi, h_img * ratio_hi, w_img)
    fallback_h = tf.where(image_ratio < ratio_lo, w_img / ratio_lo, h_img)
    crop_h = tf.where(found, crop_h, fallback_h)
    crop_w = tf.where(found, crop_w, fallback_w)

    position = tf.random.stateless_uniform([batch_size, 2], offset_seed)
    position = tf.where(found[:, None], position, 0.5)
    top = position[:, 0] * (h_img - crop_h)
    left = position[:, 1] * (w_img - crop_w)
    return tf.stack(
        [
            top / h_img,
            left / w_img,
            (top + crop_h) / h_img,
            (left + crop_w) / w_img,
        ],
        axis=1,
    )


def _sampling_boxes(
    boxes: tf.Tensor,
    height: int | tf.Tensor,
    width: int | tf.Tensor,
    out_height: int,
    out_width: int,
) -> tf.Tensor:
    """Maps area boxes to `crop_and_resize` boxes on a 1-pixel-padded image.

    `tf.image.crop_and_resize` samples `out` points from the first to the last
    box coordinate inclusive (in pixel-centre units, normalised by `size - 1`).
    To resample a continuous box `[a, b)` with half-pixel centres, like
    `tf.image.resize`, output pixel `k` must read pixel-centre coordinate
    `a + (k + 0.5) * (b - a) / out - 0.5`. These can fall up to half a pixel
    outside the image; the caller pads the image by one edge pixel so that
    they read the border value, exactly like `tf.image.resize`'s clamping.
    """

    def axis(start, end, size, out):
        size = tf.cast(size, tf.float32)
        step = (end - start) * size / out
        first = start * size + 0.5 * step - 0.5 + 1.0  # +1: the padding.
        last = end * size - 0.5 * step - 0.5 + 1.0
        return first / (size + 1.0), last / (size + 1.0)

    y1, y2 = axis(boxes[:, 0], boxes[:, 2], height, out_height)
    x1, x2 = axis(boxes[:, 1], boxes[:, 3], width, out_width)
    return tf.stack([y1, x1, y2, x2], axis=1)


@_no_autograph
def random_resized_crop(
    images: tf.Tensor,
    size: int | Sequence[int],
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    seed: SeedLike = None,
) -> tf.Tensor:
    """Crops a random box from each image and resizes it, as in SimCLR.

    Boxes come from `sample_crop_boxes` (torchvision's `RandomResizedCrop`
    sampling: area fraction uniform in `scale`, aspect ratio log-uniform in
    `ratio`, 10 attempts, then a deterministic centre crop). All crops are
    resampled at once with `tf.image.crop_and_resize`, bilinearly with
    half-pixel centres: a box covering the whole image gives
    `tf.image.resize(images, size)` up to float rounding. There is no
    antialiasing when a box is larger than the output.

    Args:
        images: float32 tensor `(batch, height, width, channels)`.
        size: Output side, an int, or `(out_height, out_width)`.
        scale: `(min, max)` fraction of the image area to crop, in `(0, 1]`.
        ratio: `(min, max)` aspect ratio (width / height) of the crop.
        seed: Optional shape `[2]` stateless seed.

    Returns:
        float32 tensor `(batch, out_height, out_width, channels)`.

    Example:

    ```python
    images = tf.random.uniform((8, 32, 32, 3))
    crops = random_resized_crop(images, 32, scale=(0.2, 1.0))
    ```
    """
    images = _check_images(images)
    out_h, out_w = _image_size(size)
    height, width = _hw(images)
    batch_size = tf.shape(images)[0]
    boxes = sample_crop_boxes(batch_size, height, width, scale, ratio, seed=seed)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    return tf.image.crop_and_resize(
        padded,
        _sampling_boxes(boxes, height, width, out_h, out_w),
        tf.range(batch_size),
        (out_h, out_w),
        method="bilinear",
    )


# ---------------------------------------------------------------------------
# Flip, grayscale, solarize.
# ---------------------------------------------------------------------------


@_no_autograph
def random_flip_left_right(
    images: tf.Tensor, p: float = 0.5, seed: SeedLike = None
) -> tf.Tensor:
    """Mirrors each image horizontally with probability `p`.

    Args:
        images: float32 tensor `(batch, height, width, channels)`.
        p: Probability of flipping each image.
        seed: Optional shape `[2]` stateless seed.

    Returns:
        Tensor of the same shape.

    Example:

    ```python
    flipped = random_flip_left_right(tf.random.uniform((8, 32, 32, 3)))
    ```
    """
    images = _check_images(images)
    _check_probability(p)
    apply = _bernoulli(tf.shape(images)[0], p, _resolve_seed(seed))
    return _select(apply, tf.reverse(images, axis=[2]), images)


@_no_autograph
def random_grayscale(
    images: tf.Tensor, p: float = 0.2, seed: SeedLike = None
) -> tf.Tensor:
    """Converts each image to grayscale with probability `p`.

    Uses ITU-R BT.601 luma weights (0.299, 0.587, 0.114), and keeps 3 equal
    channels so the output shape is unchanged.

    Args:
        images: float32 RGB tensor `(batch, height, width, 3)`.
        p: Probability of converting each image.
        seed: Optional shape `[2]` stateless seed.

    Returns:
        Tensor of the same shape.

    Example:

    ```python
    views = random_grayscale(tf.random.uniform((8, 32, 32, 3)), p=0.2)
    ```
    """
    images = _check_images(images)
    _check_rgb(images, "random_grayscale")
    _check_probability(p)
    apply = _bernoulli(tf.shape(images)[0], p, _resolve_seed(seed))
    luma = tf.linalg.matvec(images, tf.constant(_LUMA_WEIGHTS))
    gray = tf.broadcast_to(luma[..., None], tf.shape(images))
    return _select(apply, gray, images)


@_no_autograph
def random_solarize(
    images: tf.Tensor,
    p: float = 0.0,
    threshold: float = 0.5,
    seed: SeedLike = None,
) -> tf.Tensor:
    """Solarizes each image with probability `p`: `x -> 1 - x` where `x >= threshold`.

    Args:
        images: float32 tensor `(batch, height, width, channels)` in `[0, 1]`.
        p: Probability of solarizing each image (BYOL uses 0.2 on one view).
        threshold: Pixels at or above it are inverted.
        seed: Optional shape `[2]` stateless seed.

    Returns:
        Tensor of the same shape.

    Example:

    ```python
    views = random_solarize(tf.random.uniform((8, 32, 32, 3)), p=0.2)
    ```
    """
    images = _check_images(images)
    _check_probability(p)
    apply = _bernoulli(tf.shape(images)[0], p, _resolve_seed(seed))
    inverted = tf.where(images >= threshold, 1.0 - images, images)
    return _select(apply, inverted, images)


# ---------------------------------------------------------------------------
# Colour jitter.
# ---------------------------------------------------------------------------

_JITTER_KINDS = ("brightness", "contrast", "saturation", "hue")


def _blend_matrices(
    scale: tf.Tensor, gray_weight: tf.Tensor | None
) -> tf.Tensor:
    """Colour matrices `scale * I + gray_weight * (luma -> RGB)`, shape `(..., 3, 3)`.

    `matrix[..., c, d]` is the weight of input channel `c` in output channel
    `d`.
    """
    matrices = scale[..., None, None] * tf.eye(3)
    if gray_weight is not None:
        to_gray = tf.constant([[w] * 3 for w in _LUMA_WEIGHTS])
        matrices += gray_weight[..., None, None] * to_gray
    return matrices


def _blend_jitter(
    images: tf.Tensor, matrices: tf.Tensor, mean_weight: tf.Tensor | None
) -> tf.Tensor:
    """Brightness, contrast and saturation in one pass, chosen per image.

    Computes `clip(scale * x + gray_weight * luma(x) + mean_weight *
    mean(luma(x)), 0, 1)` per image, the first two terms being the colour
    matrices of `_blend_matrices` (one batched matmul). This is brightness
    for `(scale, gray_weight, mean_weight) = (f, 0, 0)`, contrast for
    `(f, 0, 1 - f)`, saturation for `(f, 1 - f, 0)` and exactly the identity
    for `(1, 0, 0)` on images in `[0, 1]`.
    """
    out = tf.einsum("bhwc,bcd->bhwd", images, matrices)
    if mean_weight is not None:
        luma = tf.constant(_LUMA_WEIGHTS)
        mean_luma = tf.linalg.matvec(tf.reduce_mean(images, axis=[1, 2]), luma)
        out += tf.reshape(mean_weight * mean_luma, [-1, 1, 1, 1])
    return tf.clip_by_value(out, 0.0, 1.0)


def _adjust_hue_where(
    images: tf.Tensor, chosen: tf.Tensor, delta: tf.Tensor
) -> tf.Tensor:
    """Rotates the HSV hue of the `chosen` images by `delta` turns.

    Only the chosen images are converted (gathered, then scattered back).
    """
    indices = tf.where(chosen)
    hue, saturation, value = tf.unstack(
        tf.image.rgb_to_hsv(tf.gather_nd(images, indices)), axis=-1
    )
    hue = tf.math.floormod(hue + tf.gather_nd(delta, indices)[:, None, None], 1.0)
    shifted = tf.image.hsv_to_rgb(tf.stack([hue, saturation, value], axis=-1))
    return tf.tensor_scatter_nd_update(images, indices, shifted)


@_no_autograph
def color_jitter(
    images: tf.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    p: float = 0.8,
    random_order: bool = True,
    seed: SeedLike = None,
) -> tf.Tensor:
    """Randomly changes brightness, contrast, saturation and hue, per image.

    torchvision's `ColorJitter` inside `RandomApply(p)`, as used by SimCLR
    (with strength `s`: `brightness = contrast = saturation = 0.8 * s`,
    `hue = 0.2 * s`). Each image draws its own factors:

    * brightness: `x * f`, `f ~ U[max(0, 1 - brightness), 1 + brightness]`;
    * contrast: blend with the image's mean luma, `f` drawn likewise;
    * saturation: blend with the image's luma, `f` drawn likewise;
    * hue: rotate the HSV hue by `d ~ U[-hue, hue]` turns.

    Pixels are clipped to `[0, 1]` after each adjustment. With
    `random_order=True` every image applies the adjustments in its own random
    order, as torchvision and SimCLR do; otherwise all use the order above.
    Vectorisation: the adjustments run in rounds, in which each image
    performs the one it drew for that round. Brightness, contrast and
    saturation are all blends, so one fused blend per round serves every
    image; the (costlier) hue rotation runs only on the images that drew it.
    Images left out (probability `1 - p`) get identity factors, which leave
    them exactly unchanged. An adjustment whose strength is 0 is skipped.

    Args:
        images: float32 RGB tensor `(batch, height, width, 3)` in `[0, 1]`.
        brightness: Brightness strength, >= 0.
        contrast: Contrast strength, >= 0.
        saturation: Saturation strength, >= 0.
        hue: Hue strength in turns, in `[0, 0.5]`.
        p: Probability that an image is jittered at all.
        random_order: Whether each image draws its own order of the
            adjustments.
        seed: Optional shape `[2]` stateless seed.

    Returns:
        Tensor of the same shape, in `[0, 1]`.

    Example:

    ```python
    s = 0.5  # SimCLR's colour distortion strength for CIFAR.
    images = tf.random.uniform((8, 32, 32, 3))
    views = color_jitter(images, 0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=0.8)
    ```
    """
    images = _check_images(images)
    _check_rgb(images, "color_jitter")
    _check_probability(p)
    strengths = dict(zip(_JITTER_KINDS, (brightness, contrast, saturation, hue)))
    for name, value in strengths.items():
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value}.")
    if hue > 0.5:
        raise ValueError(f"`hue` must be in [0, 0.5], got {hue}.")
    kinds = [kind for kind in _JITTER_KINDS if strengths[kind] > 0]
    if not kinds:
        return images

    apply_seed, order_seed, factor_seed = _split(seed, 3)
    batch_size = tf.shape(images)[0]
    low = tf.constant(
        [-hue if k == "hue" else max(0.0, 1.0 - strengths[k]) for k in kinds]
    )
    high = tf.constant([hue if k == "hue" else 1.0 + strengths[k] for k in kinds])
    factors = tf.random.stateless_uniform(
        [batch_size, len(kinds)], factor_seed, low, high
    )  # (batch, kinds)
    if random_order:
        noise = tf.random.stateless_uniform([batch_size, len(kinds)], order_seed)
        order = tf.argsort(noise, axis=1)
    else:
        order = tf.tile(tf.range(len(kinds))[None], [batch_size, 1])
    # Per image and round: which adjustment, with which factor, if applied.
    factors = tf.gather(factors, order, batch_dims=1)
    apply = _bernoulli(batch_size, p, apply_seed)[:, None]
    does = {kind: (order == index) & apply for index, kind in enumerate(kinds)}

    # Everything each round needs, computed for all rounds at once.
    linear = [kind for kind in kinds if kind != "hue"]
    if linear:
        is_linear = tf.reduce_any([does[kind] for kind in linear], axis=0)
        gray_weight = mean_weights = None
        if "saturation" in does:
            gray_weight = tf.where(does["saturation"], 1.0 - factors, 0.0)
        if "contrast" in does:
            mean_weights = tf.where(does["contrast"], 1.0 - factors, 0.0)
            mean_weights = tf.unstack(mean_weights, len(kinds), axis=1)
        scale = tf.where(is_linear, factors, 1.0)
        matrices = tf.unstack(_blend_matrices(scale, gray_weight), len(kinds), axis=1)
    if "hue" in does:
        hue_masks = tf.unstack(does["hue"], len(kinds), axis=1)
        hue_deltas = tf.unstack(factors, len(kinds), axis=1)

    for round_ in range(len(kinds)):
        if linear:
            mean_weight = None if mean_weights is None else mean_weights[round_]
            images = _blend_jitter(images, matrices[round_], mean_weight)
        if "hue" in does:
            images = _adjust_hue_where(images, hue_masks[round_], hue_deltas[round_])
    return images


# ---------------------------------------------------------------------------
# Gaussian blur.
# ---------------------------------------------------------------------------


@_no_autograph
def gaussian_blur(
    images: tf.Tensor,
    p: float = 0.5,
    sigma: Sequence[float] = (0.1, 2.0),
    kernel_size: int | None = None,
    seed: SeedLike = None,
) -> tf.Tensor:
    """Blurs each image with probability `p`, with its own Gaussian width.

    Each image draws `sigma ~ U[sigma_min, sigma_max]` (in pixels). The blur
    is separable: all images' kernels are stacked as the per-channel filters
    of one depthwise convolution over the batch folded into channels,
    `(1, H, W, batch * C)`, first along the height, then the width. Borders
    are reflected (as in torchvision), so a constant image stays constant.

    Args:
        images: float32 tensor `(batch, height, width, channels)`.
        p: Probability of blurring each image.
        sigma: `(min, max)` standard deviation of the Gaussian, in pixels.
        kernel_size: Odd kernel side. Defaults to SimCLR's choice, about 10%
            of the smaller image side: `2 * (side // 10 // 2) + 1`, e.g. 23
            for 224 pixels and 3 for 32 (1 below 20 pixels: no blur).
        seed: Optional shape `[2]` stateless seed.

    Returns:
        Tensor of the same shape.

    Example:

    ```python
    images = tf.random.uniform((8, 96, 96, 3))
    views = gaussian_blur(images, p=0.5)  # 9x9 kernels.
    ```
    """
    images = _check_images(images)
    _check_probability(p)
    sigma_lo, sigma_hi = _check_range(sigma, "sigma", 0.0, math.inf)
    height, width, channels = images.shape[1:]
    if height is None or width is None or channels is None:
        raise ValueError(
            "`gaussian_blur` needs a static image height, width and channel "
            f"count, got shape {images.shape}."
        )
    if kernel_size is None:
        kernel_size = 2 * (min(height, width) // 10 // 2) + 1
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"`kernel_size` must be a positive odd int, got {kernel_size}."
        )
    radius = kernel_size // 2
    if radius >= min(height, width):
        raise ValueError(
            f"`kernel_size` {kernel_size} is too large for {height}x{width} "
            "images (reflection padding needs kernel_size // 2 < side)."
        )
    if radius == 0:
        return images

    apply_seed, sigma_seed = _split(seed, 2)
    batch_size = tf.shape(images)[0]
    # Only the images drawn for blurring are convolved.
    indices = tf.where(_bernoulli(batch_size, p, apply_seed))
    sigmas = tf.random.stateless_uniform(
        tf.shape(indices)[:1], sigma_seed, sigma_lo, sigma_hi
    )

    def blur_chosen() -> tf.Tensor:
        offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
        kernels = tf.exp(-tf.square(offsets) / (2.0 * tf.square(sigmas[:, None])))
        kernels /= tf.reduce_sum(kernels, axis=1, keepdims=True)  # (n, k)
        # One filter per (image, channel), in the order of the folded channels.
        kernels = tf.transpose(tf.repeat(kernels, channels, axis=0))  # (k, n*C)
        chosen = tf.gather_nd(images, indices)
        folded = tf.reshape(
            tf.transpose(chosen, [1, 2, 0, 3]), [1, height, width, -1]
        )
        padding = [[0, 0], [radius, radius], [radius, radius], [0, 0]]
        folded = tf.pad(folded, padding, mode="REFLECT")
        strides = [1, 1, 1, 1]
        folded = tf.nn.depthwise_conv2d(
            folded, kernels[:, None, :, None], strides, "VALID"
        )
        folded = tf.nn.depthwise_conv2d(
            folded, kernels[None, :, :, None], strides, "VALID"
        )
        blurred = tf.transpose(
            tf.reshape(folded, [height, width, -1, channels]), [2, 0, 1, 3]
        )
        return tf.tensor_scatter_nd_update(images, indices, blurred)

    # Convolutions reject empty filters: skip them when no image is chosen.
    return tf.cond(tf.size(indices) > 0, blur_chosen, lambda: images)
