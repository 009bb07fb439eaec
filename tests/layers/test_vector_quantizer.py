"""VectorQuantizer and the VQ terms against NumPy references, on every backend."""

import keras
import numpy as np
import pytest

from keras_ssl.layers import VectorQuantizer
from keras_ssl.layers.vector_quantizer import (
    ema_codebook_update,
    laplace_smoothing,
    nearest_codes,
    squared_distances,
    straight_through,
)
from keras_ssl.losses import (
    code_counts,
    codebook_perplexity,
    codebook_usage,
    vq_commitment_loss,
)

BACKEND = keras.backend.backend()


def _np(x):
    return keras.ops.convert_to_numpy(x)


def gradients(fn, *args):
    """d fn(*args) / d args for a scalar `fn`, with each backend's autodiff.

    Under JAX `fn` runs in a `keras.StatelessScope`, as Keras' trainer runs a
    loss: variable assignments inside it are recorded, not applied. An
    argument that `fn` does not differentiate through gets zeros.
    """
    args = [np.asarray(a, "float32") for a in args]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
        return [_zeros_if_none(g, a) for g, a in zip(grads, args)]
    if BACKEND == "jax":
        import jax

        def stateless(*xs):
            with keras.StatelessScope():
                return fn(*xs)

        grads = jax.grad(stateless, argnums=tuple(range(len(args))))(*args)
        return [_np(g) for g in grads]
    import torch

    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    fn(*tensors).backward()
    return [_zeros_if_none(t.grad, a) for t, a in zip(tensors, args)]


def _zeros_if_none(grad, like):
    return np.zeros_like(like) if grad is None else _np(grad)


# --- NumPy references ---------------------------------------------------------
def reference_nearest(z, codebook):
    flat = z.reshape(-1, z.shape[-1]).astype(np.float64)
    d = ((flat[:, None, :] - codebook[None].astype(np.float64)) ** 2).sum(-1)
    return d.argmin(axis=1).reshape(z.shape[:-1]), d


def reference_ema(cluster_size, sums, z, codes, decay, epsilon):
    """VQ-VAE appendix A.1 with Sonnet's Laplace smoothing, one code at a time."""
    num_codes, dim = sums.shape
    counts = np.zeros(num_codes)
    batch_sums = np.zeros((num_codes, dim))
    for vector, code in zip(z.reshape(-1, dim), codes.reshape(-1)):
        counts[code] += 1
        batch_sums[code] += vector
    new_size = decay * cluster_size + (1 - decay) * counts
    new_sums = decay * sums + (1 - decay) * batch_sums
    total = new_size.sum()
    smoothed = (new_size + epsilon) / (total + num_codes * epsilon) * total
    return new_size, new_sums, new_sums / smoothed[:, None]


def reference_perplexity(codes, num_codes):
    counts = np.bincount(np.asarray(codes).reshape(-1), minlength=num_codes)
    p = counts / counts.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _layer(num_codes=6, code_dim=3, **kwargs):
    vq = VectorQuantizer(num_codes, code_dim, seed=0, **kwargs)
    vq.build((None, code_dim))
    return vq


# --- lookup -------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 3), (2, 4, 5, 3)])
def test_nearest_code_matches_numpy(shape):
    rng = np.random.default_rng(0)
    vq = _layer()
    codebook = rng.normal(size=(6, 3)).astype("float32")
    vq.codebook.assign(codebook)
    z = rng.normal(size=shape).astype("float32")
    expected, distances = reference_nearest(z, codebook)
    codes = vq.nearest_codes(z)
    assert tuple(codes.shape) == shape[:-1]
    assert keras.backend.standardize_dtype(codes.dtype) == "int32"
    np.testing.assert_array_equal(_np(codes), expected)
    np.testing.assert_allclose(
        _np(squared_distances(z.reshape(-1, 3), codebook)), distances,
        rtol=1e-5, atol=1e-5,
    )
    # The layer's output is the nearest code's vector, and its ids.
    quantized, layer_codes = vq(z)
    np.testing.assert_array_equal(_np(layer_codes), expected)
    np.testing.assert_allclose(_np(quantized), codebook[expected], atol=1e-6)


def test_lookup_does_not_change_state():
    vq = _layer()
    before = [_np(v).copy() for v in vq.variables]
    z = np.random.default_rng(1).normal(size=(10, 3)).astype("float32")
    vq(z)
    vq(z, training=True)
    vq.nearest_codes(z)
    for a, v in zip(before, vq.variables):
        np.testing.assert_array_equal(a, _np(v))


# --- straight-through ---------------------------------------------------------
def test_straight_through_passes_the_quantized_outputs_gradient_to_z():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 3)).astype("float32")
    z_q = rng.normal(size=(5, 3)).astype("float32")
    w = rng.normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(_np(straight_through(z, z_q)), z_q, atol=1e-6)
    # loss(q) = Σ w·q²: dloss/dq at q = z_q is 2·w·z_q, and z receives it.
    (grad_z, grad_z_q) = gradients(
        lambda a, b: keras.ops.sum(
            keras.ops.multiply(w, keras.ops.square(straight_through(a, b)))
        ),
        z, z_q,
    )
    np.testing.assert_allclose(grad_z, 2 * w * z_q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_z_q, 0.0)


def test_layer_gradient_reaches_its_input_through_a_codebook_update():
    """The model's order: forward, loss, EMA update (assign), then backward.

    Under PyTorch the update copies in place into the codebook before
    `backward()`; nothing in the loss's graph may have saved it.
    """
    rng = np.random.default_rng(3)
    vq = _layer()
    z = rng.normal(size=(4, 5, 3)).astype("float32")
    w = rng.normal(size=(4, 5, 3)).astype("float32")

    def loss(x):
        quantized, codes = vq(x)
        value = keras.ops.sum(keras.ops.multiply(w, keras.ops.square(quantized)))
        value = value + vq_commitment_loss(x, quantized)
        vq.update_codebook(x, codes)
        return value

    codebook = _np(vq.codebook).copy()
    codes = reference_nearest(z, codebook)[0]
    (grad,) = gradients(loss, z)
    z_q = codebook[codes]
    expected = 2 * w * z_q + 2 * (z - z_q) / z.size
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


# --- the EMA update -----------------------------------------------------------
def _fixed_state(seed=4):
    rng = np.random.default_rng(seed)
    codebook = rng.normal(size=(6, 3)).astype("float32")
    cluster_size = np.array([1.0, 2.5, 0.3, 1e-3, 4.0, 1.0], "float32")
    sums = (codebook * cluster_size[:, None]).astype("float32")
    z = (codebook[rng.integers(0, 4, size=20)] + 0.1 * rng.normal(size=(20, 3)))
    return codebook, cluster_size, sums, z.astype("float32")


def test_ema_update_matches_numpy():
    codebook, cluster_size, sums, z = _fixed_state()
    vq = _layer(decay=0.9, epsilon=1e-3, dead_code_threshold=0.0)
    vq.codebook.assign(codebook)
    vq.ema_cluster_size.assign(cluster_size)
    vq.ema_sums.assign(sums)
    codes = vq.nearest_codes(z)
    np.testing.assert_array_equal(_np(codes), reference_nearest(z, codebook)[0])
    restarted = vq.update_codebook(z, codes)
    assert int(_np(restarted)) == 0
    size, new_sums, new_codebook = reference_ema(
        cluster_size.astype(np.float64), sums.astype(np.float64), z,
        _np(codes), 0.9, 1e-3,
    )
    np.testing.assert_allclose(_np(vq.ema_cluster_size), size, rtol=1e-5)
    np.testing.assert_allclose(_np(vq.ema_sums), new_sums, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(vq.codebook), new_codebook, rtol=1e-4, atol=1e-6)
    # Codes 4 and 5 got no vectors: their counts decay, the smoothing keeps
    # them defined (code 3, N = 1e-3, is the one the smoothing moves most).
    assert set(_np(codes).tolist()) <= {0, 1, 2, 3}


def test_pure_ema_function_and_smoothing():
    codebook, cluster_size, sums, z = _fixed_state(seed=5)
    codes = reference_nearest(z, codebook)[0]
    got = ema_codebook_update(cluster_size, sums, z, codes, 0.99, 1e-5)
    expected = reference_ema(
        cluster_size.astype(np.float64), sums.astype(np.float64), z, codes,
        0.99, 1e-5,
    )
    for a, b in zip(got, expected):
        np.testing.assert_allclose(_np(a), b, rtol=1e-4, atol=1e-6)
    smoothed = _np(laplace_smoothing(keras.ops.convert_to_tensor(cluster_size), 0.5))
    np.testing.assert_allclose(smoothed.sum(), cluster_size.sum(), rtol=1e-6)
    assert (smoothed > 0).all()


def test_a_dead_code_restarts_at_a_vector_of_the_batch():
    rng = np.random.default_rng(6)
    codebook = np.array(
        [[0, 0, 0], [5, 0, 0], [0, 5, 0], [100, 100, 100]], "float32"
    )
    vq = _layer(num_codes=4, code_dim=3, dead_code_threshold=1.0)
    vq.codebook.assign(codebook)
    vq.ema_sums.assign(codebook)  # N = 1 (initial), m = N·e
    z = codebook[np.repeat([0, 1, 2], 5)] + 0.1 * rng.normal(size=(15, 3))
    z = z.astype("float32")
    codes = vq.nearest_codes(z)
    assert 3 not in _np(codes)  # nobody chooses the far code
    restarted = vq.update_codebook(z, codes)
    assert int(_np(restarted)) == 1
    new_codebook = _np(vq.codebook)
    # The dead code now is one of the batch's vectors, counted once.
    distances = np.abs(z - new_codebook[3]).max(axis=1)
    assert distances.min() < 1e-6, (new_codebook[3], z)
    np.testing.assert_allclose(_np(vq.ema_cluster_size)[3], 1.0)
    np.testing.assert_allclose(_np(vq.ema_sums)[3], new_codebook[3], atol=1e-6)
    # The live codes (5 vectors each: N = 0.99 + 0.05) took the EMA step.
    size, sums, expected = reference_ema(
        np.ones(4), codebook.astype(np.float64), z, _np(codes), 0.99, 1e-5
    )
    np.testing.assert_allclose(_np(vq.ema_cluster_size)[:3], size[:3], rtol=1e-5)
    np.testing.assert_allclose(new_codebook[:3], expected[:3], rtol=1e-4, atol=1e-5)
    # The restart's draws advance: another update picks other rows.
    vq2 = _layer(num_codes=4, code_dim=3, dead_code_threshold=1e9)
    picks = []
    for _ in range(3):
        vq2.update_codebook(z, vq2.nearest_codes(z))
        picks.append(_np(vq2.codebook).copy())
    assert not all(np.array_equal(picks[0], p) for p in picks[1:])


def test_frozen_layer_does_not_update():
    vq = _layer()
    vq.trainable = False
    before = [_np(v).copy() for v in vq.variables]
    z = np.random.default_rng(7).normal(size=(10, 3)).astype("float32")
    assert vq.update_codebook(z, vq.nearest_codes(z)) is None
    for a, v in zip(before, vq.variables):
        np.testing.assert_array_equal(a, _np(v))


def test_initial_state():
    vq = _layer(num_codes=16, code_dim=4)
    assert all(not v.trainable for v in vq.weights)
    assert vq.trainable_weights == []
    np.testing.assert_array_equal(_np(vq.ema_cluster_size), np.ones(16))
    np.testing.assert_array_equal(_np(vq.ema_sums), _np(vq.codebook))
    assert np.unique(_np(vq.codebook)).size == 64  # random, distinct


# --- losses and statistics ----------------------------------------------------
def test_commitment_loss_matches_numpy_and_only_moves_z_e():
    rng = np.random.default_rng(8)
    z_e = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    z_q = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    expected = ((z_e.astype(np.float64) - z_q) ** 2).mean()
    got = float(_np(vq_commitment_loss(z_e, z_q)))
    assert got == pytest.approx(expected, rel=1e-5)
    grad_e, grad_q = gradients(vq_commitment_loss, z_e, z_q)
    np.testing.assert_allclose(grad_e, 2 * (z_e - z_q) / z_e.size, rtol=1e-4)
    np.testing.assert_allclose(grad_q, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        vq_commitment_loss(z_e, z_q[:1])


@pytest.mark.parametrize(
    "codes,num_codes",
    [
        (np.zeros((4, 16), "int32"), 8),  # collapse: perplexity 1
        (np.arange(32).reshape(4, 8) % 8, 8),  # uniform: perplexity V
        (np.random.default_rng(9).integers(0, 5, size=(3, 7)), 16),
    ],
)
def test_perplexity_usage_and_counts_match_numpy(codes, num_codes):
    codes = np.asarray(codes, "int32")
    got = float(_np(codebook_perplexity(codes, num_codes)))
    assert got == pytest.approx(reference_perplexity(codes, num_codes), rel=1e-5)
    counts = np.bincount(codes.reshape(-1), minlength=num_codes)
    np.testing.assert_array_equal(_np(code_counts(codes, num_codes)), counts)
    usage = float(_np(codebook_usage(codes, num_codes)))
    assert usage == pytest.approx((counts > 0).mean())


# --- configuration ------------------------------------------------------------
def test_config_round_trip_and_serialization():
    vq = VectorQuantizer(12, 5, decay=0.95, epsilon=1e-4, dead_code_threshold=2.0,
                         seed=3, name="vq")
    config = vq.get_config()
    for key, value in dict(num_codes=12, code_dim=5, decay=0.95, epsilon=1e-4,
                           dead_code_threshold=2.0, seed=3).items():
        assert config[key] == value
    restored = VectorQuantizer.from_config(config)
    assert restored.get_config() == config
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(vq)
    )
    assert isinstance(again, VectorQuantizer) and again.get_config() == config


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_codes=0, code_dim=3), "num_codes"),
        (dict(num_codes=4, code_dim=2.5), "code_dim"),
        (dict(num_codes=4, code_dim=3, decay=1.0), "decay"),
        (dict(num_codes=4, code_dim=3, epsilon=0.0), "epsilon"),
        (dict(num_codes=4, code_dim=3, dead_code_threshold=-1), "dead_code_threshold"),
    ],
)
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VectorQuantizer(**kwargs)


def test_wrong_input_width_raises():
    vq = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match="last axis is 3"):
        vq(np.zeros((2, 5), "float32"))


def test_docstring_example_runs():
    import doctest

    from keras_ssl.layers import vector_quantizer

    result = doctest.testmod(vector_quantizer, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
