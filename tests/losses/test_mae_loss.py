"""MAE's loss against an independent NumPy reference on fixed inputs."""

import keras
import numpy as np
import pytest

from keras_ssl.losses import mae_loss, normalize_patches


def reference_mae(pred, target, mask, norm_pix_loss=False):
    """MAE's `forward_loss`, one patch at a time in float64.

    PyTorch's `Tensor.var` is unbiased (ddof=1), as in MAE's code.
    """
    pred = np.asarray(pred, np.float64)
    target = np.asarray(target, np.float64)
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for n in range(pred.shape[1]):
            if mask[b, n] == 0:
                continue
            t = target[b, n]
            if norm_pix_loss:
                t = (t - t.mean()) / np.sqrt(t.var(ddof=1) + 1e-6)
            total += float(np.mean((pred[b, n] - t) ** 2))
            count += 1
    return total / count


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _fixed(batch, patches, values, seed, masked=None):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(batch, patches, values)).astype("float32")
    target = rng.random((batch, patches, values)).astype("float32")
    masked = masked or max(1, patches * 3 // 4)
    mask = np.zeros((batch, patches), "float32")
    for row in mask:  # `masked` removed patches per sample, as MAE's masking
        row[rng.permutation(patches)[:masked]] = 1.0
    return pred, target, mask


@pytest.mark.parametrize("norm_pix_loss", [False, True])
@pytest.mark.parametrize("batch,patches,values", [(1, 4, 3), (3, 16, 48), (8, 64, 12)])
def test_matches_reference(batch, patches, values, norm_pix_loss):
    pred, target, mask = _fixed(batch, patches, values, seed=batch * patches)
    got = float(_np(mae_loss(pred, target, mask, norm_pix_loss=norm_pix_loss)))
    expected = reference_mae(pred, target, mask, norm_pix_loss)
    assert got == pytest.approx(expected, rel=1e-5)


def test_hand_computed_value():
    pred = np.zeros((1, 3, 2), "float32")
    target = np.array([[[1, 1], [2, 2], [3, 3]]], "float32")
    mask = np.array([[1, 0, 1]], "float32")
    # Patches 0 and 2 count: (1 + 9) / 2; patch 1 (visible) does not.
    assert float(_np(mae_loss(pred, target, mask))) == pytest.approx(5.0)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_only_masked_patches_count(norm_pix_loss):
    pred, target, mask = _fixed(4, 16, 12, seed=5)
    loss = float(_np(mae_loss(pred, target, mask, norm_pix_loss=norm_pix_loss)))
    visible = mask[..., None] == 0
    # Any prediction or target on visible patches: the same loss.
    wild = np.where(visible, 1e4, pred).astype("float32")
    other_target = np.where(visible, -7.0, target).astype("float32")
    for p, t in ((wild, target), (pred, other_target)):
        again = float(_np(mae_loss(p, t, mask, norm_pix_loss=norm_pix_loss)))
        assert again == pytest.approx(loss, rel=1e-6)
    # A change on one masked patch changes it.
    b, n = np.argwhere(mask == 1)[0]
    moved = pred.copy()
    moved[b, n] += 1.0
    assert float(_np(mae_loss(moved, target, mask, norm_pix_loss=norm_pix_loss))) != (
        pytest.approx(loss, rel=1e-6)
    )


def test_mean_is_over_masked_patches_not_all():
    pred, target, _ = _fixed(2, 8, 4, seed=1)
    one = np.zeros((2, 8), "float32")
    one[0, 3] = 1.0
    per_patch = ((pred[0, 3] - target[0, 3]) ** 2).mean()
    assert float(_np(mae_loss(pred, target, one))) == pytest.approx(per_patch, rel=1e-5)


def test_no_masked_patch_gives_zero_not_nan():
    pred, target, _ = _fixed(2, 4, 3, seed=2)
    assert float(_np(mae_loss(pred, target, np.zeros((2, 4), "float32")))) == 0.0


def test_normalize_patches_inverts_and_uses_unbiased_variance():
    _, target, _ = _fixed(2, 5, 6, seed=3)
    normalized, mean, std = (_np(t) for t in normalize_patches(target))
    np.testing.assert_allclose(normalized * std + mean, target, atol=1e-5)
    np.testing.assert_allclose(
        std[..., 0], np.sqrt(target.var(-1, ddof=1) + 1e-6), rtol=1e-5
    )


def test_half_precision_inputs_give_a_float32_loss():
    pred, target, mask = _fixed(2, 8, 12, seed=4)
    loss = mae_loss(pred.astype("float16"), target.astype("float16"), mask)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    expected = reference_mae(pred.astype("float16"), target.astype("float16"), mask)
    assert float(_np(loss)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    "shapes,message",
    [
        (((2, 4, 3), (2, 4, 2), (2, 4)), "same shape"),
        (((2, 4), (2, 4), (2, 4)), "same shape"),
        (((2, 4, 3), (2, 4, 3), (2, 5)), "mask of shape"),
    ],
)
def test_bad_shapes(shapes, message):
    pred, target, mask = (np.zeros(s, "float32") for s in shapes)
    with pytest.raises(ValueError, match=message):
        mae_loss(pred, target, mask)


def test_normalising_one_value_per_patch_is_rejected():
    x = np.zeros((2, 4, 1), "float32")
    with pytest.raises(ValueError, match="at least 2 values per patch"):
        mae_loss(x, x, np.ones((2, 4), "float32"), norm_pix_loss=True)
