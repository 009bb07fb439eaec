"""SimSiam's, Barlow Twins' and VICReg's objectives against NumPy references
written from the papers' definitions (loops over entries, float64)."""

import keras
import numpy as np
import pytest

from keras_ssl.losses.barlow_twins import barlow_twins_loss, cross_correlation
from keras_ssl.losses.simsiam import simsiam_loss
from keras_ssl.losses.vicreg import vicreg_loss, vicreg_terms


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _pair(n=12, d=5, seed=0):
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(n, d))
    z2 = 0.6 * z1 + rng.normal(size=(n, d))
    return z1.astype("float32"), z2.astype("float32")


def reference_simsiam(p1, p2, z1, z2):
    """½D(p1, z2) + ½D(p2, z1), D = −cos averaged over the batch (eq. 1-3)."""
    def d(p, z):
        return -np.mean([a @ b / np.linalg.norm(a) / np.linalg.norm(b)
                         for a, b in zip(p.astype(float), z.astype(float))])
    return 0.5 * d(p1, z2) + 0.5 * d(p2, z1)


def reference_barlow_twins(z1, z2, lam):
    """Eq. 1-2: C_ij = Σ_b za_bi zb_bj / (sqrt(Σ_b za_bi²) sqrt(Σ_b zb_bj²))
    on batch-centred embeddings; Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²."""
    a = z1.astype(float) - z1.mean(0)
    b = z2.astype(float) - z2.mean(0)
    d = a.shape[1]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = (a[:, i] @ b[:, j]) / np.sqrt((a[:, i] ** 2).sum() * (b[:, j] ** 2).sum())
            loss += (1 - c) ** 2 if i == j else lam * c ** 2
    return loss


def reference_vicreg(z1, z2, lam=25.0, mu=25.0, nu=1.0, gamma=1.0, eps=1e-4):
    """Eqs. 1-6 of VICReg, entry by entry."""
    z1, z2 = z1.astype(float), z2.astype(float)
    n, d = z1.shape
    s = sum(np.sum((z1[i] - z2[i]) ** 2) for i in range(n)) / (n * d)

    def v(z):
        return np.mean([max(0.0, gamma - np.sqrt(np.var(z[:, j], ddof=1) + eps))
                        for j in range(d)])

    def c(z):
        cov = np.cov(z, rowvar=False)  # unbiased, (d, d)
        return sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d

    return lam * s + mu * (v(z1) + v(z2)) + nu * (c(z1) + c(z2)), (s, v(z1) + v(z2), c(z1) + c(z2))


def test_simsiam_matches_reference_and_stops_gradients():
    rng = np.random.default_rng(1)
    p1, p2, z1, z2 = rng.normal(size=(4, 6, 8)).astype("float32")
    np.testing.assert_allclose(float(_np(simsiam_loss(p1, p2, z1, z2))),
                               reference_simsiam(p1, p2, z1, z2), atol=1e-6)
    # −1 when predictions align with the other view (any scale).
    assert float(_np(simsiam_loss(z2, z1, 3 * z1, 2 * z2))) == pytest.approx(-1.0, abs=1e-6)


@pytest.mark.parametrize("lam", [5e-3, 0.5])
def test_barlow_twins_matches_reference(lam):
    z1, z2 = _pair()
    np.testing.assert_allclose(float(_np(barlow_twins_loss(z1, z2, lam))),
                               reference_barlow_twins(z1, z2, lam), rtol=1e-4)


def test_barlow_twins_cross_correlation_is_the_identity_for_equal_whitened_views():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(64, 4)))  # orthonormal, centred below
    z = (q - q.mean(0)).astype("float32")
    z = z / z.std(0)
    c = _np(cross_correlation(z, z))
    np.testing.assert_allclose(np.diag(c), np.ones(4), atol=1e-3)
    assert float(_np(barlow_twins_loss(z, z))) < float(_np(barlow_twins_loss(z, z[::-1])))


def test_vicreg_matches_reference_terms():
    z1, z2 = _pair(n=16, d=6, seed=3)
    z1 = 0.3 * z1  # std below gamma: the variance hinge is active
    expected, terms = reference_vicreg(z1, z2)
    np.testing.assert_allclose(float(_np(vicreg_loss(z1, z2))), expected, rtol=1e-4)
    np.testing.assert_allclose([float(_np(t)) for t in vicreg_terms(z1, z2)],
                               terms, rtol=1e-4, atol=1e-6)
    weighted, _ = reference_vicreg(z1, z2, lam=1.0, mu=2.0, nu=3.0)
    got = vicreg_loss(z1, z2, invariance_weight=1.0, variance_weight=2.0,
                      covariance_weight=3.0)
    np.testing.assert_allclose(float(_np(got)), weighted, rtol=1e-4)


def test_collapse_is_penalised():
    """A collapsed embedding (every row equal) costs more than a spread one:
    what keeps the two methods from the trivial solution."""
    z1, z2 = _pair(n=32, d=4, seed=4)
    collapsed = np.tile(z1[:1], (32, 1)) + 1e-3 * z1
    assert float(_np(vicreg_loss(collapsed, collapsed))) > float(_np(vicreg_loss(z1, z1)))
    # Variance term: γ per branch when every dimension is constant.
    _, variance, _ = vicreg_terms(np.ones((8, 3), "float32"), np.ones((8, 3), "float32"))
    np.testing.assert_allclose(float(_np(variance)), 2 * (1 - np.sqrt(1e-4)), rtol=1e-5)


def test_half_precision_inputs_give_float32_losses():
    z1, z2 = _pair()
    for loss in (barlow_twins_loss(z1.astype("float16"), z2.astype("float16")),
                 vicreg_loss(z1.astype("float16"), z2.astype("float16")),
                 simsiam_loss(z1.astype("float16"), z2.astype("float16"), z1, z2)):
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"
