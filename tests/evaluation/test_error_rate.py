"""Edit distance, character and word error rates."""

import random

import pytest

from keras_ssl.evaluation import character_error_rate, edit_distance, word_error_rate


def _reference_distance(a, b):
    """The textbook O(len(a) * len(b)) dynamic programme."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[:], i
        for j, y in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
    return row[-1]


@pytest.mark.parametrize("a, b, distance", [
    ("kitten", "sitting", 3),
    ("sitting", "kitten", 3),
    ("flaw", "lawn", 2),
    ("", "abc", 3),
    ("abc", "", 3),
    ("", "", 0),
    ("same", "same", 0),
    ("abc", "xyz", 3),
    (["the", "cat", "sat"], ["the", "sat"], 1),
    ([1, 2, 3], [1, 2, 3, 4, 5], 2),
])
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance


def test_edit_distance_matches_the_textbook_programme():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 12)))
        assert edit_distance(a, b) == _reference_distance(a, b)


def test_character_error_rate():
    assert character_error_rate(["kitten"], ["sitting"]) == pytest.approx(3 / 6)
    # Totals over the corpus, not a mean of per-utterance rates.
    assert character_error_rate(["abc", "defgh"], ["abc", "dxfgh"]) == pytest.approx(1 / 8)
    assert character_error_rate(["hello world"], ["hello world"]) == 0.0
    assert character_error_rate(["hello", "world"], ["", ""]) == 1.0  # all deleted
    assert character_error_rate("ab", "abcd") == 1.0  # insertions count
    assert character_error_rate(["a b"], ["ab"]) == pytest.approx(1 / 3)  # spaces count


def test_word_error_rate():
    assert word_error_rate(["the cat sat on the mat"], ["the cat sat on mat"]) == (
        pytest.approx(1 / 6))
    assert word_error_rate(["a b c", "d e"], ["a x c", "d e f"]) == pytest.approx(2 / 5)
    assert word_error_rate(["one two"], [""]) == 1.0
    assert word_error_rate(["  one   two "], ["one two"]) == 0.0  # whitespace-split
    assert word_error_rate("one two", "one too") == 0.5


def test_error_rate_errors():
    with pytest.raises(ValueError, match="2 references for 1 hypotheses"):
        character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="2 references for 3 hypotheses"):
        word_error_rate(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="references are empty"):
        character_error_rate([""], ["abc"])
    with pytest.raises(ValueError, match=r"hypotheses\[0\] is a list"):
        word_error_rate(["a"], [["a"]])
    with pytest.raises(ValueError, match="both be strings"):
        character_error_rate("abc", ["abc"])
