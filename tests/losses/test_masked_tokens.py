"""Masked-token cross-entropy and accuracy against a NumPy loop reference."""

import keras
import numpy as np
import pytest

from keras_ssl.losses import masked_token_accuracy, masked_token_loss


def reference(logits, targets, mask):
    """Per position in float64: −log softmax(logits)[target], masked mean."""
    logits = np.asarray(logits, np.float64)
    total, hits, count = 0.0, 0, 0
    for b in range(logits.shape[0]):
        for n in range(logits.shape[1]):
            if mask[b, n] == 0:
                continue
            row = logits[b, n]
            log_z = np.log(np.sum(np.exp(row - row.max()))) + row.max()
            total += log_z - row[targets[b, n]]
            hits += int(np.argmax(row) == targets[b, n])
            count += 1
    return total / count, hits / count


def _fixed(batch, positions, vocab, seed):
    rng = np.random.default_rng(seed)
    logits = (3 * rng.normal(size=(batch, positions, vocab))).astype("float32")
    targets = rng.integers(0, vocab, (batch, positions)).astype("int32")
    mask = (rng.random((batch, positions)) < 0.4).astype("float32")
    mask[:, 0] = 1.0  # at least one masked position per row
    return logits, targets, mask


@pytest.mark.parametrize("batch,positions,vocab,seed",
                         [(2, 5, 3, 0), (4, 16, 32, 1), (3, 64, 512, 2)])
def test_matches_the_reference(batch, positions, vocab, seed):
    logits, targets, mask = _fixed(batch, positions, vocab, seed)
    loss, accuracy = reference(logits, targets, mask)
    got = keras.ops.convert_to_numpy(masked_token_loss(logits, targets, mask))
    np.testing.assert_allclose(got, loss, rtol=1e-5)
    got = keras.ops.convert_to_numpy(masked_token_accuracy(logits, targets, mask))
    np.testing.assert_allclose(got, accuracy, rtol=1e-6)


def test_unmasked_positions_do_not_count():
    logits, targets, mask = _fixed(2, 8, 4, 3)
    loss = masked_token_loss(logits, targets, mask)
    changed = np.where(mask[..., None] == 1, logits, -50.0).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(masked_token_loss(changed, targets, mask)),
        keras.ops.convert_to_numpy(loss), rtol=1e-6,
    )
    # No masked position at all: loss 0, not NaN.
    empty = np.zeros_like(mask)
    assert float(keras.ops.convert_to_numpy(
        masked_token_loss(logits, targets, empty))) == 0.0


def test_shape_errors():
    logits, targets, mask = _fixed(2, 8, 4, 0)
    with pytest.raises(ValueError, match="logits \\(batch, positions, vocabulary\\)"):
        masked_token_loss(logits[0], targets, mask)
    with pytest.raises(ValueError, match="shape \\(batch, positions\\)"):
        masked_token_loss(logits, targets[:, :4], mask)
    with pytest.raises(ValueError, match="shape \\(batch, positions\\)"):
        masked_token_accuracy(logits, targets, mask[:1])
