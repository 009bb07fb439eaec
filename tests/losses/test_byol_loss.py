"""BYOL's loss against an independent NumPy reference on fixed inputs."""

import keras
import numpy as np
import pytest

from keras_ssl.losses.byol import (
    byol_loss,
    cosine_similarity,
    negative_cosine_similarity,
    symmetric_byol_loss,
)


def reference_byol(p, z):
    """Eq. 2 of BYOL as written: ‖p/‖p‖ − z/‖z‖‖², averaged over examples."""
    p = np.asarray(p, np.float64)
    z = np.asarray(z, np.float64)
    total = 0.0
    for p_i, z_i in zip(p, z):
        diff = p_i / np.linalg.norm(p_i) - z_i / np.linalg.norm(z_i)
        total += float(diff @ diff)
    return total / len(p)


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("n,d", [(2, 3), (7, 16), (32, 8)])
def test_matches_reference(n, d):
    rng = np.random.default_rng(n * d)
    p = rng.normal(size=(n, d)).astype("float32")
    z = (p + 0.7 * rng.normal(size=(n, d))).astype("float32")
    assert abs(float(_np(byol_loss(p, z))) - reference_byol(p, z)) <= 1e-5
    np.testing.assert_allclose(
        float(_np(negative_cosine_similarity(p, z))),
        reference_byol(p, z) / 2 - 1,
        atol=1e-5,
    )


def test_symmetric_loss_sums_both_directions():
    rng = np.random.default_rng(3)
    p1, p2, z1, z2 = rng.normal(size=(4, 5, 6)).astype("float32")
    expected = reference_byol(p1, z2) + reference_byol(p2, z1)
    got = float(_np(symmetric_byol_loss(p1, p2, z1, z2)))
    assert abs(got - expected) <= 1e-5


def test_bounds_and_scale_invariance():
    z = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    assert float(_np(byol_loss(z, 5.0 * z))) == pytest.approx(0.0, abs=1e-6)
    assert float(_np(byol_loss(z, -z))) == pytest.approx(4.0, abs=1e-5)
    np.testing.assert_allclose(
        _np(cosine_similarity(z, 2.0 * z)), np.ones(6), atol=1e-6
    )


def test_runs_in_float32_for_half_precision_inputs():
    z = np.random.default_rng(0).normal(size=(4, 8)).astype("float16")
    for loss in (byol_loss(z, z), negative_cosine_similarity(z, z)):
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"


def test_no_gradient_flows_into_the_target():
    """d loss / d z is zero; d loss / d p is the normalised-MSE gradient."""
    rng = np.random.default_rng(1)
    p, z = rng.normal(size=(2, 3, 4)).astype("float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad_p, grad_z = jax.grad(lambda a, b: byol_loss(a, b), (0, 1))(p, z)
    elif backend == "tensorflow":
        import tensorflow as tf

        a, b = tf.Variable(p), tf.Variable(z)
        with tf.GradientTape() as tape:
            loss = byol_loss(a, b)
        grad_p, grad_z = tape.gradient(loss, [a, b])
        grad_z = np.zeros_like(z) if grad_z is None else grad_z
    else:
        import torch

        a = torch.tensor(p, requires_grad=True)
        b = torch.tensor(z, requires_grad=True)
        byol_loss(a, b).backward()
        grad_p = a.grad
        grad_z = np.zeros_like(z) if b.grad is None else b.grad
    np.testing.assert_array_equal(_np(grad_z), np.zeros_like(z))
    # Finite differences of the NumPy reference for the gradient w.r.t. p.
    eps, numeric = 1e-4, np.zeros_like(p, np.float64)
    for idx in np.ndindex(p.shape):
        up, down = p.astype(np.float64), p.astype(np.float64)
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (reference_byol(up, z) - reference_byol(down, z)) / (2 * eps)
    np.testing.assert_allclose(_np(grad_p), numeric, atol=1e-4)
