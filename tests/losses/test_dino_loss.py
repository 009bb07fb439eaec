"""DINO's loss, center update and temperature schedule against NumPy references."""

import math

import keras
import numpy as np
import pytest

from keras_ssl.losses.dino import (
    dino_loss,
    teacher_entropy,
    teacher_temperature_schedule,
    update_center,
)


def reference_dino_loss(student, teacher, center, student_temp, teacher_temp):
    """Eq. 3 of DINO with loops: teacher view i against student view v != i."""
    total, terms = 0.0, 0
    for i, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == i:
                continue
            pair = 0.0
            for b in range(len(t)):
                q = [math.exp((t[b, k] - center[k]) / teacher_temp) for k in range(len(center))]
                q = [x / sum(q) for x in q]
                log_norm = math.log(sum(math.exp(x / student_temp) for x in s[b]))
                pair -= sum(q[k] * (s[b, k] / student_temp - log_norm) for k in range(len(q)))
            total += pair / len(t)
            terms += 1
    return total / terms


def _logits(rng, n, b, k, scale=1.0):
    return [(scale * rng.normal(size=(b, k))).astype("float32") for _ in range(n)]


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("temps", [(0.1, 0.04), (0.1, 0.07), (0.5, 1.0)])
@pytest.mark.parametrize("views,b,k", [(2, 3, 5), (4, 4, 8), (6, 2, 16)])
def test_matches_reference(views, b, k, temps):
    rng = np.random.default_rng(views * 100 + k)
    student = _logits(rng, views, b, k)
    teacher = _logits(rng, 2, b, k)
    center = (0.3 * rng.normal(size=k)).astype("float32")
    got = float(_np(dino_loss(student, teacher, center, *temps)))
    want = reference_dino_loss(
        [s.astype("float64") for s in student],
        [t.astype("float64") for t in teacher],
        center.astype("float64"),
        *temps,
    )
    assert abs(got - want) <= 1e-5 * max(1.0, abs(want)), (got, want)


def test_tensor_teacher_temperature_and_skipped_same_view_pairs():
    rng = np.random.default_rng(0)
    student, teacher = _logits(rng, 3, 4, 6), _logits(rng, 2, 4, 6)
    center = np.zeros(6, "float32")
    a = dino_loss(student, teacher, center, 0.1, keras.ops.convert_to_tensor(0.05))
    np.testing.assert_allclose(
        _np(a), reference_dino_loss(student, teacher, center, 0.1, 0.05), rtol=1e-5
    )
    # Changing the student's view of global crop 0 changes only pairs with
    # teacher 1: with one teacher view, student view 0 is not used at all.
    other = [student[0] + 5.0 * rng.normal(size=(4, 6)).astype("float32")] + student[1:]
    one = dino_loss(student, teacher[:1], center, 0.1, 0.04)
    np.testing.assert_allclose(
        _np(one), _np(dino_loss(other, teacher[:1], center, 0.1, 0.04)), rtol=1e-6
    )


def test_no_gradient_flows_to_the_teacher_or_center():
    """The loss depends on the teacher only through stop_gradient: its
    value is a function of student logits whose gradient is the soft target
    difference (p_s - q) / tps, checked here by finite differences."""
    rng = np.random.default_rng(1)
    student, teacher = _logits(rng, 2, 2, 4), _logits(rng, 2, 2, 4)
    center = np.zeros(4, "float32")
    base = float(_np(dino_loss(student, teacher, center, 0.1, 0.04)))
    eps = 1e-2
    bumped = [student[0].copy(), student[1]]
    bumped[0][0, 0] += eps
    delta = float(_np(dino_loss(bumped, teacher, center, 0.1, 0.04))) - base
    s = student[0][0] / 0.1
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    t = teacher[1][0] / 0.04
    q = np.exp(t - t.max()) / np.exp(t - t.max()).sum()
    expected = (p[0] - q[0]) / 0.1 / 2 / 2  # batch mean, 2 pairs
    np.testing.assert_allclose(delta / eps, expected, rtol=0.05, atol=1e-3)


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_rejects_non_positive_temperatures(bad):
    s, t = [np.zeros((2, 3), "float32")] * 2, [np.zeros((2, 3), "float32")] * 2
    c = np.zeros(3, "float32")
    with pytest.raises(ValueError, match="student_temp"):
        dino_loss(s, t, c, bad, 0.04)
    with pytest.raises(ValueError, match="teacher_temp"):
        dino_loss(s, t, c, 0.1, bad)


def test_rejects_more_teacher_than_student_views():
    x = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match="no more teacher views"):
        dino_loss([x, x], [x, x, x], np.zeros(3, "float32"), 0.1, 0.04)


def test_update_center_matches_reference():
    rng = np.random.default_rng(2)
    teacher = _logits(rng, 2, 5, 7)
    center = rng.normal(size=7).astype("float32")
    got = _np(update_center(center, teacher, 0.9))
    want = 0.9 * center + 0.1 * np.concatenate(teacher).mean(axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_np(update_center(center, teacher[0], 0.0)),
                               teacher[0].mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        update_center(center, teacher, 1.5)


def test_teacher_temperature_schedule():
    values = [float(_np(teacher_temperature_schedule(s, 10, 0.04, 0.07)))
              for s in (0, 5, 10, 50)]
    np.testing.assert_allclose(values, [0.04, 0.055, 0.07, 0.07], rtol=1e-6)
    assert float(_np(teacher_temperature_schedule(0, 0, 0.04, 0.07))) == pytest.approx(0.07)
    with pytest.raises(ValueError, match="warmup_steps"):
        teacher_temperature_schedule(0, -1)
    with pytest.raises(ValueError, match="positive"):
        teacher_temperature_schedule(0, 10, 0.0, 0.07)


def test_teacher_entropy_at_the_two_collapses():
    k = 16
    uniform = [np.zeros((4, k), "float32")] * 2
    center = np.zeros(k, "float32")
    np.testing.assert_allclose(_np(teacher_entropy(uniform, center, 0.04)),
                               math.log(k), rtol=1e-6)
    one_hot = [np.tile(np.eye(k, dtype="float32")[:1], (4, 1)) * 10.0] * 2
    assert float(_np(teacher_entropy(one_hot, center, 0.04))) < 1e-6
    rng = np.random.default_rng(3)
    t = _logits(rng, 2, 3, k)
    q = [np.exp(x / 0.07) / np.exp(x / 0.07).sum(-1, keepdims=True) for x in t]
    want = np.mean([-(p * np.log(p)).sum(-1).mean() for p in q])
    np.testing.assert_allclose(_np(teacher_entropy(t, center, 0.07)), want, rtol=1e-5)
