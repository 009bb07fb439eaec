"""MAE's objective: pixel MSE on the masked patches only."""

from keras import ops


def _check_shapes(predictions, target_patches, mask):
    p_shape, t_shape = tuple(predictions.shape), tuple(target_patches.shape)
    m_shape = tuple(mask.shape)
    if len(p_shape) != 3 or p_shape != t_shape:
        raise ValueError(
            "mae_loss expects predictions and target patches of the same shape "
            f"(batch, patches, values); got {p_shape} and {t_shape}."
        )
    if m_shape != p_shape[:2]:
        raise ValueError(
            f"mae_loss expects a mask of shape (batch, patches) = {p_shape[:2]}; "
            f"got {m_shape}."
        )


def normalize_patches(patches, epsilon=1e-6):
    """Per-patch normalised pixels, MAE's `norm_pix_loss` target.

    As in MAE's code: `(x − mean) / sqrt(var + ε)` over the values of each
    patch, where `var` is PyTorch's default *unbiased* variance (divided by
    n − 1) and ε = 1e-6.

    Returns:
        `(normalized, mean, std)`, with `mean` and `std = sqrt(var + ε)` of
        shape `(..., 1)`, so that `normalized · std + mean` gives the pixels.
    """
    patches = ops.cast(patches, "float32")
    n = patches.shape[-1]
    if n is None or n < 2:
        raise ValueError(
            "Normalising patches needs at least 2 values per patch (an "
            f"unbiased variance); got {n}."
        )
    mean = ops.mean(patches, axis=-1, keepdims=True)
    var = ops.var(patches, axis=-1, keepdims=True) * (n / (n - 1.0))
    std = ops.sqrt(var + epsilon)
    return (patches - mean) / std, mean, std


def mae_loss(predictions, target_patches, mask, norm_pix_loss=False, epsilon=1e-6):
    """Mean squared error on the removed patches only (He et al., 2021).

    "Our loss function computes the mean squared error (MSE) between the
    reconstructed and original images in the pixel space. We compute the loss
    only on masked patches, similar to BERT." With `norm_pix_loss` the target
    of each patch is its pixels normalised by the patch's own mean and
    standard deviation ("the normalized pixel values of each masked patch"),
    which the paper finds improves representations. MAE's `forward_loss`:

    ```
    if norm_pix_loss:
        target = (target - target.mean(-1)) / (target.var(-1) + 1e-6) ** .5
    loss = ((pred - target) ** 2).mean(-1)          # per patch
    loss = (loss * mask).sum() / mask.sum()         # masked patches only
    ```

    Args:
        predictions: `(B, N, P)` predicted pixels of every patch.
        target_patches: `(B, N, P)` true pixels (`keras_ssl.layers.vit.patchify`).
        mask: `(B, N)`, 1 for removed (masked) patches, 0 for visible ones;
            visible patches do not count.
        norm_pix_loss: regress per-patch normalised pixels.
        epsilon: ε of the normalisation.

    Returns:
        A float32 scalar; 0 when no patch is masked (MAE's code would divide
        by zero).

    Example:

    >>> import numpy as np
    >>> pred = np.zeros((1, 2, 4), "float32")
    >>> target = np.ones((1, 2, 4), "float32")
    >>> float(mae_loss(pred, target, np.array([[1.0, 0.0]], "float32")))
    1.0
    """
    _check_shapes(predictions, target_patches, mask)
    predictions = ops.cast(predictions, "float32")
    target = ops.cast(target_patches, "float32")
    mask = ops.cast(mask, "float32")
    if norm_pix_loss:
        target, _, _ = normalize_patches(target, epsilon)
    per_patch = ops.mean(ops.square(predictions - target), axis=-1)
    return ops.sum(per_patch * mask) / ops.maximum(ops.sum(mask), 1.0)
