"""SimSiam's objective: a symmetrised negative cosine with stop-gradient.

No negatives and no momentum encoder: the stop-gradient on the projection of
the other view is what keeps the two branches from collapsing (Chen & He,
2021, section 4). The cosine is computed in float32 whatever the dtype
policy.
"""

from keras_ssl.losses.byol import negative_cosine_similarity


def simsiam_loss(p1, p2, z1, z2):
    """`L = D(p1, stopgrad(z2))/2 + D(p2, stopgrad(z1))/2`, D = −cos.

    "Denoting the two output vectors as p1 ≜ h(f(x1)) and z2 ≜ f(x2), we
    minimize their negative cosine similarity [...] we define a symmetrized
    loss as L = ½D(p1, z2) + ½D(p2, z1). [...] an important component for our
    method to work is a stop-gradient operation" (Chen & He, 2021, eqs. 1-3).

    Args:
        p1, p2: the predictor's outputs for views 1 and 2, `(N, D)`.
        z1, z2: the projections of views 1 and 2, `(N, D)`; no gradient flows
            into them.

    Returns:
        A float32 scalar in [−1, 1]; −1 when every prediction points along
        the other view's projection.

    Example:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    >>> round(float(simsiam_loss(z, z, 2 * z, 3 * z)), 4)
    -1.0
    """
    return 0.5 * negative_cosine_similarity(p1, z2) + 0.5 * (
        negative_cosine_similarity(p2, z1)
    )
