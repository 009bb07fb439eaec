"""Tests for keras_ssl.optimizers.LARS."""

import numpy as np
import pytest

import keras
from keras_ssl.optimizers import LARS, warmup_cosine_schedule


def reference_lars(
    weights,
    gradients,
    learning_rates,
    momentum,
    weight_decay,
    eta,
    nesterov,
    decay,
    adapt,
):
    """Plain NumPy (float64) LARS, one variable, step by step."""
    w = np.array(weights, dtype=np.float64)
    velocity = np.zeros_like(w)
    for g, lr in zip(gradients, learning_rates):
        g = np.array(g, dtype=np.float64)
        if decay:
            g = g + weight_decay * w
        trust = 1.0
        if adapt:
            w_norm = np.sqrt(np.sum(w * w))
            g_norm = np.sqrt(np.sum(g * g))
            if w_norm > 0 and g_norm > 0:
                trust = eta * w_norm / g_norm
        velocity = momentum * velocity + lr * trust * g
        if nesterov:
            w = w - (momentum * velocity + lr * trust * g)
        else:
            w = w - velocity
    return w


def run_optimizer(optimizer, initial_values, gradient_steps):
    """Applies `gradient_steps` (a list of per-variable lists) eagerly."""
    variables = [
        keras.Variable(value, name=f"v{i}")
        for i, value in enumerate(initial_values)
    ]
    for gradients in gradient_steps:
        optimizer.apply(
            [keras.ops.convert_to_tensor(g) for g in gradients], variables
        )
    return [keras.ops.convert_to_numpy(v) for v in variables]


RNG = np.random.default_rng(0)
MATRIX = RNG.normal(size=(4, 3)).astype("float32")
BIAS = RNG.normal(size=(3,)).astype("float32")
STEPS = [
    [
        RNG.normal(size=(4, 3)).astype("float32") * scale,
        RNG.normal(size=(3,)).astype("float32"),
    ]
    for scale in (1.0, 10.0, 0.1, 3.0)
]


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_numpy_reference(nesterov):
    hyper = dict(momentum=0.9, weight_decay=0.05, eta=0.3)
    optimizer = LARS(learning_rate=0.5, nesterov=nesterov, **hyper)
    matrix, bias = run_optimizer(optimizer, [MATRIX, BIAS], STEPS)

    lrs = [0.5] * len(STEPS)
    expected_matrix = reference_lars(
        MATRIX, [s[0] for s in STEPS], lrs, nesterov=nesterov,
        decay=True, adapt=True, **hyper,
    )
    # Rank-1 variables: no decay, no adaptation, i.e. momentum SGD.
    expected_bias = reference_lars(
        BIAS, [s[1] for s in STEPS], lrs, nesterov=nesterov,
        decay=False, adapt=False, **hyper,
    )
    np.testing.assert_allclose(matrix, expected_matrix, atol=1e-6)
    np.testing.assert_allclose(bias, expected_bias, atol=1e-6)
    # The trust ratio really was in play: plain SGD would differ a lot.
    sgd_matrix = reference_lars(
        MATRIX, [s[0] for s in STEPS], lrs, nesterov=nesterov,
        decay=False, adapt=False, **hyper,
    )
    assert np.abs(sgd_matrix - expected_matrix).max() > 0.1


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="no XLA compilation on torch"
)
def test_compiled_update_matches_numpy_reference():
    hyper = dict(momentum=0.9, weight_decay=0.05, eta=0.3)
    optimizer = LARS(learning_rate=0.5, nesterov=True, **hyper)
    variables = [keras.Variable(MATRIX), keras.Variable(BIAS)]
    optimizer.build(variables)
    if keras.backend.backend() == "jax":
        import jax

        step = jax.jit(optimizer.stateless_apply)
        values = [v.value for v in variables]
        opt_values = [v.value for v in optimizer.variables]
        for gradients in STEPS:
            values, opt_values = step(opt_values, gradients, values)
    else:
        import tensorflow as tf

        step = tf.function(
            lambda gradients: optimizer.apply(gradients, variables),
            jit_compile=True,
        )
        for gradients in STEPS:
            step([tf.constant(g) for g in gradients])
        values = variables
    matrix, bias = (keras.ops.convert_to_numpy(v) for v in values)
    lrs = [0.5] * len(STEPS)
    np.testing.assert_allclose(
        matrix,
        reference_lars(MATRIX, [s[0] for s in STEPS], lrs, nesterov=True,
                       decay=True, adapt=True, **hyper),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        bias,
        reference_lars(BIAS, [s[1] for s in STEPS], lrs, nesterov=True,
                       decay=False, adapt=False, **hyper),
        atol=1e-6,
    )


def test_without_momentum_is_scaled_sgd():
    optimizer = LARS(
        learning_rate=0.5, momentum=0.0, weight_decay=0.05, eta=0.3
    )
    (matrix,) = run_optimizer(optimizer, [MATRIX], [[s[0]] for s in STEPS])
    expected = reference_lars(
        MATRIX, [s[0] for s in STEPS], [0.5] * len(STEPS), momentum=0.0,
        weight_decay=0.05, eta=0.3, nesterov=False, decay=True, adapt=True,
    )
    np.testing.assert_allclose(matrix, expected, atol=1e-6)
    assert len(optimizer.momentums) == 0


def test_zero_gradient_and_zero_weight_use_trust_ratio_one():
    zero_w = np.zeros((3, 2), "float32")
    w = np.ones((3, 2), "float32")
    g = np.full((3, 2), 2.0, "float32")
    optimizer = LARS(
        learning_rate=0.1, momentum=0.9, weight_decay=0.0, eta=0.01
    )
    new_zero_w, new_w = run_optimizer(
        optimizer, [zero_w, w], [[g, np.zeros_like(g)]]
    )
    # ||w|| = 0: trust 1, so a plain SGD step.
    np.testing.assert_allclose(new_zero_w, -0.1 * g, atol=1e-7)
    # ||g|| = 0: trust 1 (not nan / inf), nothing moves.
    np.testing.assert_allclose(new_w, w, atol=1e-7)


def test_zero_gradient_with_weight_decay():
    w = np.full((2, 2), 3.0, "float32")
    optimizer = LARS(
        learning_rate=0.1, momentum=0.9, weight_decay=0.5, eta=0.01
    )
    (new_w,) = run_optimizer(optimizer, [w], [[np.zeros_like(w)]] * 2)
    expected = reference_lars(
        w, [np.zeros_like(w)] * 2, [0.1, 0.1], momentum=0.9, weight_decay=0.5,
        eta=0.01, nesterov=False, decay=True, adapt=True,
    )
    np.testing.assert_allclose(new_w, expected, atol=1e-6)
    assert np.all(new_w < w)


def test_name_exclusions():
    steps = [[s[0], s[0]] for s in STEPS]
    hyper = dict(momentum=0.9, weight_decay=0.05, eta=0.3)
    lrs = [0.5] * len(STEPS)
    matrix_steps = [s[0] for s in STEPS]

    # Adaptation excluded by path pattern, decay kept.
    optimizer = LARS(
        learning_rate=0.5, exclude_from_layer_adaptation=["v1"], **hyper
    )
    kept, excluded = run_optimizer(optimizer, [MATRIX, MATRIX], steps)
    np.testing.assert_allclose(
        kept,
        reference_lars(MATRIX, matrix_steps, lrs, nesterov=False,
                       decay=True, adapt=True, **hyper),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        excluded,
        reference_lars(MATRIX, matrix_steps, lrs, nesterov=False,
                       decay=True, adapt=False, **hyper),
        atol=1e-6,
    )

    # Base-class decay exclusion also removes adaptation when
    # `exclude_from_layer_adaptation` is None (SimCLR's default).
    optimizer = LARS(learning_rate=0.5, **hyper)
    optimizer.exclude_from_weight_decay(var_names=["v1"])
    kept, excluded = run_optimizer(optimizer, [MATRIX, MATRIX], steps)
    np.testing.assert_allclose(
        excluded,
        reference_lars(MATRIX, matrix_steps, lrs, nesterov=False,
                       decay=False, adapt=False, **hyper),
        atol=1e-6,
    )


def test_base_class_decoupled_decay_is_off():
    optimizer = LARS(weight_decay=0.1)
    assert optimizer.weight_decay is None
    assert optimizer.weight_decay_rate == 0.1
    assert optimizer.get_config()["weight_decay"] == 0.1


def test_learning_rate_schedule():
    schedule = warmup_cosine_schedule(0.5, total_steps=6, warmup_steps=2)
    hyper = dict(momentum=0.9, weight_decay=0.05, eta=0.3)
    optimizer = LARS(learning_rate=schedule, **hyper)
    (matrix,) = run_optimizer(optimizer, [MATRIX], [[s[0]] for s in STEPS])
    lrs = [float(schedule(step)) for step in range(len(STEPS))]
    assert lrs[0] == 0.0 and lrs[2] == pytest.approx(0.5)
    expected = reference_lars(
        MATRIX, [s[0] for s in STEPS], lrs, nesterov=False,
        decay=True, adapt=True, **hyper,
    )
    np.testing.assert_allclose(matrix, expected, atol=1e-6)


def test_warmup_cosine_schedule_values():
    schedule = warmup_cosine_schedule(0.6, total_steps=100, warmup_steps=10)
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.3)
    assert float(schedule(10)) == pytest.approx(0.6)
    assert float(schedule(55)) == pytest.approx(0.3, abs=1e-6)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-7)
    assert float(schedule(1000)) == pytest.approx(0.0, abs=1e-7)

    no_warmup = warmup_cosine_schedule(0.6, total_steps=100, warmup_steps=0)
    assert float(no_warmup(0)) == pytest.approx(0.6)
    assert float(no_warmup(100)) == pytest.approx(0.0, abs=1e-7)

    floor = warmup_cosine_schedule(
        1.0, total_steps=20, warmup_steps=5, alpha=0.1
    )
    assert float(floor(20)) == pytest.approx(0.1)

    with pytest.raises(ValueError):
        warmup_cosine_schedule(0.1, total_steps=10, warmup_steps=10)


def tiny_regression():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = x @ rng.normal(size=(8, 1))
    y = (y / y.std()).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(1),
        ]
    )
    return model, x, y


def test_jit_compiled_fit_decreases_loss():
    keras.utils.set_random_seed(0)
    model, x, y = tiny_regression()
    model.compile(
        optimizer=LARS(learning_rate=0.1, eta=0.5, nesterov=True),
        loss="mse",
        jit_compile=keras.backend.backend() != "torch",
    )
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


def test_get_config_round_trip():
    schedule = warmup_cosine_schedule(0.3, total_steps=50, warmup_steps=5)
    optimizer = LARS(
        learning_rate=schedule,
        momentum=0.8,
        weight_decay=1e-4,
        eta=0.002,
        nesterov=True,
        exclude_from_layer_adaptation=["head"],
        global_clipnorm=1.0,
        name="my_lars",
    )
    config = optimizer.get_config()
    restored = LARS.from_config(dict(config))  # from_config mutates its input
    assert restored.get_config() == config
    assert restored.weight_decay is None
    assert restored.weight_decay_rate == 1e-4
    assert restored.exclude_from_layer_adaptation == ["head"]
    assert float(restored.learning_rate) == pytest.approx(0.0)

    serialized = keras.optimizers.serialize(LARS(momentum=0.5))
    assert isinstance(keras.optimizers.deserialize(serialized), LARS)

    with pytest.raises(ValueError):
        LARS(momentum=1.0)
    with pytest.raises(ValueError):
        LARS(eta=0.0)


def test_model_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model, x, y = tiny_regression()
    model.compile(
        optimizer=LARS(learning_rate=0.5, weight_decay=1e-3), loss="mse"
    )
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)

    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, LARS)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    assert len(restored.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    restored.fit(x, y, batch_size=32, epochs=1, verbose=0)
