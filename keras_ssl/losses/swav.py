"""SwAV's objective: swapped prediction of Sinkhorn-Knopp cluster codes.

Pure `keras.ops` functions, the same on every backend, in float32 whatever
the dtype policy:

- `sinkhorn_knopp`: the codes Q of a batch, an equal-partition soft
  assignment of the samples to the prototypes (no gradient);
- `swapped_prediction_loss`: each global crop's codes predicted from every
  other crop's prototype scores;
- `code_entropy` and `prototype_usage`: two collapse monitors.

"We compute a code from an augmented version of the image and predict this
code from other augmented versions of the same image. [...] we enforce that
all the prototypes are selected the same amount of times in the batch"
(Caron et al., 2020, section 3.1).
"""

import numbers

from keras import ops

# Sums below this are treated as this (a prototype that no sample reaches
# keeps a zero row instead of producing NaNs).
_TINY = 1e-30


def _check_positive(value, name):
    if isinstance(value, numbers.Number) and not value > 0:
        raise ValueError(f"`{name}` must be positive, got {value}.")


def sinkhorn_knopp(scores, epsilon=0.05, iterations=3):
    """The SwAV codes Q of a batch: Sinkhorn-Knopp's equal-partition assignment.

    "We constrain Q to belong to the transportation polytope
    Q = {Q ∈ R_+^{K×B} | Q 1_B = (1/K) 1_K, Qᵀ 1_K = (1/B) 1_B} [...]
    the soft codes Q* are the solution of max_Q Tr(Qᵀ Cᵀ Z) + ε H(Q) and
    take the form of a normalized exponential matrix
    Q* = Diag(u) exp(Cᵀ Z / ε) Diag(v), where u and v are renormalization
    vectors [...] computed using a small number of matrix multiplications
    using the iterative Sinkhorn-Knopp algorithm" (Caron et al., 2020,
    eq. 3 and 4). As in the official `distributed_sinkhorn`:

    ```
    Q = exp(scores / eps).T  # K-by-B
    Q /= sum(Q)
    for it in range(iterations):
        Q /= sum(Q, dim=1, keepdim=True); Q /= K  # prototypes: 1/K each
        Q /= sum(Q, dim=0, keepdim=True); Q /= B  # samples: 1/B each
    Q *= B  # the columns must sum to 1 so that Q is an assignment
    return Q.T
    ```

    Each prototype's maximum score over the samples is subtracted before
    the exponential (lightly and solo-learn subtract the overall maximum):
    a factor of each prototype's row of Q, which the first prototype
    normalisation removes exactly, so Q is unchanged, but `exp` cannot
    overflow and no prototype's row underflows to zeros.

    Args:
        scores: prototype scores `(B, K)` (cosines z·c of B samples with K
            prototypes), the whole set to partition (the global batch, and
            the queue when one is used).
        epsilon: ε, the entropic regularisation (paper: 0.05; lower is
            sharper).
        iterations: Sinkhorn-Knopp iterations, >= 1 (paper: 3).

    Returns:
        The codes `(B, K)`, float32, without gradient: each row sums to 1
        and, after the last iteration's prototype constraint, each
        prototype's column sums to about B/K.

    Example:

    >>> import numpy as np
    >>> scores = np.random.default_rng(0).uniform(-1, 1, (8, 4)).astype("float32")
    >>> q = np.asarray(sinkhorn_knopp(scores))
    >>> bool(np.allclose(q.sum(axis=1), 1.0, atol=1e-5)), q.shape
    (True, (8, 4))
    """
    _check_positive(epsilon, "epsilon")
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"`iterations` must be an int >= 1, got {iterations}.")
    scores = ops.stop_gradient(ops.cast(scores, "float32"))
    batch = ops.cast(ops.shape(scores)[0], "float32")
    num_prototypes = ops.cast(ops.shape(scores)[1], "float32")
    # Q = exp(scores / ε)ᵀ, K-by-B, scaled to sum to 1.
    q = ops.transpose(
        ops.exp((scores - ops.max(scores, axis=0, keepdims=True)) / epsilon)
    )
    q = q / ops.sum(q)
    for _ in range(int(iterations)):
        # Each prototype (row) gets a total weight of 1/K ...
        q = q / (ops.maximum(ops.sum(q, axis=1, keepdims=True), _TINY)
                 * num_prototypes)
        # ... and each sample (column) a total weight of 1/B.
        q = q / (ops.maximum(ops.sum(q, axis=0, keepdims=True), _TINY) * batch)
    return ops.stop_gradient(ops.transpose(q * batch))


def _as_float32_list(tensors):
    if isinstance(tensors, (tuple, list)):
        return [ops.cast(x, "float32") for x in tensors]
    return [ops.cast(tensors, "float32")]


def swapped_prediction_loss(scores_per_crop, codes_per_global_crop,
                            temperature=0.1):
    """SwAV's swapped prediction: each crop predicts the other crops' codes.

    "L(z_t, z_s) = ℓ(z_t, q_s) + ℓ(z_s, q_t) [...] where the function
    ℓ(z, q) measures the fit between features z and a code q [...] the
    cross entropy loss between the code and the probability obtained by
    taking a softmax of the dot products of z_i and all prototypes in C:
    ℓ(z_t, q_s) = −Σ_k q_s^(k) log p_t^(k), where p_t^(k) =
    exp(z_tᵀ c_k / τ) / Σ_k' exp(z_tᵀ c_k' / τ)" (Caron et al., 2020,
    eq. 1 and 2). With multi-crop, "we only compute codes using the full
    resolution crops" and each is predicted from every other crop. As in
    the official code, each (code, crop) pair's cross-entropy is averaged
    over the batch, summed over the V − 1 other crops and divided by
    V − 1 (`loss / (np.sum(nmb_crops) - 1)`), then averaged over the crops
    that have codes (`loss /= len(crops_for_assign)`).

    Args:
        scores_per_crop: list of V prototype scores `(B, K)` (z·c, before
            the temperature), the crops with codes first, in the order of
            `codes_per_global_crop`, then the others (the local crops).
        codes_per_global_crop: list of G ≤ V codes `(B, K)` (from
            `sinkhorn_knopp`); no gradient flows into them.
        temperature: τ, the softmax temperature of the predictions (paper:
            0.1).

    Returns:
        The loss, a float32 scalar.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scores = [rng.uniform(-1, 1, (4, 8)).astype("float32") for _ in range(3)]
    >>> codes = [sinkhorn_knopp(s) for s in scores[:2]]
    >>> float(swapped_prediction_loss(scores, codes, 0.1)) > 0
    True
    """
    _check_positive(temperature, "temperature")
    scores = _as_float32_list(scores_per_crop)
    codes = [ops.stop_gradient(q) for q in _as_float32_list(codes_per_global_crop)]
    if len(scores) < 2 or len(codes) > len(scores) or not codes:
        raise ValueError(
            "swapped_prediction_loss needs at least 2 crops and between 1 "
            f"and as many codes as crops; got {len(scores)} crops and "
            f"{len(codes)} codes."
        )
    log_predictions = [
        ops.log_softmax(s / ops.cast(temperature, "float32"), axis=-1)
        for s in scores
    ]
    total = 0.0
    for i, q in enumerate(codes):
        subloss = 0.0
        for v, log_p in enumerate(log_predictions):
            if v == i:
                continue  # a crop does not predict its own code
            subloss = subloss - ops.mean(ops.sum(q * log_p, axis=-1))
        total = total + subloss / (len(scores) - 1)
    return total / len(codes)


def code_entropy(codes):
    """Mean entropy (nats) of the codes' rows: log K when every sample is
    spread evenly over the prototypes (e.g. all embeddings equal), lower as
    the assignments become confident.

    Args:
        codes: a `(B, K)` tensor of codes (rows sum to 1) or a list of them.
    """
    codes = _as_float32_list(codes)
    entropies = [
        ops.mean(-ops.sum(q * ops.log(ops.maximum(q, _TINY)), axis=-1))
        for q in codes
    ]
    return ops.stop_gradient(sum(entropies[1:], entropies[0]) / len(entropies))


def prototype_usage(scores, temperature=0.1):
    """`exp(H(p̄)) / K`, where p̄ is the batch mean of the predictions
    `softmax(scores / τ)`: the effective fraction of the prototypes that the
    batch is predicted to use, in [1/K, 1]; it falls towards 1/K when every
    image is predicted onto the same prototype. With sharp predictions it is
    at most min(B, K)/K.

    Args:
        scores: prototype scores `(B, K)` or a list of them (pooled).
        temperature: τ of the predictions.
    """
    _check_positive(temperature, "temperature")
    scores = ops.concatenate(_as_float32_list(scores), axis=0)
    mean = ops.mean(ops.softmax(scores / temperature, axis=-1), axis=0)
    entropy = -ops.sum(mean * ops.log(ops.maximum(mean, _TINY)))
    num_prototypes = ops.cast(ops.shape(scores)[-1], "float32")
    return ops.stop_gradient(ops.exp(entropy) / num_prototypes)
