"""Perplexity and the unigram baseline on hand-computable cases."""

import doctest
import math

import numpy as np
import pytest

import importlib

from keras_ssl.evaluation.perplexity import perplexity, unigram_perplexity

# The module, not the function `keras_ssl.evaluation` re-exports by its name.
perplexity_module = importlib.import_module("keras_ssl.evaluation.perplexity")


class TableModel:
    """A 'model' whose next-token distribution depends on the current token
    only: `logits[b, i] = log table[token_ids[b, i]]`."""

    def __init__(self, table):
        self.log_table = np.log(np.asarray(table, "float32"))

    def __call__(self, batch, training=False):
        return self.log_table[np.asarray(batch["token_ids"])]


TABLE = [[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]


def test_the_docstring_examples_run():
    failures, _ = doctest.testmod(perplexity_module)
    assert failures == 0


def test_a_uniform_model_has_the_vocabulary_size_as_perplexity():
    batch = {"token_ids": np.array([[0, 1, 2, 1]]), "padding_mask": np.ones((1, 4))}
    assert perplexity(TableModel(np.full((3, 3), 1 / 3)), batch) == pytest.approx(3.0)


def test_perplexity_counts_the_text_targets_only():
    # Row 0: 0→1 (0.25), 1→1 (0.8), 1→2 (0.1); row 1: 2→0 (0.2), then padding.
    batch = {
        "token_ids": np.array([[0, 1, 1, 2], [2, 0, 0, 0]]),
        "padding_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]]),
    }
    expected = math.exp(-np.mean(np.log([0.25, 0.8, 0.1, 0.2])))
    value, mean_nll, count = perplexity(TableModel(TABLE), batch, return_nll=True)
    assert count == 4
    assert value == pytest.approx(expected, rel=1e-6)
    assert mean_nll == pytest.approx(math.log(expected), rel=1e-6)
    # Split over two batches (a list of them), the same tokens count.
    halves = [{k: v[:1] for k, v in batch.items()},
              {k: v[1:] for k, v in batch.items()}]
    assert perplexity(TableModel(TABLE), halves) == pytest.approx(expected, rel=1e-6)


def test_perplexity_reads_a_tf_data_pipeline():
    import tensorflow as tf

    rows = {"token_ids": np.array([[0, 1, 1, 2], [2, 0, 0, 0]], "int32"),
            "padding_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]], "int32")}
    dataset = tf.data.Dataset.from_tensor_slices(rows).batch(1)
    expected = math.exp(-np.mean(np.log([0.25, 0.8, 0.1, 0.2])))
    assert perplexity(TableModel(TABLE), dataset) == pytest.approx(expected, rel=1e-6)


def test_perplexity_errors():
    with pytest.raises(ValueError, match="no next-token targets"):
        perplexity(TableModel(TABLE), {"token_ids": np.array([[0, 1]]),
                                       "padding_mask": np.array([[1, 0]])})
    with pytest.raises(ValueError, match="expects batches"):
        perplexity(TableModel(TABLE), [np.array([[0, 1]])])
    with pytest.raises(ValueError, match="length ≥ 2"):
        perplexity(TableModel(TABLE), {"token_ids": np.array([[0]])})


def test_unigram_perplexity_by_hand():
    # Train counts (3, 1, 0) + 1 → p = (4, 2, 1) / 7.
    train, test = [[0, 0, 1], [0]], [[0, 1, 2]]
    expected = math.exp(-np.mean(np.log([4 / 7, 2 / 7, 1 / 7])))
    assert unigram_perplexity(train, test, 3) == pytest.approx(expected)
    # Without smoothing an unseen test token has probability 0.
    assert unigram_perplexity(train, test, 3, smoothing=0.0) == math.inf
    assert unigram_perplexity(train, [0, 1], 3, smoothing=0.0) == pytest.approx(
        math.exp(-np.mean(np.log([3 / 4, 1 / 4])))
    )
    # A uniform training split gives the vocabulary size.
    assert unigram_perplexity(np.arange(5), np.array([4, 1]), 5) == pytest.approx(5)


def test_unigram_perplexity_of_batches_counts_what_perplexity_counts():
    batch = {"token_ids": np.array([[0, 1, 1, 2], [2, 0, 0, 0]]),
             "padding_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]])}
    # Train: the 6 text tokens (0, 1, 1, 2, 2, 0); test: targets 1, 1, 2, 0.
    p = (np.array([2, 2, 2]) + 1) / 9
    expected = math.exp(-np.mean(np.log(p[[1, 1, 2, 0]])))
    assert unigram_perplexity(batch, batch, 3) == pytest.approx(expected)


@pytest.mark.parametrize(
    "train, test, vocabulary_size, kwargs, match",
    [
        ([0, 1], [], 2, {}, "test_token_ids holds no tokens"),
        ([], [0], 2, {}, "train_token_ids holds no tokens"),
        ([0, 5], [0], 2, {}, r"outside \[0, 2\)"),
        ([0, 1], [-1], 2, {}, "outside"),
        ([0, 1], [0], 0, {}, "vocabulary_size"),
        ([0, 1], [0], 2, {"smoothing": -1}, "smoothing"),
        (np.array([0.5]), [0], 2, {}, "integer token ids"),
    ],
)
def test_unigram_perplexity_errors(train, test, vocabulary_size, kwargs, match):
    with pytest.raises(ValueError, match=match):
        unigram_perplexity(train, test, vocabulary_size, **kwargs)
