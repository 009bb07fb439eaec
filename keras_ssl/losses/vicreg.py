"""VICReg's objective: invariance, variance and covariance terms.

The variance and covariance terms are statistics of the *global* batch:
under `tf.distribute` the method gathers the replicas' embeddings before
calling `vicreg_loss` (the paper's code does `FullGatherLayer`). Computed in
float32 whatever the dtype policy.
"""

from keras import ops


def invariance_term(z1, z2):
    """`s(Z, Z') = 1/n Σ_i ‖z_i − z'_i‖²₂ / d`: the mean squared error over
    every entry (the paper's code: `F.mse_loss(x, y)`)."""
    z1, z2 = ops.cast(z1, "float32"), ops.cast(z2, "float32")
    return ops.mean(ops.square(z1 - z2))


def variance_term(z, gamma=1.0, epsilon=1e-4):
    """`v(Z) = 1/d Σ_j max(0, γ − S(z^j, ε))`, S = sqrt(Var(z^j) + ε), the
    unbiased variance of dimension j over the batch: a hinge that keeps every
    dimension's standard deviation at γ, which prevents collapse."""
    z = ops.cast(z, "float32")
    n = ops.cast(ops.shape(z)[0], "float32")
    centered = z - ops.mean(z, axis=0, keepdims=True)
    variance = ops.sum(ops.square(centered), axis=0) / (n - 1.0)
    return ops.mean(ops.relu(gamma - ops.sqrt(variance + epsilon)))


def covariance_term(z):
    """`c(Z) = 1/d Σ_{i≠j} [C(Z)]²_ij`, C the unbiased covariance matrix over
    the batch: decorrelates the dimensions."""
    z = ops.cast(z, "float32")
    n = ops.cast(ops.shape(z)[0], "float32")
    d = ops.cast(ops.shape(z)[1], "float32")
    centered = z - ops.mean(z, axis=0, keepdims=True)
    covariance = ops.matmul(ops.transpose(centered), centered) / (n - 1.0)
    off_diagonal = ops.sum(ops.square(covariance)) - ops.sum(
        ops.square(ops.diagonal(covariance))
    )
    return off_diagonal / d


def vicreg_terms(z1, z2, gamma=1.0, epsilon=1e-4):
    """The three unweighted terms `(invariance, variance, covariance)`, the
    variance and covariance summed over both branches."""
    return (
        invariance_term(z1, z2),
        variance_term(z1, gamma, epsilon) + variance_term(z2, gamma, epsilon),
        covariance_term(z1) + covariance_term(z2),
    )


def vicreg_loss(z1, z2, invariance_weight=25.0, variance_weight=25.0,
                covariance_weight=1.0, gamma=1.0, epsilon=1e-4):
    """`ℓ = λ s(Z, Z') + μ [v(Z) + v(Z')] + ν [c(Z) + c(Z')]`.

    "The loss function [...] is a weighted average of the invariance,
    variance and covariance terms [...] where λ, μ and ν are
    hyper-parameters controlling the importance of each term in the loss.
    In our experiments, we set ν = 1 and perform a grid search on the values
    of λ and μ with the base condition λ = μ > 1 [...] λ = μ = 25."
    (Bardes et al., 2022, eq. 6, section 4.)

    Args:
        z1, z2: embeddings of the two views, `(N, D)`, same order; N ≥ 2
            (the whole batch: gather replicas first).
        invariance_weight, variance_weight, covariance_weight: λ, μ, ν
            (paper: 25, 25, 1).
        gamma: γ, the target standard deviation (paper: 1).
        epsilon: ε inside the square root (paper: 1e-4).

    Returns:
        A float32 scalar ≥ 0.

    Example:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> float(vicreg_loss(z, z)) < float(vicreg_loss(0.01 * z, 0.01 * z))
    True
    """
    invariance, variance, covariance = vicreg_terms(z1, z2, gamma, epsilon)
    return (
        invariance_weight * invariance
        + variance_weight * variance
        + covariance_weight * covariance
    )
