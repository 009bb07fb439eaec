"""encoder_dependence on hand-computable encoder-decoders."""

import math

import numpy as np
import pytest

from keras_ssl.evaluation.encoder_dependence import encoder_dependence

VOCABULARY = 4


class CopyFirstEncoderToken:
    """Puts probability `p` on the encoder's first token at every target
    position, the rest spread evenly: it reads the encoder and nothing else."""

    def __init__(self, p=0.7):
        self.p = p

    def __call__(self, x, training=False):
        first = np.asarray(x["encoder_token_ids"])[:, 0]
        length = np.asarray(x["decoder_token_ids"]).shape[1]
        probs = np.full((len(first), length, VOCABULARY),
                        (1 - self.p) / (VOCABULARY - 1), "float32")
        probs[np.arange(len(first)), :, first] = self.p
        return np.log(probs)


class IgnoresEncoder:
    def __call__(self, x, training=False):
        length = np.asarray(x["decoder_token_ids"]).shape[1]
        return np.zeros((len(x["encoder_token_ids"]), length, VOCABULARY), "float32")


def batch(first_tokens, weights):
    n, length = len(first_tokens), np.asarray(weights).shape[1]
    encoder = np.zeros((n, 3), "int32")
    encoder[:, 0] = first_tokens
    x = {
        "encoder_token_ids": encoder,
        "encoder_padding_mask": np.ones((n, 3), "int32"),
        "decoder_token_ids": np.zeros((n, length), "int32"),
        "decoder_padding_mask": np.asarray(weights, "int32"),
    }
    targets = np.repeat(np.asarray(first_tokens)[:, None], length, axis=1)
    return x, targets, np.asarray(weights, "float32")


def test_a_decoder_that_only_reads_the_encoder():
    # Targets are each example's first encoder token; rolled by one, every
    # example gets a different first token, so p falls to (1 - p) / 3.
    data = [batch([0, 1, 2], [[1, 1], [1, 0], [1, 1]]), batch([3, 1], [[1, 1], [1, 1]])]
    scores = encoder_dependence(CopyFirstEncoderToken(0.7), data)
    assert scores["loss"] == pytest.approx(-math.log(0.7), rel=1e-5)
    assert scores["shuffled_encoder_loss"] == pytest.approx(-math.log(0.1), rel=1e-5)
    assert scores["gain"] == pytest.approx(math.log(7.0), rel=1e-5)


def test_weights_count_per_token_and_single_example_batches_are_skipped():
    # Batch 1: first tokens 0, 0 (rolled: the same), 2 target tokens;
    # batch 2: 1, 2 (swapped), 4 tokens. Own loss -log 0.7 on all 6; rolled:
    # -log 0.7 on 2 tokens and -log 0.1 on 4.
    data = [batch([0, 0], [[1, 0], [0, 1]]), batch([1, 2], [[1, 1], [1, 1]]),
            batch([3], [[1, 1]])]
    scores = encoder_dependence(CopyFirstEncoderToken(0.7), data)
    expected = (2 * -math.log(0.7) + 4 * -math.log(0.1)) / 6
    assert scores["shuffled_encoder_loss"] == pytest.approx(expected, rel=1e-5)


def test_a_decoder_that_ignores_the_encoder_gains_nothing():
    scores = encoder_dependence(IgnoresEncoder(), [batch([0, 1, 2], [[1, 1]] * 3)])
    assert scores["loss"] == pytest.approx(math.log(VOCABULARY), rel=1e-5)
    assert scores["gain"] == pytest.approx(0.0, abs=1e-6)


def test_tf_data_and_errors():
    tf = pytest.importorskip("tensorflow")
    x, y, w = batch([0, 1, 2, 3], [[1, 1]] * 4)
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(2)
    assert encoder_dependence(CopyFirstEncoderToken(), dataset)["gain"] > 1.0
    with pytest.raises(ValueError, match="two or more"):
        encoder_dependence(CopyFirstEncoderToken(), [batch([1], [[1, 1]])])
    with pytest.raises(ValueError, match="sample_weight"):
        encoder_dependence(CopyFirstEncoderToken(), [({"token_ids": y}, y)])
