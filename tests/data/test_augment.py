"""Tests for the batched augmentations of `keras_ssl.data.augment`."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.data import augment


def _images(batch=8, height=32, width=32, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.random((batch, height, width, 3), dtype=np.float32))


def _repeated(batch=16, size=32):
    """`batch` copies of one structured (non-symmetric) image."""
    y, x = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    image = np.stack([x, y, x * y], axis=-1).astype(np.float32)
    return tf.constant(np.repeat(image[None], batch, axis=0))


def _changed(outputs, inputs):
    """Per image: whether any pixel differs."""
    difference = np.abs(np.asarray(outputs) - np.asarray(inputs))
    return np.any(difference > 1e-6, axis=(1, 2, 3))


ALL_FUNCTIONS = {
    "crop": lambda x, seed=None: augment.random_resized_crop(x, 24, seed=seed),
    "flip": lambda x, seed=None: augment.random_flip_left_right(x, seed=seed),
    "jitter": lambda x, seed=None: augment.color_jitter(
        x, 0.4, 0.4, 0.4, 0.1, seed=seed
    ),
    "gray": lambda x, seed=None: augment.random_grayscale(x, 0.5, seed=seed),
    "blur": lambda x, seed=None: augment.gaussian_blur(
        x, 0.5, kernel_size=5, seed=seed
    ),
    "solarize": lambda x, seed=None: augment.random_solarize(x, 0.5, seed=seed),
}


@pytest.mark.parametrize("name", sorted(ALL_FUNCTIONS))
def test_shape_dtype_range_and_seeding(name):
    fn = ALL_FUNCTIONS[name]
    images = _images()
    out = fn(images, seed=[1, 2])
    expected = (8, 24, 24, 3) if name == "crop" else (8, 32, 32, 3)
    assert tuple(out.shape) == expected
    assert out.dtype == tf.float32
    assert np.all(out.numpy() >= 0.0) and np.all(out.numpy() <= 1.0)
    # Deterministic given a seed; another seed or no seed draws anew.
    np.testing.assert_array_equal(out.numpy(), fn(images, seed=[1, 2]).numpy())
    assert not np.array_equal(out.numpy(), fn(images, seed=[3, 4]).numpy())


@pytest.mark.parametrize("name", sorted(ALL_FUNCTIONS))
def test_dynamic_batch_size_in_graph(name):
    fn = tf.function(
        ALL_FUNCTIONS[name],
        input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)],
    )
    assert fn(_images(batch=3)).shape[0] == 3
    assert fn(_images(batch=5)).shape[0] == 5
    assert fn(tf.zeros([0, 32, 32, 3])).shape[0] == 0


def test_unseeded_calls_differ():
    images = _repeated(4)
    first = augment.random_resized_crop(images, 32)
    second = augment.random_resized_crop(images, 32)
    assert not np.array_equal(first.numpy(), second.numpy())


# ---------------------------------------------------------------------------
# Random resized crop.
# ---------------------------------------------------------------------------


def test_crop_is_per_sample():
    crops = augment.random_resized_crop(_repeated(16), 32, seed=[0, 0]).numpy()
    for i in range(1, 16):
        assert not np.allclose(crops[0], crops[i])


@pytest.mark.parametrize("size", [32, 48, 20, (16, 40)])
def test_full_box_equals_resize(size):
    images = _images(batch=2)
    crops = augment.random_resized_crop(
        images, size, scale=(1.0, 1.0), ratio=(1.0, 1.0)
    )
    target = size if isinstance(size, tuple) else (size, size)
    np.testing.assert_allclose(
        crops.numpy(), tf.image.resize(images, target).numpy(), atol=1e-5
    )


def test_crop_boxes_follow_scale_and_ratio():
    boxes = augment.sample_crop_boxes(
        20000, 32, 32, scale=(0.2, 0.5), ratio=(3 / 4, 4 / 3), seed=[5, 6]
    ).numpy()
    heights = boxes[:, 2] - boxes[:, 0]
    widths = boxes[:, 3] - boxes[:, 1]
    areas = heights * widths
    assert boxes.min() >= -1e-6 and boxes.max() <= 1 + 1e-6
    # Every candidate fits in a square image for these ranges, so the area
    # fraction is uniform on the scale range and log(aspect) on log(ratio).
    assert areas.min() >= 0.2 - 1e-5 and areas.max() <= 0.5 + 1e-5
    assert abs(areas.mean() - 0.35) < 0.005
    assert abs(np.mean(areas < 0.275) - 0.25) < 0.02
    log_aspect = np.log(widths / heights)
    assert np.all(np.abs(log_aspect) <= np.log(4 / 3) + 1e-5)
    assert abs(log_aspect.mean()) < 0.01
    # Positions are uniform: the box centres cover the image symmetrically.
    centres_x = (boxes[:, 1] + boxes[:, 3]) / 2
    assert abs(centres_x.mean() - 0.5) < 0.01


def test_crop_boxes_default_scale_range():
    boxes = augment.sample_crop_boxes(5000, 32, 32, seed=[1, 1]).numpy()
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert areas.min() >= 0.08 - 1e-5 and areas.max() <= 1 + 1e-5
    # Large areas with a non-square ratio do not fit and are redrawn, so the
    # mean is a little below the uniform mean 0.54.
    assert 0.45 < areas.mean() < 0.56


def test_crop_boxes_fall_back_to_centre_crop():
    # A 10x100 image cannot hold 90% of its area with aspect ratio 1.
    boxes = augment.sample_crop_boxes(3, 10, 100, scale=(0.9, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(boxes.numpy(), [[0.0, 0.45, 1.0, 0.55]] * 3, atol=1e-6)


# ---------------------------------------------------------------------------
# Flip, grayscale, solarize.
# ---------------------------------------------------------------------------


def test_flip():
    images = _images()
    np.testing.assert_array_equal(
        augment.random_flip_left_right(images, p=1.0).numpy(),
        tf.image.flip_left_right(images).numpy(),
    )
    np.testing.assert_array_equal(
        augment.random_flip_left_right(images, p=0.0).numpy(), images.numpy()
    )
    images = _images(batch=400, height=4, width=4)
    flipped = _changed(augment.random_flip_left_right(images, seed=[0, 1]), images)
    assert abs(flipped.mean() - 0.5) < 0.1


def test_grayscale():
    images = _images()
    gray = augment.random_grayscale(images, p=1.0).numpy()
    luma = images.numpy() @ np.array([0.299, 0.587, 0.114], np.float32)
    for channel in range(3):
        np.testing.assert_allclose(gray[..., channel], luma, atol=1e-6)
    images = _images(batch=1000, height=4, width=4)
    out = augment.random_grayscale(images, p=0.2, seed=[2, 3]).numpy()
    equal_channels = np.all(out[..., :1] == out, axis=(1, 2, 3))
    np.testing.assert_array_equal(out[~equal_channels], images.numpy()[~equal_channels])
    assert abs(equal_channels.mean() - 0.2) < 0.05


def test_solarize():
    images = _images()
    x = images.numpy()
    out = augment.random_solarize(images, p=1.0, threshold=0.5).numpy()
    np.testing.assert_allclose(out, np.where(x >= 0.5, 1.0 - x, x), atol=1e-7)
    np.testing.assert_array_equal(
        augment.random_solarize(images, p=0.0).numpy(), x
    )


# ---------------------------------------------------------------------------
# Colour jitter.
# ---------------------------------------------------------------------------


def test_jitter_is_per_sample_and_applied_with_p():
    images = _repeated(16)
    out = augment.color_jitter(images, 0.4, 0.4, 0.4, 0.1, p=1.0, seed=[0, 0]).numpy()
    for i in range(1, 16):
        assert not np.allclose(out[0], out[i])
    np.testing.assert_array_equal(
        augment.color_jitter(images, 0.4, 0.4, 0.4, 0.1, p=0.0).numpy(), images.numpy()
    )
    images = _images(batch=500, height=4, width=4)
    out = augment.color_jitter(images, 0.4, 0.4, 0.4, 0.1, p=0.8, seed=[1, 0])
    changed = _changed(out, images)
    assert abs(changed.mean() - 0.8) < 0.06
    # Images left out are exactly unchanged.
    np.testing.assert_array_equal(out.numpy()[~changed], images.numpy()[~changed])


def test_brightness_scales_each_image():
    images = _images(batch=64) * 0.6  # No clipping with factors up to 1.5.
    out = augment.color_jitter(images, 0.5, 0, 0, 0, p=1.0, seed=[4, 4]).numpy()
    factors = out / np.maximum(images.numpy(), 1e-3)
    per_image = np.median(factors, axis=(1, 2, 3))
    np.testing.assert_allclose(
        out, images.numpy() * per_image[:, None, None, None], atol=1e-5
    )
    assert per_image.min() >= 0.5 and per_image.max() <= 1.5
    assert per_image.std() > 0.1


def test_contrast_and_saturation_keep_gray_mean_and_gray_pixels():
    images = _images(batch=16)
    # Saturation of a gray image is the identity.
    gray = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(images))
    out = augment.color_jitter(gray, 0, 0, 0.8, 0.3, p=1.0, seed=[0, 9])
    np.testing.assert_allclose(out.numpy(), gray.numpy(), atol=1e-5)
    # Contrast (without clipping) keeps the mean luma.
    images = 0.4 + 0.2 * images
    out = augment.color_jitter(images, 0, 0.5, 0, 0, p=1.0, seed=[0, 3]).numpy()
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(
        (out @ luma).mean(axis=(1, 2)),
        (images.numpy() @ luma).mean(axis=(1, 2)),
        atol=1e-5,
    )


def test_jitter_random_order_differs_from_fixed_order():
    images = _images(batch=32)
    kwargs = dict(
        brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=1.0, seed=[7, 7]
    )
    fixed = augment.color_jitter(images, random_order=False, **kwargs).numpy()
    shuffled = augment.color_jitter(images, random_order=True, **kwargs).numpy()
    same = np.all(np.abs(fixed - shuffled) < 1e-5, axis=(1, 2, 3))
    # The same factors, in the fixed order for about 1/24 of the images.
    assert 0 < (~same).sum() and same.sum() < 8


# ---------------------------------------------------------------------------
# Gaussian blur.
# ---------------------------------------------------------------------------


def _reference_blur(image, sigma, kernel_size):
    radius = kernel_size // 2
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(image, [(radius, radius), (radius, radius), (0, 0)], mode="reflect")
    height, width = image.shape[:2]
    rows = sum(k * padded[i : i + height] for i, k in enumerate(kernel))
    return sum(k * rows[:, i : i + width] for i, k in enumerate(kernel))


def test_blur_matches_reference():
    images = _images(batch=3)
    out = augment.gaussian_blur(images, p=1.0, sigma=(1.5, 1.5), kernel_size=7).numpy()
    for image, blurred in zip(images.numpy(), out):
        np.testing.assert_allclose(blurred, _reference_blur(image, 1.5, 7), atol=1e-5)


def test_blur_constant_image_and_noise_variance():
    constant = tf.fill([4, 32, 32, 3], 0.3)
    np.testing.assert_allclose(
        augment.gaussian_blur(constant, p=1.0, kernel_size=9).numpy(), 0.3, atol=1e-6
    )
    noise = _images(batch=8)
    blurred = augment.gaussian_blur(noise, p=1.0, sigma=(1.0, 2.0), kernel_size=9)
    variance = noise.numpy().var(axis=(1, 2, 3))
    assert np.all(blurred.numpy().var(axis=(1, 2, 3)) < 0.5 * variance)


def test_blur_is_per_sample_and_applied_with_p():
    noise = tf.repeat(_images(batch=1), 8, axis=0)
    out = augment.gaussian_blur(noise, p=1.0, kernel_size=9, seed=[3, 1]).numpy()
    for i in range(1, 8):
        assert not np.allclose(out[0], out[i])
    images = _images(batch=400, height=8, width=8)
    out = augment.gaussian_blur(images, 0.5, (1.0, 2.0), kernel_size=3, seed=[0, 2])
    changed = _changed(out, images)
    assert abs(changed.mean() - 0.5) < 0.1
    np.testing.assert_array_equal(out.numpy()[~changed], images.numpy()[~changed])
    np.testing.assert_array_equal(
        augment.gaussian_blur(images, p=0.0, kernel_size=3).numpy(), images.numpy()
    )


def test_blur_default_kernel_size():
    # 10% of the side, odd: 3 for 32 pixels, none (identity) below 20.
    small = _images(height=16, width=16)
    np.testing.assert_array_equal(
        augment.gaussian_blur(small, p=1.0).numpy(), small.numpy()
    )
    images = _images(batch=2)
    np.testing.assert_allclose(
        augment.gaussian_blur(images, p=1.0, sigma=(1.0, 1.0)).numpy(),
        augment.gaussian_blur(images, p=1.0, sigma=(1.0, 1.0), kernel_size=3).numpy(),
    )


# ---------------------------------------------------------------------------
# Argument validation.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: augment.random_resized_crop(x[0], 32), "shape"),
        (lambda x: augment.random_resized_crop(tf.cast(x, tf.uint8), 32), "float32"),
        (lambda x: augment.random_resized_crop(x, 0), "size"),
        (lambda x: augment.random_resized_crop(x, (32, 32, 3)), "size"),
        (lambda x: augment.random_resized_crop(x, 32, scale=(0.0, 1.0)), "scale"),
        (lambda x: augment.random_resized_crop(x, 32, scale=(0.5, 1.5)), "scale"),
        (lambda x: augment.random_resized_crop(x, 32, scale=(0.5, 0.2)), "min <= max"),
        (lambda x: augment.random_resized_crop(x, 32, ratio=(-1.0, 1.0)), "ratio"),
        (lambda x: augment.random_resized_crop(x, 32, seed=[1, 2, 3]), "seed"),
        (lambda x: augment.random_resized_crop(x, 32, seed=[0.5, 1.0]), "seed"),
        (lambda x: augment.random_flip_left_right(x, p=1.5), "probability"),
        (lambda x: augment.random_grayscale(x, p=-0.1), "probability"),
        (lambda x: augment.random_grayscale(x[..., :1]), "3 channels"),
        (lambda x: augment.random_solarize(x, p=2.0), "probability"),
        (lambda x: augment.color_jitter(x, -0.1, 0, 0, 0), "brightness"),
        (lambda x: augment.color_jitter(x, 0, 0, 0, 0.6), "hue"),
        (lambda x: augment.color_jitter(x, 0, 0, 0, 0, p=1.1), "probability"),
        (lambda x: augment.gaussian_blur(x, kernel_size=4), "odd"),
        (lambda x: augment.gaussian_blur(x, kernel_size=65), "too large"),
        (lambda x: augment.gaussian_blur(x, sigma=(0.0, 1.0)), "sigma"),
        (lambda x: augment.gaussian_blur(x, p=-1.0), "probability"),
        (lambda x: augment.sample_crop_boxes(2, 32, 32, attempts=0), "attempts"),
    ],
)
def test_invalid_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(_images(batch=2))
