"""MoCo's InfoNCE objectives: against a queue of keys (v1/v2), in-batch (v3).

Both are a (K+1)-way or N-way softmax classification of each query's
positive key among negatives, on L2-normalised vectors, computed in float32
whatever the dtype policy. Keys are constants for the gradient
(`ops.stop_gradient`): in MoCo only the query encoder learns by gradient.
"""

from keras import ops

from keras_ssl.losses.contrastive import l2_normalize


def _check_temperature(temperature):
    if not temperature > 0:
        raise ValueError(f"`temperature` must be positive, got {temperature}.")


def _unit(x):
    return l2_normalize(ops.cast(x, "float32"))


def infonce_with_queue(q, k, queue, temperature=0.2):
    """InfoNCE of MoCo v1/v2: each query against its key and a queue of keys.

    "Contrastive learning [...] can be thought of as training an encoder for
    a dictionary look-up task. Consider an encoded query q and a set of
    encoded samples {k0, k1, k2, ...} that are the keys of a dictionary.
    Assume that there is a single key (denoted as k+) in the dictionary that
    q matches. [...] L_q = −log exp(q·k+/τ) / Σ_{i=0}^{K} exp(q·k_i/τ)"
    (He et al., 2020, eq. 1). The paper's Algorithm 1:

    ```
    l_pos = bmm(q.view(N,1,C), k.view(N,C,1))    # positive logits: Nx1
    l_neg = mm(q.view(N,C), queue.view(C,K))     # negative logits: NxK
    logits = cat([l_pos, l_neg], dim=1)          # logits: Nx(1+K)
    labels = zeros(N)                            # positives are the 0-th
    loss = CrossEntropyLoss(logits/t, labels)
    ```

    Args:
        q: queries, shape `(N, D)`.
        k: their positive keys, shape `(N, D)`, same order; no gradient
            flows into them.
        queue: the K negative keys, shape `(K, D)`; rows are normalised here
            too (a no-op for MoCo's queue, whose rows are unit vectors), and
            no gradient flows into them.
        temperature: τ (MoCo v2: 0.2; v1: 0.07).

    Returns:
        The mean loss over the N queries, a float32 scalar; about log(K + 1)
        when the positive is no closer than the negatives.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> q = rng.normal(size=(4, 8)).astype("float32")
    >>> queue = rng.normal(size=(16, 8)).astype("float32")
    >>> float(infonce_with_queue(q, q, queue)) < float(
    ...     infonce_with_queue(q, q[::-1], queue))
    True
    """
    _check_temperature(temperature)
    q = _unit(q)
    k = ops.stop_gradient(_unit(k))
    # A normalised copy of the queue: under PyTorch the caller may then
    # update the queue variable in place before the backward pass.
    queue = ops.stop_gradient(_unit(queue))
    positives = ops.sum(q * k, axis=-1, keepdims=True) / temperature
    negatives = ops.matmul(q, ops.transpose(queue)) / temperature
    logits = ops.concatenate([positives, negatives], axis=-1)
    return ops.mean(ops.logsumexp(logits, axis=-1) - positives[:, 0])


def infonce_in_batch(q, k, temperature=0.2, all_k=None, offset=0):
    """InfoNCE with in-batch negatives: query i's positive is key i, and the
    other N − 1 keys of the batch are its negatives (MoCo v3's `ctr`).

    "We use the keys that naturally co-exist in the same batch. We abandon
    the memory queue [...]" (Chen, Xie & He, 2021). Their Algorithm 1:

    ```
    def ctr(q, k):
        logits = mm(q, k.t())  # [N, N] pairs
        labels = range(N)      # positives are in diagonal
        loss = CrossEntropyLoss(logits/tau, labels)
        return 2 * tau * loss
    ```

    This function is the cross-entropy without the `2 * tau` factor, which
    `MoCoV3` applies (it keeps the gradient's scale independent of τ).

    Args:
        q: queries, shape `(N, D)`.
        k: keys, shape `(N, D)`, same order; no gradient flows into them.
        temperature: τ (MoCo v3's code: 1.0 for ResNet-50, 0.2 for ViT).
        all_k: the keys of the *global* batch `(M, D)` when the batch is split
            over replicas (gathered in replica order; MoCo v3's
            `concat_all_gather`), or None (then `k`).
        offset: the global index of this replica's first key in `all_k`.

    Returns:
        The mean loss over the N queries, a float32 scalar; about log(N)
        when the positive is no closer than the negatives.
    """
    _check_temperature(temperature)
    q = _unit(q)
    k = ops.stop_gradient(_unit(k))
    all_k = k if all_k is None else ops.stop_gradient(_unit(all_k))
    del offset  # the positive is read from the local keys directly
    logits = ops.matmul(q, ops.transpose(all_k)) / temperature
    positives = ops.sum(q * k, axis=-1) / temperature
    return ops.mean(ops.logsumexp(logits, axis=-1) - positives)
