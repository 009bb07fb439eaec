"""Contrastive objectives, written once in `keras.ops` for every backend.

Each objective is a pure function (tensors in, scalar out) with a thin
`keras.losses.Loss` wrapper for users who want one in `compile()`. The
similarity computations run in float32 whatever the dtype policy, since a
softmax over similarities is the numerically fragile part of these methods.
"""

import keras
from keras import ops

# A finite "minus infinity": large enough to remove an entry from a softmax in
# float32, small enough not to produce NaNs when it meets another large value.
_MASK_VALUE = -1e9


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """Scales `x` to unit L2 norm along `axis` (zero vectors stay zero)."""
    x = ops.convert_to_tensor(x)
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared_norm, epsilon))


def nt_xent_loss(z1, z2, temperature=0.5, all_z1=None, all_z2=None,
                 offset=0):
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

    "We randomly sample a minibatch of N examples and define the contrastive
    prediction task on pairs of augmented examples derived from the minibatch,
    resulting in 2N data points. [...] Given a positive pair, we treat the
    other 2(N-1) augmented examples within a minibatch as negative examples."
    (Chen et al., 2020, eq. 1.)

    Every one of the 2N projections is an anchor once (both directions); its
    positive is the other view of the same image and its own similarity is
    masked out of the softmax.

    Args:
        z1: projections of the first views, shape `(N, D)`.
        z2: projections of the second views, shape `(N, D)`, same order.
        temperature: softmax temperature τ (0.5 suits small batches; the paper
            uses 0.1 with batches of 4096).
        all_z1: the first views' projections of the *global* batch `(M, D)`
            when the batch is split over replicas (gathered in replica
            order), or None (then `z1`: the batch is global).
        all_z2: the same for the second views.
        offset: the global index of row 0 of `z1` in `all_z1`.

    With a split batch each replica scores its own 2n anchors against all 2M
    projections, and the replicas' mean loss is the global batch's loss.

    Returns:
        The mean loss over the 2N anchors, a float32 scalar.

    Example:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    >>> float(nt_xent_loss(z, z)) < float(nt_xent_loss(z, z[::-1]))
    True
    """
    if temperature <= 0:
        raise ValueError(f"`temperature` must be positive, got {temperature}.")
    def unit(x):
        return l2_normalize(ops.cast(x, "float32"))

    z1, z2 = unit(z1), unit(z2)
    all_z1 = z1 if all_z1 is None else unit(all_z1)
    all_z2 = z2 if all_z2 is None else unit(all_z2)
    anchors = ops.concatenate([z1, z2], axis=0)  # (2n, D)
    candidates = ops.concatenate([all_z1, all_z2], axis=0)  # (2M, D)
    n, m = ops.shape(z1)[0], ops.shape(all_z1)[0]
    logits = ops.matmul(anchors, ops.transpose(candidates)) / temperature
    # Each anchor's own entry leaves the softmax: row i of z1 sits at column
    # offset + i, row i of z2 at column M + offset + i.
    local = ops.arange(n) + offset
    own = ops.one_hot(ops.concatenate([local, local + m]), 2 * m)
    logits = ops.where(own > 0, _MASK_VALUE, logits)
    # The positive of a first view is its second view, and back.
    positives = ops.sum(
        anchors * ops.concatenate([z2, z1], axis=0), axis=-1
    ) / temperature
    return ops.mean(ops.logsumexp(logits, axis=-1) - positives)


@keras.saving.register_keras_serializable(package="keras_ssl")
class NTXentLoss(keras.losses.Loss):
    """`keras.losses.Loss` wrapper of `nt_xent_loss`.

    `y_pred` is the pair `(z1, z2)` of projections (`y_true` is ignored), so a
    two-view model can be compiled with `loss=NTXentLoss()`.

    Example:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    >>> loss = NTXentLoss(temperature=0.2)
    >>> float(loss(None, (z, z))) > 0
    True
    """

    def __init__(self, temperature=0.5, name="nt_xent", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature

    def __call__(self, y_true, y_pred, sample_weight=None):
        z1, z2 = y_pred
        return nt_xent_loss(z1, z2, self.temperature)

    def call(self, y_true, y_pred):
        z1, z2 = y_pred
        return nt_xent_loss(z1, z2, self.temperature)

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
