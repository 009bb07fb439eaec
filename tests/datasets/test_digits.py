"""Tests for the embedded cluttered-digits dataset."""

import doctest

import numpy as np
import pytest
from scipy.ndimage import map_coordinates
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

from keras_ssl.datasets import digits as digits_module
from keras_ssl.datasets import load_cluttered_digits

# Uncached builds, small enough to render quickly.
_build = digits_module._build.__wrapped__


def _knn_accuracy(x_train, y_train, x_test, y_test):
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine")
    knn.fit(x_train.reshape(len(x_train), -1), y_train)
    return knn.score(x_test.reshape(len(x_test), -1), y_test)


def test_shapes_dtypes_and_ranges(digits):
    assert digits.x_train.shape == (1346, 32, 32, 3)
    assert digits.x_test.shape == (451, 32, 32, 3)
    assert digits.x_unlabeled.shape == (4 * 1346, 32, 32, 3)
    for x in (digits.x_train, digits.x_test, digits.x_unlabeled):
        assert x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert not x.flags.writeable  # Shared through the cache.
    assert digits.y_train.dtype == np.int32 and digits.y_test.dtype == np.int32
    assert digits.y_train.shape == (1346,) and digits.y_test.shape == (451,)
    assert digits.class_names == tuple(str(d) for d in range(10))
    assert set(np.unique(digits.y_train)) == set(range(10))


def test_cached_per_arguments(digits):
    assert load_cluttered_digits() is digits
    assert load_cluttered_digits(seed=0, image_size=32) is digits


def test_source_digits_do_not_leak(digits):
    train, test = digits.source_index_train, digits.source_index_test
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test])) == list(range(1797))
    assert set(digits.source_index_unlabeled) == set(train)
    # Each training digit is rendered exactly renders_per_digit (4) times.
    assert np.array_equal(
        np.bincount(digits.source_index_unlabeled, minlength=1797),
        4 * np.bincount(train, minlength=1797),
    )
    target = load_digits().target
    assert np.array_equal(digits.y_train, target[train])
    assert np.array_equal(digits.y_test, target[test])
    # Stratified: every class holds out about a quarter of its digits.
    fractions = np.bincount(digits.y_test) / np.bincount(target)
    assert np.all(np.abs(fractions - 0.25) < 0.01)


def test_unlabeled_renderings_are_fresh(digits):
    first = digits.source_index_train[0]
    renders = digits.x_unlabeled[digits.source_index_unlabeled == first]
    assert len(renders) == 4
    for image in renders:
        assert not np.allclose(image, digits.x_train[0])


def test_deterministic_for_a_seed():
    a, b = _build(16, 1, 0.25, 7), _build(16, 1, 0.25, 7)
    for field in ("x_train", "y_train", "x_test", "y_test", "x_unlabeled", "source_index_train"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_seeds_differ():
    a, b = _build(16, 1, 0.25, 0), _build(16, 1, 0.25, 1)
    assert not np.array_equal(a.source_index_train, b.source_index_train)
    assert np.abs(a.x_test - b.x_test).mean() > 0.05


def test_renders_per_digit_leaves_labelled_splits_unchanged():
    one, two = _build(16, 1, 0.25, 3), _build(16, 2, 0.25, 3)
    np.testing.assert_array_equal(one.x_train, two.x_train)
    np.testing.assert_array_equal(one.x_test, two.x_test)
    assert len(two.x_unlabeled) == 2 * len(one.x_unlabeled)


def test_image_size():
    data = load_cluttered_digits(image_size=20, renders_per_digit=1, seed=2)
    assert data.x_train.shape[1:] == (20, 20, 3)


def test_bilinear_sampling_matches_scipy():
    glyphs = (load_digits().images[:20] / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    u, v = (rng.uniform(-3.0, 11.0, (20, 16, 16)).astype(np.float32) for _ in range(2))
    u[:, 0, :4] = [0.0, 7.0, 9.0, -1.0]  # Grid points and the zero rim.
    expected = [
        map_coordinates(glyph, [rows, cols], order=1, mode="grid-constant", cval=0.0)
        for glyph, rows, cols in zip(glyphs, v, u)
    ]
    np.testing.assert_allclose(digits_module._bilinear(glyphs, u, v), expected, atol=1e-6)


def test_luminance_gap_between_digit_and_background():
    glyphs = (load_digits().images[:400] / 16.0).astype(np.float32)
    rendering = digits_module._render(glyphs, 32, np.random.default_rng(0))
    luma = digits_module.LUMA_WEIGHTS
    digit_luma = rendering.digit_rgb @ luma
    background_luma = rendering.background @ luma
    gap = np.abs(background_luma - digit_luma[:, None, None]).min(axis=(1, 2))
    assert gap.min() >= digits_module.MIN_LUMA_GAP
    # In the final grayscale image, strokes stand out from the background.
    image_luma = rendering.images @ luma
    for image, alpha in zip(image_luma, rendering.alpha):
        stroke, empty = image[alpha > 0.95], image[alpha == 0.0]
        assert len(stroke) > 0 and len(empty) > 0
        assert abs(stroke.mean() - empty.mean()) >= digits_module.MIN_LUMA_GAP
    # Both polarities occur.
    assert 0.3 < np.mean(digit_luma > 0.5) < 0.7


def test_much_harder_than_plain_digits_but_learnable(digits):
    cluttered = _knn_accuracy(digits.x_train, digits.y_train, digits.x_test, digits.y_test)
    plain_images = load_digits().images
    plain_train = plain_images[digits.source_index_train]
    plain_test = plain_images[digits.source_index_test]
    plain = _knn_accuracy(plain_train, digits.y_train, plain_test, digits.y_test)
    assert plain > 0.9
    assert 0.15 < cluttered < 0.6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": 8},
        {"image_size": 32.0},
        {"renders_per_digit": 0},
        {"test_fraction": 0.0},
        {"test_fraction": 1.0},
        {"seed": -1},
        {"seed": 1.5},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load_cluttered_digits(**kwargs)


def test_docstring_examples():
    assert doctest.testmod(digits_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
