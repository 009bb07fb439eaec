"""DINO on every backend: teacher EMA, center, schedules, saving, configuration."""

import math
import pathlib
import sys
import warnings

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from cases_dino import fixed_crops, free_size_encoder, tiny_dino  # noqa: E402
from conftest import JIT_COMPILE  # noqa: E402
from keras_ssl.backbones import CIFARResNetBackbone  # noqa: E402
from keras_ssl.callbacks import DINOCollapseMonitor  # noqa: E402
from keras_ssl.models.dino import DINO  # noqa: E402
from keras_ssl.models.ssl_model import with_free_image_size  # noqa: E402


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _weights(variables):
    return [_np(w).copy() for w in variables]


def _parameters(model):
    """(teacher, student): the student's trainable parameters and their
    teacher copies, the pairs the EMA moves (not batch-norm statistics)."""
    teacher = model.teacher_encoder.weights + model.teacher_head.weights
    student = model.encoder.weights + model.head.weights
    pairs = [(t, s) for t, s in zip(teacher, student) if s.trainable]
    assert pairs and len(teacher) == len(student)
    return [t for t, _ in pairs], [s for _, s in pairs]


def _one_step(model, inputs, lr=0.1):
    model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=JIT_COMPILE)
    return model.fit(x=inputs, batch_size=16, epochs=1, verbose=0, shuffle=False)


@pytest.fixture(scope="module")
def stepped(small_images):
    """A tiny DINO before and after one jit-compiled SGD step."""
    inputs = fixed_crops(small_images)
    model = tiny_dino(teacher_momentum=0.99, warmup_teacher_temp_steps=10)
    model(inputs)
    teacher_vars = model.teacher_encoder.weights + model.teacher_head.weights
    student_vars = model.encoder.weights + model.head.weights
    before = {"copies": all(
        np.array_equal(_np(t), _np(s)) for t, s in zip(teacher_vars, student_vars)
    )}
    model.center.assign(np.random.default_rng(0).normal(size=32).astype("float32"))
    before["center"] = _np(model.center).copy()
    # The teacher normalises with batch statistics in training: its outputs
    # there do not depend on its moving statistics.
    _, teacher_out = model(inputs, training=True)
    before["batch_mean"] = np.concatenate([_np(t) for t in teacher_out]).mean(axis=0)
    before["teacher"] = _weights(_parameters(model)[0])
    bn = next(
        layer for layer in model.teacher_encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    before["teacher_moving_mean"] = _np(bn.moving_mean).copy()
    before["temp"] = float(_np(model.current_teacher_temp))
    history = _one_step(model, inputs)
    return model, inputs, before, history


def test_one_step_moves_teacher_by_ema_center_and_temperature(stepped):
    model, _, before, history = stepped
    teacher_vars = model.teacher_encoder.weights + model.teacher_head.weights
    student_vars = model.encoder.weights + model.head.weights
    # The teacher starts as a copy of the student, and is never trained.
    assert before["copies"]
    trainable = {id(w) for w in model.trainable_weights}
    assert all(id(w) not in trainable for w in teacher_vars)
    assert not model.teacher_encoder.trainable_weights
    assert not model.teacher_head.trainable_weights
    assert before["temp"] == pytest.approx(0.04)

    assert int(_np(model.optimizer.iterations)) == 1
    teacher_vars, student_vars = _parameters(model)
    student_after = _weights(student_vars)
    # θt ← l·θt + (1 − l)·θs with l = 0.99 at the first step.
    for t0, s1, t1 in zip(before["teacher"], student_after, teacher_vars):
        np.testing.assert_allclose(_np(t1), 0.99 * t0 + 0.01 * s1, rtol=1e-5, atol=1e-6)
    assert any(
        not np.allclose(t0, _np(t1)) for t0, t1 in zip(before["teacher"], teacher_vars)
    )
    # The teacher normalised with batch statistics (as DINO's code, whose
    # teacher stays in training mode), which its moving statistics track.
    bn = next(
        layer for layer in model.teacher_encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert not np.array_equal(_np(bn.moving_mean), before["teacher_moving_mean"])
    # C ← m·C + (1 − m)·mean of the teacher outputs of the batch.
    m = model.center_momentum
    assert m == 0.5
    np.testing.assert_allclose(
        _np(model.center),
        m * before["center"] + (1 - m) * before["batch_mean"],
        rtol=1e-4, atol=1e-5,
    )
    # τt for the next step: 0.04 + 0.03 · 1/10.
    assert float(_np(model.current_teacher_temp)) == pytest.approx(0.043, rel=1e-5)
    for name in ("loss", "teacher_entropy", "teacher_student_kl"):
        assert np.isfinite(history.history[name][0])


def test_momentum_follows_the_cosine_schedule_to_one(small_images):
    inputs = fixed_crops(small_images)
    model = tiny_dino(teacher_momentum=0.5, total_steps=2)
    model(inputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)
    model.fit(x=inputs, batch_size=16, epochs=1, verbose=0, shuffle=False)
    teacher_vars, student_vars = _parameters(model)
    before = _weights(teacher_vars)
    # Step 2 of 2: l = 1 − 0.5·(cos(π/2) + 1)/2 = 0.75; a third step: l = 1.
    model.fit(x=inputs, batch_size=16, epochs=1, verbose=0, shuffle=False)
    student = _weights(student_vars)
    for t0, s1, t1 in zip(before, student, teacher_vars):
        np.testing.assert_allclose(_np(t1), 0.75 * t0 + 0.25 * s1, rtol=1e-5, atol=1e-6)
    before = _weights(teacher_vars)
    model.fit(x=inputs, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for t0, t1 in zip(before, teacher_vars):
        np.testing.assert_allclose(_np(t1), t0, rtol=1e-6, atol=1e-7)


def test_evaluate_does_not_move_the_center(small_images):
    inputs = fixed_crops(small_images)
    model = tiny_dino()
    model(inputs)
    model.compile(optimizer="sgd", jit_compile=JIT_COMPILE)
    model.evaluate(x=inputs, batch_size=16, verbose=0)
    np.testing.assert_array_equal(_np(model.center), np.zeros(32, "float32"))


def test_keras_round_trip_restores_teacher_center_and_temperature(stepped, tmp_path):
    model, inputs, _, _ = stepped
    model.save(tmp_path / "dino.keras")
    loaded = keras.saving.load_model(tmp_path / "dino.keras")
    assert isinstance(loaded, DINO) and loaded.get_config() == model.get_config()
    for a, b in [
        (model.teacher_encoder.weights, loaded.teacher_encoder.weights),
        (model.teacher_head.weights, loaded.teacher_head.weights),
        ([model.center, model.current_teacher_temp],
         [loaded.center, loaded.current_teacher_temp]),
    ]:
        for x, y in zip(a, b):
            np.testing.assert_array_equal(_np(x), _np(y))
    assert float(_np(loaded.current_teacher_temp)) == pytest.approx(0.043, rel=1e-5)
    y_a, y_b = model(inputs), loaded(inputs)
    loss_a = model.compute_loss(y_pred=y_a, training=False)
    loss_b = loaded.compute_loss(y_pred=y_b, training=False)
    np.testing.assert_allclose(_np(loss_a), _np(loss_b), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"teacher_momentum": 1.5}, "teacher_momentum"),
        ({"teacher_momentum": -0.1}, "teacher_momentum"),
        ({"final_teacher_momentum": 1.01}, "final_teacher_momentum"),
        ({"center_momentum": -0.5}, "center_momentum"),
        ({"student_temp": 0.0}, "student_temp"),
        ({"teacher_temp": -0.07}, "teacher_temp"),
        ({"warmup_teacher_temp": 0.0}, "warmup_teacher_temp"),
        ({"num_local_crops": -1}, "num_local_crops"),
        ({"warmup_teacher_temp_steps": -1}, "warmup_teacher_temp_steps"),
        ({"total_steps": 0}, "total_steps"),
        ({"output_dim": 0}, "output_dim"),
    ],
)
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_dino(**kwargs)


def test_mismatched_crops_raise(small_images):
    g1, g2, l1, l2 = fixed_crops(small_images)
    model = tiny_dino()
    with pytest.raises(ValueError, match="4 views per example, got 5"):
        model((g1, g2, l1, l2, l2))
    with pytest.raises(ValueError, match="global crops must have the same shape"):
        model((g1, l1, l1, l2))
    with pytest.raises(ValueError, match="same batch size"):
        model((g1, g2, l1[:4], l2[:4]))


def test_encoder_of_fixed_size_is_rejected_clearly(small_images):
    encoder = CIFARResNetBackbone((8,), (1,), image_shape=(16, 16, 3))
    model = DINO(encoder, output_dim=8, hidden_dims=(8,), bottleneck_dim=4,
                 num_local_crops=2)
    with pytest.raises(ValueError, match=r"image_shape=\(None, None, 3\)"):
        model(fixed_crops(small_images))


def test_collapse_monitor_warns_and_stops():
    model = tiny_dino()
    monitor = DINOCollapseMonitor(stop_training=True)
    monitor.set_model(model)
    model.stop_training = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor.on_epoch_end(0, {"teacher_entropy": 0.5 * math.log(32)})
    assert not model.stop_training and monitor.collapses == []
    with pytest.warns(UserWarning, match="collapse \\(uniform\\)"):
        monitor.on_epoch_end(1, {"teacher_entropy": math.log(32)})
    assert model.stop_training
    with pytest.warns(UserWarning, match="collapse \\(one-hot\\)"):
        monitor.on_epoch_end(2, {"teacher_entropy": 1e-4})
    assert [kind for _, kind, _ in monitor.collapses] == ["uniform", "one-hot"]
    patient = DINOCollapseMonitor(patience=2, output_dim=32)
    patient.set_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        patient.on_epoch_end(0, {"teacher_entropy": 0.0})
    with pytest.warns(UserWarning):
        patient.on_epoch_end(1, {"teacher_entropy": 0.0})
    with pytest.raises(ValueError, match="one_hot_fraction"):
        DINOCollapseMonitor(uniform_fraction=0.1, one_hot_fraction=0.2)


def test_with_free_image_size_keeps_weights_for_global_and_local_crops():
    encoder = CIFARResNetBackbone((8, 16), (1, 1), image_shape=(32, 32, 3))
    model = DINO(
        with_free_image_size(encoder), output_dim=256, hidden_dims=(512, 512),
        bottleneck_dim=128, use_batch_norm_in_head=True, num_local_crops=4,
        student_temp=0.1, teacher_temp=0.02, warmup_teacher_temp=0.02,
        warmup_teacher_temp_steps=0, teacher_momentum=0.99,
        final_teacher_momentum=1.0, total_steps=30,
    )
    assert model.encoder is not encoder
    assert model.encoder.get_config()["image_shape"][:2] in ([None, None], (None, None))
    assert len(encoder.weights) == len(model.encoder.weights)
    for a, b in zip(encoder.weights, model.encoder.weights):
        np.testing.assert_array_equal(_np(a), _np(b))
    rng = np.random.default_rng(0)
    crops = tuple(rng.random((2, 32, 32, 3)).astype("float32") for _ in range(2)) + tuple(
        rng.random((2, 16, 16, 3)).astype("float32") for _ in range(4)
    )
    student, teacher = model(crops)
    assert len(student) == 6 and len(teacher) == 2
    assert tuple(student[5].shape) == (2, 256)
    free = free_size_encoder()
    assert with_free_image_size(free) is free
