"""The captioned-digits corpus: captions that describe their images."""

import doctest
import re

import numpy as np
import pytest

import keras_ssl.datasets.captioned_digits as module
from keras_ssl.datasets import load_captioned_digits, load_cluttered_digits


@pytest.fixture(scope="module")
def corpus():
    return load_captioned_digits()


def test_shapes_types_and_determinism(corpus):
    assert corpus.x_train.shape == (5384, 32, 32, 3)
    assert corpus.x_test.shape == (451, 32, 32, 3)
    assert corpus.x_train.dtype == np.float32
    assert 0.0 <= corpus.x_train.min() and corpus.x_train.max() <= 1.0
    assert len(corpus.captions_train) == len(corpus.x_train)
    assert not corpus.x_train.flags.writeable
    again = module._build(32, 4, 0.25, 0)
    assert again is corpus  # cached
    fresh = load_captioned_digits(image_size=16, renders_per_digit=1)
    assert fresh.x_train.shape == (1346, 16, 16, 3)


def test_no_test_source_digit_in_training():
    # The same stratified split as the cluttered digits: same test labels.
    cluttered = load_cluttered_digits()
    corpus = load_captioned_digits()
    np.testing.assert_array_equal(corpus.y_test, cluttered.y_test)


def test_captions_name_the_class_colour_size_and_position(corpus):
    words = {name: i for i, name in enumerate(corpus.class_names)}
    mentioned = 0
    for i, caption in enumerate(corpus.captions_test):
        tokens = re.findall(r"[a-z]+|\d", caption)
        digits = [words[t] if t in words else int(t) for t in tokens
                  if t in words or t.isdigit()]
        assert digits == [corpus.y_test[i]], caption
        colours = [t for t in tokens if t in corpus.colour_names]
        assert colours in ([], [corpus.colour_names[corpus.colour_test[i]]]), caption
        mentioned += bool(colours)
        size_words = module._SIZE_WORDS[corpus.size_names[corpus.size_test[i]]]
        other = [w for s in module._SIZE_WORDS.values() for w in s if s != size_words]
        assert not set(other) & set(tokens), caption
    assert mentioned / len(corpus.captions_test) > 0.85


def test_many_phrasings(corpus):
    names = set(corpus.class_names) | set(corpus.colour_names)
    skeletons = {
        " ".join("X" if w in names or w.isdigit() else w for w in re.findall(r"[a-z]+|\d", c))
        for c in corpus.captions_train
    }
    assert len(skeletons) >= 50


def test_colour_and_position_are_visible(corpus):
    """The digit's pixels (those far from the image's median colour) have
    its named colour, and their centre of mass lies in its named place."""
    palette = np.array(list(module.COLOURS.values()), "float32")
    colour_hits = position_hits = 0
    small = corpus.size_test == 0
    for i in range(len(corpus.x_test)):
        image = corpus.x_test[i]
        target = palette[corpus.colour_test[i]]
        distance = np.linalg.norm(image - target, axis=-1)
        digit = distance < 0.25
        mean = image[digit].mean(axis=0) if digit.any() else image.mean((0, 1))
        colour_hits += np.argmin(np.linalg.norm(palette - mean, axis=1)) == corpus.colour_test[i]
        if small[i] and digit.sum() > 5:
            ys, xs = np.nonzero(digit)
            cx, cy = xs.mean() / 32, ys.mean() / 32
            place = corpus.position_names[corpus.position_test[i]]
            ok = {"top left": cx < 0.5 and cy < 0.5, "top right": cx > 0.5 and cy < 0.5,
                  "bottom left": cx < 0.5 and cy > 0.5, "bottom right": cx > 0.5 and cy > 0.5,
                  "centre": 0.3 < cx < 0.7 and 0.3 < cy < 0.7}[place]
            position_hits += ok
    assert colour_hits / len(corpus.x_test) > 0.95
    assert position_hits / small.sum() > 0.9


def test_large_digits_are_centred(corpus):
    large = corpus.size_test == 1
    assert (corpus.position_test[large] == corpus.position_names.index("centre")).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        load_captioned_digits(image_size=8)
    with pytest.raises(ValueError, match="test_fraction"):
        load_captioned_digits(test_fraction=1.0)


def test_docstring_examples():
    assert doctest.testmod(module).failed == 0
