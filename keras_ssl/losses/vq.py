"""Vector quantisation (VQ-VAE) terms: commitment loss and codebook statistics.

Pure `keras.ops` functions over the encoder outputs `z_e`, their quantised
values `z_q` and the code ids, for `keras_ssl.layers.VectorQuantizer` and
`keras_ssl.models.VQTokenizer`.
"""

from keras import ops


def vq_commitment_loss(z_e, z_q):
    """The commitment term of VQ-VAE: `mean (z_e − sg(z_q))²`.

    van den Oord et al. (2017), eq. 3: "we add a commitment loss [...] to
    make sure the encoder commits to an embedding and its output does not
    grow", `β ||z_e(x) − sg[e]||²`. As in Sonnet's `VectorQuantizerEMA` (the
    reference implementation), the squared error is averaged over every
    element, i.e. over vectors *and* dimensions (`||·||² / code_dim` per
    vector), so that β = 0.25 has the paper's weight next to a pixel MSE.
    Only `z_e` receives gradient; with EMA codebook updates there is no
    codebook term.

    Args:
        z_e: encoder outputs `(..., code_dim)`.
        z_q: their nearest codes, same shape (a straight-through output
            works too: its value is `z_q`).

    Returns:
        A float32 scalar.
    """
    z_e = ops.cast(z_e, "float32")
    z_q = ops.stop_gradient(ops.cast(z_q, "float32"))
    if tuple(z_e.shape) != tuple(z_q.shape):
        raise ValueError(
            "vq_commitment_loss expects z_e and z_q of the same shape; got "
            f"{tuple(z_e.shape)} and {tuple(z_q.shape)}."
        )
    return ops.mean(ops.square(z_e - z_q))


def code_counts(codes, num_codes):
    """How many times each of the `num_codes` codes occurs in `codes`.

    Returns:
        float32 `(num_codes,)`.
    """
    codes = ops.reshape(ops.cast(codes, "int32"), (-1,))
    return ops.sum(ops.one_hot(codes, int(num_codes), dtype="float32"), axis=0)


def codebook_perplexity(codes, num_codes):
    """`exp(H(p))` of the batch's code histogram p (VQ-VAE's "perplexity").

    1 when every vector takes the same code; `num_codes` when all codes are
    used equally often. Empty bins count 0 (`0 · log 0 = 0`).

    Args:
        codes: integer code ids, any shape.
        num_codes: the codebook size V.

    Returns:
        A float32 scalar in `[1, num_codes]`.
    """
    counts = code_counts(codes, num_codes)
    p = counts / ops.maximum(ops.sum(counts), 1.0)
    log_p = ops.log(ops.maximum(p, 1e-30))
    entropy = -ops.sum(ops.where(p > 0, p * log_p, 0.0))
    return ops.exp(entropy)


def codebook_usage(codes, num_codes):
    """The fraction of the `num_codes` codes that occur at least once.

    Returns:
        A float32 scalar in `[0, 1]`.
    """
    counts = code_counts(codes, num_codes)
    return ops.mean(ops.cast(counts > 0, "float32"))
