"""BYOL: the EMA target, its momentum schedule, saving/resuming, config."""

import keras
import numpy as np
import pytest

from conftest import JIT_COMPILE
from harness import _two_fixed_views, tiny_encoder
from keras_ssl.models.byol import BYOL

K = 4  # total_steps of the small models below


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _model(**kwargs):
    kwargs.setdefault("total_steps", K)
    return BYOL(
        tiny_encoder(),
        projection_dim=8,
        projection_hidden_dims=(16,),
        prediction_hidden_dims=(16,),
        **kwargs,
    )


def _built(inputs, optimizer, **kwargs):
    model = _model(**kwargs)
    model(inputs)
    model.compile(optimizer=optimizer, jit_compile=JIT_COMPILE)
    return model


def _step(model, inputs, steps=1):
    model.fit(x=inputs, batch_size=16, epochs=steps, shuffle=False, verbose=0)


def _parameter_pairs(model):
    """(target, online) parameter pairs, matched by their path in the network."""
    target = model.target_encoder.weights + model.target_projector.weights
    online = model.encoder.weights + model.projector.weights
    pairs = []
    for t, o in zip(target, online):
        assert t.path.split("/")[-2:] == o.path.split("/")[-2:], (t.path, o.path)
        if o.trainable:
            pairs.append((t, o))
    assert len(pairs) == len(model.encoder.trainable_weights) + len(
        model.projector.trainable_weights
    )
    return pairs


def _perturb_target(pairs, seed=0):
    """Moves ξ away from θ, so that an EMA that ran shows."""
    rng = np.random.default_rng(seed)
    for t, _ in pairs:
        value = _np(t)
        t.assign((value + 0.1 * rng.normal(size=value.shape)).astype(value.dtype))


def _formula(k, base, total=K):
    return 1 - (1 - base) * (np.cos(np.pi * min(k, total) / total) + 1) / 2


@pytest.fixture
def inputs(small_images):
    return _two_fixed_views(small_images)


def test_schedule_values_against_the_formula():
    model = _model(base_momentum=0.996, total_steps=1000)
    for k, expected in [(0, 0.996), (500, 0.998), (1000, 1.0), (1500, 1.0)]:
        got = float(_np(model.momentum_at(k)))
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_allclose(got, _formula(k, 0.996, 1000), rtol=1e-6)


def test_target_moves_by_the_exact_ema_rule_and_gets_no_gradient(inputs):
    """ξ ← τ_k ξ + (1 − τ_k) θ after step k, whatever the optimizer does.

    AdamW's weight decay would move any variable the optimizer sees; the
    exact EMA rule below holds only if the target is not among them.
    """
    base = 0.9
    optimizer = keras.optimizers.AdamW(1e-2, weight_decay=0.5)
    model = _built(inputs, optimizer, base_momentum=base)
    pairs = _parameter_pairs(model)
    # Unique paths: the torch backend registers parameters by path.
    assert len({v.path for v in model.weights}) == len(model.weights)
    trainable = {id(v) for v in model.trainable_variables}
    assert not any(
        id(v) in trainable
        for v in model.target_encoder.weights + model.target_projector.weights
    )
    bn = next(
        layer
        for layer in model.target_encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    moving_mean = _np(bn.moving_mean).copy()
    _perturb_target(pairs)
    for k in range(3):  # k = 0, 1, K/2
        before = [_np(t).copy() for t, _ in pairs]
        _step(model, inputs)
        assert int(_np(model.optimizer.iterations)) == k + 1
        tau = _formula(k, base)
        np.testing.assert_allclose(float(_np(model.tau)), tau, rtol=1e-6)
        for t0, (t, o) in zip(before, pairs):
            np.testing.assert_allclose(
                _np(t), tau * t0 + (1 - tau) * _np(o), rtol=1e-5, atol=1e-6
            )
    np.testing.assert_allclose(float(_np(model.tau)), (1 + base) / 2, rtol=1e-6)
    # The target normalised with batch statistics, which it also tracks.
    assert not np.array_equal(_np(bn.moving_mean), moving_mean)


def test_target_moves_once_per_optimizer_step_with_accumulation(inputs):
    base = 0.9
    optimizer = keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
    model = _built(inputs, optimizer, base_momentum=base)
    pairs = _parameter_pairs(model)
    _perturb_target(pairs)
    for k in range(2):
        before = [_np(t).copy() for t, _ in pairs]
        _step(model, inputs)  # a micro-batch: no optimizer step, no EMA
        for t0, (t, _) in zip(before, pairs):
            np.testing.assert_array_equal(_np(t), t0)
        _step(model, inputs)  # the optimizer step k, then the EMA with τ_k
        tau = _formula(k, base)
        np.testing.assert_allclose(float(_np(model.tau)), tau, rtol=1e-6)
        for t0, (t, o) in zip(before, pairs):
            np.testing.assert_allclose(
                _np(t), tau * t0 + (1 - tau) * _np(o), rtol=1e-5, atol=1e-6
            )


def test_keras_round_trip_restores_the_target_and_resumes(inputs, tmp_path):
    model = _built(inputs, keras.optimizers.Adam(1e-2), base_momentum=0.9)
    _step(model, inputs, steps=2)
    model.save(tmp_path / "byol.keras")
    loaded = keras.saving.load_model(tmp_path / "byol.keras")
    assert isinstance(loaded, BYOL) and loaded.total_steps == K
    assert int(_np(loaded.optimizer.iterations)) == 2
    for a, b in zip(model.weights, loaded.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(_np(a), _np(b))
    assert not any(
        v.trainable
        for v in loaded.target_encoder.weights + loaded.target_projector.weights
    )
    # Resuming continues from the same state, schedule position included.
    _step(model, inputs)
    _step(loaded, inputs)
    np.testing.assert_allclose(float(_np(loaded.tau)), _formula(2, 0.9), rtol=1e-6)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_momentum": 1.5}, "base_momentum.*in \\[0, 1\\]"),
        ({"base_momentum": -0.1}, "base_momentum.*in \\[0, 1\\]"),
        ({"final_momentum": 2.0}, "final_momentum.*in \\[0, 1\\]"),
        ({"total_steps": 0}, "total_steps.*integer >= 1"),
        ({"total_steps": -3}, "total_steps.*integer >= 1"),
        ({"total_steps": 2.5}, "total_steps.*integer >= 1"),
        ({"total_steps": True}, "total_steps.*integer >= 1"),
    ],
)
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_config_round_trip():
    model = _model(base_momentum=0.97, final_momentum=0.999, total_steps=10)
    restored = BYOL.from_config(model.get_config())
    for name in (
        "total_steps",
        "projection_dim",
        "projection_hidden_dims",
        "prediction_hidden_dims",
        "base_momentum",
        "final_momentum",
    ):
        assert getattr(restored, name) == getattr(model, name), name
