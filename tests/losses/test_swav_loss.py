"""SwAV's Sinkhorn-Knopp codes and swapped prediction loss against NumPy
references written from the paper and the official code."""

import doctest

import keras
import numpy as np
import pytest

import keras_ssl.losses.swav as swav_module
from keras_ssl.losses.swav import (
    code_entropy,
    prototype_usage,
    sinkhorn_knopp,
    swapped_prediction_loss,
)

BACKEND = keras.backend.backend()


def _np(x):
    return keras.ops.convert_to_numpy(x)


def reference_sinkhorn(scores, epsilon, iterations):
    """The official `distributed_sinkhorn` on one device, in float64."""
    q = np.exp(scores.astype("float64") / epsilon).T  # K-by-B
    k, b = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    return (q * b).T


def reference_swapped_loss(scores, codes, temperature):
    """The official loop: each code i against every other crop v, the
    batch-mean cross-entropy summed over v and divided by V − 1, then the
    mean over the codes."""
    def log_softmax(x):
        x = x.astype("float64") / temperature
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    loss = 0.0
    for i, q in enumerate(codes):
        subloss = 0.0
        for v in np.delete(np.arange(len(scores)), i):
            subloss -= np.mean(np.sum(q * log_softmax(scores[v]), axis=1))
        loss += subloss / (len(scores) - 1)
    return loss / len(codes)


def _scores(rng, b, k, n=1):
    out = [rng.uniform(-1, 1, (b, k)).astype("float32") for _ in range(n)]
    return out if n > 1 else out[0]


@pytest.mark.parametrize("b,k,epsilon,iterations", [
    (8, 4, 0.05, 3), (6, 10, 0.03, 5),
])
def test_sinkhorn_matches_the_official_loop(b, k, epsilon, iterations):
    scores = _scores(np.random.default_rng(b * k), b, k)
    got = _np(sinkhorn_knopp(scores, epsilon, iterations))
    want = reference_sinkhorn(scores, epsilon, iterations)
    assert got.shape == (b, k) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_sinkhorn_marginals_and_numerical_safety():
    rng = np.random.default_rng(0)
    b, k = 12, 4
    scores = _scores(rng, b, k)
    q = _np(sinkhorn_knopp(scores, 0.05, 3))
    # Each sample's code is a distribution (the last constraint applied);
    # each prototype gets B/K samples in the limit of the iterations (3 give
    # only an approximation with a small ε).
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(q >= 0)
    q = _np(sinkhorn_knopp(scores, 0.05, 200))
    np.testing.assert_allclose(q.sum(axis=0), b / k, rtol=1e-3)
    # Subtracting each prototype's maximum: a shift changes nothing, scores
    # whose exp(s/ε) overflows float32 (e^1000) give the same codes, and
    # scores spread over 5 times the cosines' range (exp(−200) underflows)
    # still give distributions; beyond, codes stay finite.
    np.testing.assert_allclose(
        _np(sinkhorn_knopp(scores + 50.0)), _np(sinkhorn_knopp(scores)),
        rtol=1e-4, atol=1e-6,
    )
    wide = _np(sinkhorn_knopp(5.0 * scores))
    np.testing.assert_allclose(wide.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        wide, reference_sinkhorn(5.0 * scores, 0.05, 3), rtol=1e-3, atol=1e-6
    )
    assert np.all(np.isfinite(_np(sinkhorn_knopp(200.0 * scores))))


@pytest.mark.parametrize("crops,codes", [(4, 2), (3, 1)])
def test_swapped_loss_matches_numpy(crops, codes):
    rng = np.random.default_rng(crops)
    scores = _scores(rng, 6, 5, crops)
    q = [reference_sinkhorn(s, 0.05, 3).astype("float32") for s in scores[:codes]]
    got = float(_np(swapped_prediction_loss(scores, q, 0.1)))
    want = reference_swapped_loss(scores, q, 0.1)
    assert got == pytest.approx(want, rel=1e-5)


def _gradient(fn, x):
    """d fn(x) / dx with the backend's autodiff (None: no gradient path)."""
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        g = tape.gradient(y, x)
        return None if g is None else g.numpy()
    import torch

    x = torch.tensor(x, requires_grad=True)
    y = fn(x)
    if not y.requires_grad:
        return None
    y.backward()
    return x.grad.numpy()


def test_no_gradient_flows_into_the_codes():
    """The codes come from the same scores, yet the gradient is that of a
    cross-entropy against constant targets: (softmax(s/τ) − q) / (τ·B),
    halved by the mean over the 2 codes."""
    rng = np.random.default_rng(1)
    s0, s1 = _scores(rng, 4, 6, 2)

    def loss(x):
        codes = [sinkhorn_knopp(x), sinkhorn_knopp(s1)]
        return swapped_prediction_loss([x, s1], codes, 0.1)

    p = np.exp(s0 / 0.1) / np.exp(s0 / 0.1).sum(axis=1, keepdims=True)
    q1 = reference_sinkhorn(s1, 0.05, 3)
    np.testing.assert_allclose(
        _gradient(loss, s0), (p - q1) / (0.1 * 4) / 2, rtol=1e-4, atol=1e-6
    )
    codes_only = _gradient(lambda x: keras.ops.sum(sinkhorn_knopp(x) * x), s0)
    # Only the explicit factor x carries a gradient: d/dx = the codes.
    np.testing.assert_allclose(
        codes_only, reference_sinkhorn(s0, 0.05, 3), rtol=1e-4, atol=1e-6
    )


def test_monitors_and_argument_checks():
    k = 8
    uniform = np.full((4, k), 1.0 / k, "float32")
    assert float(_np(code_entropy([uniform, uniform]))) == pytest.approx(np.log(k))
    assert float(_np(code_entropy(np.eye(k, dtype="float32")))) < 1e-6
    # Every image predicted onto prototype 0: usage 1/K; spread: about 1.
    collapsed = np.tile(np.eye(k, dtype="float32")[:1], (16, 1))
    assert float(_np(prototype_usage(collapsed, 0.01))) == pytest.approx(1 / k, rel=1e-3)
    assert float(_np(prototype_usage(np.eye(k, dtype="float32"), 0.01))) > 0.99
    x = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn_knopp(x, epsilon=0.0)
    with pytest.raises(ValueError, match="iterations"):
        sinkhorn_knopp(x, iterations=0)
    with pytest.raises(ValueError, match="temperature"):
        swapped_prediction_loss([x, x], [x], temperature=-0.1)
    with pytest.raises(ValueError, match="at least 2 crops"):
        swapped_prediction_loss([x], [x])


def test_docstring_examples():
    assert doctest.testmod(swav_module).failed == 0
