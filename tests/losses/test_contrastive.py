"""NT-Xent against an independent NumPy reference on fixed inputs."""

import math

import keras
import numpy as np
import pytest

from keras_ssl.losses import NTXentLoss, l2_normalize, nt_xent_loss


def reference_nt_xent(z1, z2, temperature):
    """Eq. 1 of SimCLR, written with loops over the 2N anchors."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        positive = (i + n2 // 2) % n2
        denominator = sum(
            math.exp(z[i] @ z[k] / temperature) for k in range(n2) if k != i
        )
        total += -math.log(math.exp(z[i] @ z[positive] / temperature) / denominator)
    return total / n2


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("n,d", [(2, 3), (7, 16), (32, 8)])
def test_matches_reference(n, d, temperature):
    rng = np.random.default_rng(n * d)
    z1 = rng.normal(size=(n, d)).astype("float32")
    z2 = (z1 + 0.5 * rng.normal(size=(n, d))).astype("float32")
    got = float(keras.ops.convert_to_numpy(nt_xent_loss(z1, z2, temperature)))
    assert abs(got - reference_nt_xent(z1, z2, temperature)) <= 1e-5 * max(
        1.0, abs(got)
    )


def test_is_symmetric_in_the_two_views_and_scale_invariant():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(2, 6, 5)).astype("float32")
    a = keras.ops.convert_to_numpy(nt_xent_loss(z1, z2))
    b = keras.ops.convert_to_numpy(nt_xent_loss(z2, 3.0 * z1))
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_perfect_alignment_beats_random_pairs():
    z = np.eye(8, dtype="float32")
    aligned = float(keras.ops.convert_to_numpy(nt_xent_loss(z, z, 0.1)))
    shuffled = float(keras.ops.convert_to_numpy(nt_xent_loss(z, z[::-1], 0.1)))
    assert aligned < 0.01 < shuffled


def test_runs_in_float32_for_half_precision_inputs():
    z = np.random.default_rng(0).normal(size=(4, 8)).astype("float16")
    loss = nt_xent_loss(z, z)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"


def test_rejects_non_positive_temperature():
    z = np.ones((2, 2), "float32")
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, 0.0)


def test_loss_wrapper_and_config():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(2, 4, 3)).astype("float32")
    loss = NTXentLoss(temperature=0.2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss(None, (z1, z2))),
        reference_nt_xent(z1, z2, 0.2),
        rtol=1e-5,
    )
    restored = NTXentLoss.from_config(loss.get_config())
    assert restored.temperature == 0.2


def test_l2_normalize_keeps_zero_vectors_finite():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], "float32")
    out = keras.ops.convert_to_numpy(l2_normalize(x))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)


def test_split_batch_with_the_gathered_batch_averages_to_the_global_loss():
    """What each replica computes under tf.distribute: its own anchors
    against the gathered global batch. The replicas' mean is the loss of the
    whole batch on one device; without the gathered batch it is not."""
    rng = np.random.default_rng(3)
    z1, z2 = rng.normal(size=(2, 12, 8)).astype("float32")
    whole = float(nt_xent_loss(z1, z2, 0.3))
    parts = [
        float(nt_xent_loss(z1[s : s + 4], z2[s : s + 4], 0.3, z1, z2, s))
        for s in (0, 4, 8)
    ]
    np.testing.assert_allclose(np.mean(parts), whole, rtol=1e-5)
    local = [float(nt_xent_loss(z1[s : s + 4], z2[s : s + 4], 0.3))
             for s in (0, 4, 8)]
    assert abs(np.mean(local) - whole) > 1e-2
