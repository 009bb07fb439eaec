"""BYOL's regression objective: a normalised MSE, i.e. a negative cosine.

No negatives: each prediction is compared with the target projection of the
other view of the *same* image only. The targets are constants for the
gradient (`ops.stop_gradient`), and the cosine is computed in float32 whatever
the dtype policy.
"""

from keras import ops

from keras_ssl.losses.contrastive import l2_normalize


def _constant(z):
    """`z` as a tensor that no gradient flows into."""
    return ops.stop_gradient(ops.convert_to_tensor(z))


def cosine_similarity(a, b):
    """Row-wise cosine similarity of `(N, D)` tensors, in float32: `(N,)`."""
    a = l2_normalize(ops.cast(a, "float32"))
    b = l2_normalize(ops.cast(b, "float32"))
    return ops.sum(a * b, axis=-1)


def negative_cosine_similarity(p, z):
    """`D(p, z) = −cos(p, stopgrad(z))`, averaged over the batch.

    The form SimSiam writes BYOL's loss in (Chen & He, 2021, eq. 1); it is
    `byol_loss(p, z) / 2 − 1`, so both give the same gradient direction.

    Args:
        p: predictions of the online network, shape `(N, D)`.
        z: target projections, shape `(N, D)`; no gradient flows into them.

    Returns:
        A float32 scalar in [−1, 1].
    """
    return -ops.mean(cosine_similarity(p, _constant(z)))


def byol_loss(p, z):
    """BYOL's loss for one direction: `2 − 2·cos(p, stopgrad(z))`, batch mean.

    "we define the following mean squared error between the normalized
    predictions and target projections,
    L_θ,ξ ≜ ‖q̄_θ(z_θ) − z̄′_ξ‖²₂ = 2 − 2·⟨q_θ(z_θ), z′_ξ⟩ /
    (‖q_θ(z_θ)‖₂·‖z′_ξ‖₂)." (Grill et al., 2020, eq. 2.)

    Args:
        p: predictions `q_θ(z_θ)` of the online network, shape `(N, D)`.
        z: target projections `z′_ξ` of the other view, shape `(N, D)`, same
            order; no gradient flows into them.

    Returns:
        A float32 scalar in [0, 4].

    Example:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    >>> float(byol_loss(z, 3.0 * z)) < 1e-6
    True
    """
    return 2.0 - 2.0 * ops.mean(cosine_similarity(p, _constant(z)))


def symmetric_byol_loss(p1, p2, z1, z2):
    """`byol_loss(p1, z2) + byol_loss(p2, z1)`: both views predict the other.

    "We symmetrize the loss L_θ,ξ in Eq. 2 by separately feeding v′ to the
    online network and v to the target network to compute L̃_θ,ξ. At each
    training step, we perform a stochastic optimization step to minimize
    L^BYOL_θ,ξ = L_θ,ξ + L̃_θ,ξ with respect to θ only" (Grill et al., 2020).

    The two directions are *summed*, as in the paper and its official code,
    so the loss lies in [0, 8] and the paper's learning rates and weight
    decay (tuned against this scale) carry over unchanged; lightly averages
    instead, which halves the gradient.

    Args:
        p1, p2: online predictions of views 1 and 2, `(N, D)`.
        z1, z2: target projections of views 1 and 2, `(N, D)`.
    """
    return byol_loss(p1, z2) + byol_loss(p2, z1)
