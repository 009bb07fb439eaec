"""Barlow Twins' objective: the cross-correlation of two views' embeddings
pushed towards the identity matrix.

The embeddings are standardised over the batch dimension first, so the loss
needs the *global* batch: under `tf.distribute` the method gathers the
replicas' embeddings before calling it (the paper's code all-reduces the
cross-correlation matrix). Computed in float32 whatever the dtype policy.
"""

from keras import ops


def standardize_over_batch(z, epsilon=1e-5):
    """`(z − mean) / sqrt(var + ε)` per dimension over the batch (axis 0).

    The non-affine batch norm of the paper's code (`nn.BatchNorm1d(affine=
    False)` in training mode: biased variance).
    """
    z = ops.cast(z, "float32")
    mean = ops.mean(z, axis=0, keepdims=True)
    variance = ops.mean(ops.square(z - mean), axis=0, keepdims=True)
    return (z - mean) * ops.rsqrt(variance + epsilon)


def cross_correlation(z1, z2):
    """The `(D, D)` cross-correlation matrix C of eq. 2: the batch-standardised
    embeddings' products averaged over the batch; entries lie in [−1, 1]."""
    a, b = standardize_over_batch(z1), standardize_over_batch(z2)
    n = ops.cast(ops.shape(a)[0], "float32")
    return ops.matmul(ops.transpose(a), b) / n


def barlow_twins_loss(z1, z2, lambda_offdiag=5e-3):
    """`L_BT = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²`.

    "where λ is a positive constant trading off the importance of the first
    and second terms of the loss, and where C is the cross-correlation
    matrix computed between the outputs of the two identical networks along
    the batch dimension [...] The invariance term of the objective, by
    trying to equate the diagonal elements of the cross-correlation matrix
    to 1, makes the embedding invariant to the distortions applied. The
    redundancy reduction term, by trying to equate the off-diagonal elements
    of the cross-correlation matrix to 0, decorrelates the different vector
    components of the embedding." (Zbontar et al., 2021, eqs. 1-2.)

    Args:
        z1, z2: embeddings of the two views of the same images, `(N, D)`,
            same order; N ≥ 2 (the whole batch: gather replicas first).
        lambda_offdiag: λ (paper: 5e-3; its code: 0.0051).

    Returns:
        A float32 scalar ≥ 0; 0 when C is the identity.

    Example:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> float(barlow_twins_loss(z, z)) < float(barlow_twins_loss(z, z[::-1]))
    True
    """
    c = cross_correlation(z1, z2)
    diagonal = ops.diagonal(c)
    on_diagonal = ops.sum(ops.square(1.0 - diagonal))
    off_diagonal = ops.sum(ops.square(c)) - ops.sum(ops.square(diagonal))
    return on_diagonal + lambda_offdiag * off_diagonal
