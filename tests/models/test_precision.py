"""Mixed precision for every method of the shared harness (tests/harness.py).

Each case is built under `mixed_bfloat16` and `mixed_float16` with the same
deterministic weights as a float32 model and trained a few steps on its
fixed inputs; the losses must be finite and close to float32's, the loss a
float32 tensor, and every variable (weights, EMA targets, queues, centers,
codebooks, step counters) stored in float32 or an integer type: the
numerically sensitive state never lives in half precision.

Tolerances: bfloat16 keeps 8 significant bits (relative rounding 2⁻⁸ ≈ 4e-3
per operation) and float16 11 bits (2⁻¹¹ ≈ 5e-4); a tiny network rounds
through ~10 layers and 3 optimizer steps, so errors of ~10 roundings are
expected: rtol 5e-2 for bfloat16 and 1e-2 for float16 (about 10× one
rounding). The losses also pass an absolute tolerance of 1e-2 (losses that
start near 0, e.g. a reconstruction MSE).

Cost: 3 models (float32, bfloat16, float16) of every method, each trained 3
jit-compiled steps, means one compilation per model and backend (XLA
compiles each model's step; eager JAX compiles op by op). The default suite
runs the whole check on the first harness case (SimCLR) and the dtype check
of every method's state; the full method × policy matrix is marked `slow`
and runs only with `KERAS_SSL_FULL_MATRIX=1` (the suite does not deselect
`slow` by default); it passes on all three backends.
"""


import keras
import numpy as np
import pytest

from conftest import JIT_COMPILE
from harness import CASES, matrix_params, set_deterministic_weights

STEPS = 3
POLICIES = {"mixed_bfloat16": 5e-2, "mixed_float16": 1e-2}
ATOL = 1e-2
# SimCLR runs by default; every method with KERAS_SSL_FULL_MATRIX=1.
PARAMS = matrix_params({"simclr"})


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _train(case, images, policy):
    """`(model, losses of STEPS steps, loss dtype)` under `policy`."""
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = case.build_model()
        inputs = case.fixed_inputs(images)
        model(inputs)  # build
        set_deterministic_weights(model)
        model.compile(
            optimizer=keras.optimizers.Adam(case.learning_rate),
            jit_compile=JIT_COMPILE,
        )
        y_pred = model(inputs, training=False)
        loss = model.compute_loss(x=inputs, y_pred=y_pred, training=False)
        loss_dtype = keras.backend.standardize_dtype(loss.dtype)
        losses = [
            float(model.train_on_batch(x=inputs, return_dict=True)["loss"])
            for _ in range(STEPS)
        ]
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    return model, losses, loss_dtype


_reference = {}


def _float32_losses(case, images):
    if case.name not in _reference:
        _reference[case.name] = _train(case, images, "float32")[1]
    return _reference[case.name]


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("case", PARAMS)
def test_mixed_precision_loss_matches_float32(
    case, policy, small_images, restore_policy
):
    expected = _float32_losses(case, small_images)
    model, losses, loss_dtype = _train(case, small_images, policy)
    assert model.dtype_policy.name == policy
    assert np.all(np.isfinite(losses)), losses
    np.testing.assert_allclose(losses, expected, rtol=POLICIES[policy], atol=ATOL)
    # The objective is reduced in float32 ...
    assert loss_dtype == "float32", loss_dtype
    # ... and no state is kept in half precision: weights, EMA targets and
    # teachers, queues, centers, codebooks, counters.
    half = [
        v.path
        for v in model.weights
        if keras.backend.standardize_dtype(v.dtype) in ("float16", "bfloat16")
    ]
    assert not half, half
    if policy == "mixed_float16":
        # compile wraps the optimizer for dynamic loss scaling.
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # The optimizer took every step (no step was skipped as non-finite).
    assert int(_np(model.optimizer.iterations)) == STEPS


def test_sensitive_state_of_every_method_is_float32():
    """Named sensitive state, built under mixed_float16, stays float32."""
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        names = ("queue", "center", "codebook", "ema_cluster_size", "ema_sums",
                 "tau", "current_teacher_temp")
        seen = set()
        for case in CASES:
            model = case.build_model()
            for v in model.weights:
                name = v.path.split("/")[-1]
                if name in names:
                    seen.add(name)
                    assert keras.backend.standardize_dtype(v.dtype) == "float32", v.path
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert {"queue", "codebook"} <= seen, seen
