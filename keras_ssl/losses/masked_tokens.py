"""Masked-token prediction: cross-entropy and accuracy on masked positions only.

BEiT's objective ("maximize the log-likelihood of the correct visual tokens
given the corrupted image", over the masked positions) and, over word
pieces, BERT's masked-LM loss: the same two functions serve both.
"""

from keras import ops


def _check(logits, targets, mask, name):
    l_shape, t_shape, m_shape = (
        tuple(logits.shape), tuple(targets.shape), tuple(mask.shape)
    )
    if len(l_shape) != 3 or t_shape != l_shape[:2] or m_shape != l_shape[:2]:
        raise ValueError(
            f"{name} expects logits (batch, positions, vocabulary) and targets "
            "and a mask of shape (batch, positions); got "
            f"{l_shape}, {t_shape} and {m_shape}."
        )


def masked_token_loss(logits, targets, mask):
    """Mean cross-entropy over the masked positions only.

    `Σ mask · (logsumexp(logits) − logits[target]) / Σ mask`, in float32,
    with the denominator at least 1 (a batch without masked positions has
    loss 0).

    Args:
        logits: `(B, N, V)` unnormalised scores.
        targets: `(B, N)` integer ids in `[0, V)`.
        mask: `(B, N)`, 1 where a position was masked and counts.

    Returns:
        A scalar.

    Example:

    >>> import numpy as np
    >>> logits = np.log(np.array([[[0.5, 0.5], [0.9, 0.1]]], "float32"))
    >>> round(float(masked_token_loss(logits, np.array([[0, 1]]),
    ...                               np.array([[0.0, 1.0]]))), 4)  # -log 0.1
    2.3026
    """
    _check(logits, targets, mask, "masked_token_loss")
    logits = ops.cast(logits, "float32")
    mask = ops.cast(mask, "float32")
    targets = ops.cast(targets, "int32")
    true_logit = ops.squeeze(
        ops.take_along_axis(logits, targets[:, :, None], axis=-1), axis=-1
    )
    cross_entropy = ops.logsumexp(logits, axis=-1) - true_logit
    return ops.sum(cross_entropy * mask) / ops.maximum(ops.sum(mask), 1.0)


def masked_token_accuracy(logits, targets, mask):
    """The fraction of masked positions whose top-scoring id is the target."""
    _check(logits, targets, mask, "masked_token_accuracy")
    mask = ops.cast(mask, "float32")
    hits = ops.cast(
        ops.equal(
            ops.cast(ops.argmax(logits, axis=-1), "int32"),
            ops.cast(targets, "int32"),
        ),
        "float32",
    )
    return ops.sum(hits * mask) / ops.maximum(ops.sum(mask), 1.0)
