"""Perplexity of a language model on held-out text, and its unigram baseline.

Perplexity is `exp` of the mean negative log-likelihood per predicted token,
`exp(−Σ log p(u_i | u_<i) / N)`: the number of equally likely tokens the
model is, on average, choosing among. Its baseline here is the smoothed
unigram model of the training split, `p(u) = (count(u) + α) / (N + α V)`,
which knows the token frequencies and nothing of context: a language model
that learned anything from context is below it.

Both count the same tokens when given the same rows: the next-token targets
that are text (token `i + 1` of a row where the padding mask holds for `i`
and `i + 1`), as `keras_ssl.models.CausalLanguageModel` trains on.
"""

import math

import numpy as np
from keras import ops


def _batches(dataset):
    """Batches `{"token_ids", "padding_mask"}` of a tf.data pipeline, an
    iterable of them or one dict of arrays, as NumPy dicts."""
    if isinstance(dataset, dict):
        dataset = [dataset]
    elif hasattr(dataset, "as_numpy_iterator"):
        dataset = dataset.as_numpy_iterator()
    for batch in dataset:
        if isinstance(batch, (tuple, list)) and len(batch) == 1:
            batch = batch[0]
        if not isinstance(batch, dict) or "token_ids" not in batch:
            raise ValueError(
                "perplexity expects batches {'token_ids': (B, L), "
                "'padding_mask': (B, L)} (`keras_ssl.data.causal_lm_dataset`); "
                f"got {type(batch).__name__}"
                + (f" with keys {sorted(batch)}" if isinstance(batch, dict) else "")
                + "."
            )
        token_ids = np.asarray(batch["token_ids"])
        mask = batch.get("padding_mask")
        mask = np.ones_like(token_ids) if mask is None else np.asarray(mask)
        yield {"token_ids": token_ids, "padding_mask": mask.astype("int32")}


def next_token_targets(token_ids, padding_mask):
    """`(targets, weights)` NumPy `(B, L - 1)`: the next-token targets of
    rows of ids and which of them count (both positions text)."""
    token_ids, mask = np.asarray(token_ids), np.asarray(padding_mask, "float64")
    if token_ids.ndim != 2 or token_ids.shape[1] < 2:
        raise ValueError(
            "token_ids must be rows (batch, length ≥ 2) of token ids; got "
            f"shape {token_ids.shape}."
        )
    return token_ids[:, 1:], mask[:, 1:] * mask[:, :-1]


def token_nll(logits, token_ids, padding_mask):
    """`(Σ NLL, N)`: the summed negative log-likelihood (nats, float64) of
    the next-token targets that count, and their number, from logits
    `(B, L, V)` where position `i` scores token `i + 1`."""
    targets, weights = next_token_targets(token_ids, padding_mask)
    logits = ops.cast(logits, "float32")[:, :-1]
    true_logit = ops.squeeze(
        ops.take_along_axis(logits, ops.cast(targets, "int32")[..., None], axis=-1),
        axis=-1,
    )
    nll = ops.convert_to_numpy(ops.logsumexp(logits, axis=-1) - true_logit)
    return float(np.sum(nll.astype("float64") * weights)), float(weights.sum())


def perplexity(model, dataset, return_nll=False):
    """The perplexity of a causal language model on `dataset`.

    Args:
        model: a model whose call (`predict_on_batch` for a Keras model)
            on `{"token_ids", "padding_mask"}` returns next-token logits
            `(B, L, V)`: a
            `keras_ssl.models.CausalLanguageModel`, or keras-hub's
            `GPT2CausalLM` (preprocessor detached, its inputs are the same).
        dataset: batches `{"token_ids", "padding_mask"}`
            (`causal_lm_dataset(test_documents, ..., shuffle=False)`), or
            one such dict of arrays.
        return_nll: also return the mean NLL (nats per token) and the
            token count: `(perplexity, mean_nll, num_tokens)`.

    Returns:
        `exp(mean NLL)` over the non-padding next-token targets.

    Example:

    >>> ppl = perplexity(model, causal_lm_dataset(
    ...     corpus.test_documents, tokenizer, 32, 64, shuffle=False))  # doctest: +SKIP
    """
    total, count = 0.0, 0.0
    for batch in _batches(dataset):
        if hasattr(model, "predict_on_batch"):  # a compiled forward pass
            logits = model.predict_on_batch(batch)
        else:
            logits = model(batch, training=False)
        if isinstance(logits, dict):
            logits = logits["logits"]
        batch_total, batch_count = token_nll(
            logits, batch["token_ids"], batch["padding_mask"]
        )
        total, count = total + batch_total, count + batch_count
    if count == 0:
        raise ValueError(
            "perplexity: the dataset has no next-token targets (empty, or "
            "only padding)."
        )
    mean = total / count
    value = math.exp(mean)
    return (value, mean, int(count)) if return_nll else value


def _flat_ids(token_ids, role, targets):
    """1-D int ids from an array, a list of sequences or causal-LM batches
    (for those: the next-token targets that count when `targets`, else all
    the text tokens)."""
    if isinstance(token_ids, dict) or hasattr(token_ids, "as_numpy_iterator"):
        pieces = []
        for batch in _batches(token_ids):
            if targets:
                ids, weights = next_token_targets(
                    batch["token_ids"], batch["padding_mask"]
                )
                pieces.append(ids[weights > 0])
            else:
                pieces.append(batch["token_ids"][batch["padding_mask"] > 0])
        flat = np.concatenate(pieces) if pieces else np.zeros((0,), "int64")
    else:
        if isinstance(token_ids, np.ndarray):
            flat = token_ids.reshape(-1)
        else:
            flat = np.asarray(
                [t for seq in token_ids for t in np.asarray(seq).reshape(-1)]
            )
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"{role} must be integer token ids; got {flat.dtype}.")
    return flat.astype("int64")


def unigram_perplexity(train_token_ids, test_token_ids, vocabulary_size,
                       smoothing=1.0):
    """The perplexity of the smoothed unigram model of the training tokens on
    the test tokens: the baseline a language model must beat.

    `p(u) = (count_train(u) + smoothing) / (N_train + smoothing · V)`, then
    `exp(−mean log p(u))` over the test tokens.

    Args:
        train_token_ids, test_token_ids: token ids: an array (any shape), a
            list of sequences, or `causal_lm_dataset` batches (then the
            training side counts every text token and the test side the
            next-token targets `perplexity` scores).
        vocabulary_size: `V`.
        smoothing: `α` (1: add-one, Laplace). With 0, a test token never seen
            in training has probability 0 and the perplexity is infinite.

    Example:

    >>> round(unigram_perplexity([0, 0, 1], [0, 1], 2), 4)  # p = 3/5, 2/5
    2.0412
    """
    vocabulary_size = int(vocabulary_size)
    if vocabulary_size < 1:
        raise ValueError(f"vocabulary_size must be ≥ 1, got {vocabulary_size}.")
    if not smoothing >= 0:
        raise ValueError(f"smoothing must be ≥ 0, got {smoothing}.")
    train = _flat_ids(train_token_ids, "train_token_ids", targets=False)
    test = _flat_ids(test_token_ids, "test_token_ids", targets=True)
    for role, ids in (("train_token_ids", train), ("test_token_ids", test)):
        if ids.size == 0:
            raise ValueError(f"unigram_perplexity: {role} holds no tokens.")
        if ids.min() < 0 or ids.max() >= vocabulary_size:
            raise ValueError(
                f"unigram_perplexity: {role} holds ids outside [0, "
                f"{vocabulary_size}): {ids.min()}..{ids.max()}."
            )
    counts = np.bincount(train, minlength=vocabulary_size).astype("float64")
    probabilities = (counts + smoothing) / (counts.sum() + smoothing * vocabulary_size)
    with np.errstate(divide="ignore"):
        mean_nll = -np.mean(np.log(probabilities[test]))
    return float(np.exp(mean_nll))
