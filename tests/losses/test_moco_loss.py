"""MoCo's InfoNCE losses against independent NumPy references on fixed inputs."""

import math

import keras
import numpy as np
import pytest

from keras_ssl.losses import infonce_in_batch, infonce_with_queue


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_infonce_with_queue(q, k, queue, temperature):
    """Eq. 1 of MoCo with a loop over queries: −log softmax of the positive
    among [k+, queue_1, ..., queue_K]."""
    q, k, queue = _unit(q), _unit(k), _unit(queue)
    total = 0.0
    for q_i, k_i in zip(q, k):
        logits = [q_i @ k_i / temperature] + [
            q_i @ n / temperature for n in queue
        ]
        top = max(logits)
        log_denominator = top + math.log(sum(math.exp(l - top) for l in logits))
        total += log_denominator - logits[0]
    return total / len(q)


def reference_infonce_in_batch(q, k, temperature):
    """MoCo v3's ctr without its 2τ factor: row i's label is column i."""
    q, k = _unit(q), _unit(k)
    total = 0.0
    for i, q_i in enumerate(q):
        logits = [q_i @ k_j / temperature for k_j in k]
        total += -math.log(math.exp(logits[i]) / sum(math.exp(l) for l in logits))
    return total / len(q)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _close(got, expected):
    assert abs(float(_np(got)) - expected) <= 1e-5 * max(1.0, abs(expected)), (
        float(_np(got)),
        expected,
    )


@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
@pytest.mark.parametrize("n,d,size", [(2, 3, 4), (8, 16, 32), (16, 8, 64)])
def test_queue_loss_matches_reference(n, d, size, temperature):
    rng = np.random.default_rng(n * d + size)
    q = rng.normal(size=(n, d)).astype("float32")
    k = (q + 0.5 * rng.normal(size=(n, d))).astype("float32")
    queue = _unit(rng.normal(size=(size, d))).astype("float32")
    _close(
        infonce_with_queue(q, k, queue, temperature),
        reference_infonce_with_queue(q, k, queue, temperature),
    )


@pytest.mark.parametrize("temperature", [0.2, 1.0])
@pytest.mark.parametrize("n,d", [(2, 3), (8, 16), (32, 8)])
def test_in_batch_loss_matches_reference(n, d, temperature):
    rng = np.random.default_rng(n * d)
    q = rng.normal(size=(n, d)).astype("float32")
    k = (q + 0.5 * rng.normal(size=(n, d))).astype("float32")
    _close(
        infonce_in_batch(q, k, temperature),
        reference_infonce_in_batch(q, k, temperature),
    )


def test_chance_level_is_log_k_plus_one():
    """Queries orthogonal to their key and to every negative: uniform
    softmax over K + 1 entries."""
    d, size = 64, 31
    eye = np.eye(d, dtype="float32")
    q, k, queue = eye[:4], eye[4:8], eye[8 : 8 + size]
    got = float(_np(infonce_with_queue(q, k, queue, 0.2)))
    np.testing.assert_allclose(got, math.log(size + 1), rtol=1e-6)
    got = float(_np(infonce_in_batch(q, k, 0.2)))
    np.testing.assert_allclose(got, math.log(4), rtol=1e-6)


def test_queue_rows_are_normalised_and_scale_does_not_matter():
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(2, 5, 8)).astype("float32")
    queue = rng.normal(size=(10, 8)).astype("float32")
    a = float(_np(infonce_with_queue(q, k, queue)))
    b = float(_np(infonce_with_queue(3.0 * q, 0.5 * k, 7.0 * queue)))
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_no_gradient_flows_into_keys_or_queue():
    rng = np.random.default_rng(4)
    q, k = (keras.Variable(v) for v in rng.normal(size=(2, 4, 6)).astype("float32"))
    queue = keras.Variable(rng.normal(size=(8, 6)).astype("float32"))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = infonce_with_queue(q, k, queue)
        grads = tape.gradient(loss, [q.value, k.value, queue.value])
        assert grads[0] is not None and grads[1] is None and grads[2] is None
    elif backend == "jax":
        import jax

        grads = jax.grad(lambda *a: infonce_with_queue(*a), argnums=(0, 1, 2))(
            q.value, k.value, queue.value
        )
        assert np.any(np.asarray(grads[0]) != 0)
        assert not np.any(np.asarray(grads[1])) and not np.any(np.asarray(grads[2]))
    else:
        import torch

        leaves = [torch.tensor(_np(v), requires_grad=True) for v in (q, k, queue)]
        infonce_with_queue(*leaves).backward()
        assert leaves[0].grad is not None
        assert leaves[1].grad is None and leaves[2].grad is None


def test_runs_in_float32_for_half_precision_inputs():
    z = np.random.default_rng(0).normal(size=(4, 8)).astype("float16")
    for loss in (infonce_with_queue(z, z, z), infonce_in_batch(z, z)):
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"


@pytest.mark.parametrize("temperature", [0.0, -0.2])
def test_rejects_non_positive_temperature(temperature):
    z = np.ones((2, 2), "float32")
    with pytest.raises(ValueError, match="temperature"):
        infonce_with_queue(z, z, z, temperature)
    with pytest.raises(ValueError, match="temperature"):
        infonce_in_batch(z, z, temperature)


def test_in_batch_loss_over_gathered_keys_averages_to_the_global_loss():
    rng = np.random.default_rng(4)
    q, k = rng.normal(size=(2, 12, 8)).astype("float32")
    whole = float(infonce_in_batch(q, k, 0.2))
    parts = [float(infonce_in_batch(q[s : s + 6], k[s : s + 6], 0.2, k, s))
             for s in (0, 6)]
    np.testing.assert_allclose(np.mean(parts), whole, rtol=1e-5)
    local = [float(infonce_in_batch(q[s : s + 6], k[s : s + 6], 0.2))
             for s in (0, 6)]
    assert abs(np.mean(local) - whole) > 1e-2
