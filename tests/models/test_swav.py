"""SwAV specifics beyond the shared harness: frozen prototypes, the queue
(filled from its start step, newest first, used once full), the global
Sinkhorn over tf.distribute replicas with a full queue, configuration
errors."""

import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import harness  # noqa: E402,F401  (discovers the cases before cases_swav)
from cases_swav import fixed_crops, tiny_swav  # noqa: E402
from conftest import BACKEND, JIT_COMPILE  # noqa: E402
from harness import MethodCase, tiny_encoder  # noqa: E402

B = 16  # the fixed crops' batch
QUEUE = 32


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _outputs(model, inputs):
    """`model(inputs)` as NumPy (one compiled predict under JAX)."""
    if BACKEND == "jax":
        return model.predict(inputs, batch_size=B, verbose=0)
    return keras.tree.map_structure(_np, model(inputs))


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference_sinkhorn(scores, epsilon=0.05, iterations=3):
    """The official `distributed_sinkhorn` on one device, in float64."""
    q = np.exp(scores.astype("float64") / epsilon).T
    k, b = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(axis=1, keepdims=True) * k
        q /= q.sum(axis=0, keepdims=True) * b
    return (q * b).T


@pytest.fixture(scope="module")
def stepped(small_images):
    """A tiny SwAV (prototypes frozen for 2 steps, a queue of 2 batches
    filled from step 1) and its state before and after each of 4 SGD steps
    on the same crops."""
    inputs = fixed_crops(small_images)
    model = tiny_swav(
        queue_size=QUEUE, queue_start_step=1, freeze_prototypes_steps=2
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)

    def state():
        return {
            "prototypes": _np(model.prototypes).copy(),
            "projector": _np(model.projector.weights[0]).copy(),
            "queue": _np(model.queue).copy(),
            "count": int(_np(model.queue_count)),
            "steps_done": int(_np(model.steps_done)),
        }

    model.build(tuple(x.shape for x in inputs))
    states, losses = [state()], []
    for _ in range(4):
        logs = model.train_on_batch(x=inputs, return_dict=True)
        losses.append(logs["loss"])
        states.append(state())
    return model, inputs, states, losses


def test_prototypes_are_frozen_then_move(stepped):
    _, _, states, losses = stepped
    assert np.all(np.isfinite(losses))
    assert [s["steps_done"] for s in states] == [0, 1, 2, 3, 4]
    c = [s["prototypes"] for s in states]
    # Steps 0 and 1: no gradient reaches C, while the rest trains.
    np.testing.assert_array_equal(c[1], c[0])
    np.testing.assert_array_equal(c[2], c[0])
    assert not np.array_equal(states[1]["projector"], states[0]["projector"])
    # From step 2 on, C learns.
    assert not np.allclose(c[3], c[2])
    assert not np.allclose(c[4], c[3])


def test_queue_fills_from_its_start_step_newest_first(stepped):
    _, _, states, _ = stepped
    assert [s["count"] for s in states] == [0, 0, B, QUEUE, QUEUE]
    queues = [s["queue"] for s in states]
    assert queues[0].shape == (2, QUEUE, 8)
    # Step 0 is before queue_start_step: nothing pushed.
    np.testing.assert_array_equal(queues[1], 0.0)
    # Step 1 pushes each global crop's z (unit rows) in front ...
    np.testing.assert_allclose(
        np.linalg.norm(queues[2][:, :B], axis=-1), 1.0, rtol=1e-5
    )
    np.testing.assert_array_equal(queues[2][:, B:], 0.0)
    assert not np.allclose(queues[2][0, :B], queues[2][1, :B])
    # ... and every later step shifts the rows back, the oldest dropping out.
    for before, after in zip(queues[2:], queues[3:]):
        np.testing.assert_array_equal(after[:, B:], before[:, :B])
        assert not np.allclose(after[:, :B], before[:, :B])


def test_codes_use_the_queue_once_it_is_full(stepped):
    """Full queue: the codes of crop i are the batch's rows of Sinkhorn over
    [queue_i · normalise(C)ᵀ; batch scores]; not full: of Sinkhorn over the
    batch's scores alone."""
    model, inputs, _, _ = stepped
    outputs = _outputs(model, inputs)
    scores, z = outputs["scores"], outputs["embeddings"]
    queue = _np(model.queue)
    prototypes = _unit(_np(model.prototypes))

    def codes():
        return [_np(q) for q in model.assign_codes(scores[:2], z)]

    with_queue = codes()
    model.queue_count.assign(QUEUE - B)
    try:
        alone = codes()
    finally:
        model.queue_count.assign(QUEUE)
    for i in range(2):
        joint = np.concatenate([queue[i] @ prototypes.T, scores[i]])
        np.testing.assert_allclose(
            with_queue[i], reference_sinkhorn(joint)[QUEUE:], rtol=1e-3,
            atol=1e-6,
        )
        np.testing.assert_allclose(
            alone[i], reference_sinkhorn(scores[i]), rtol=1e-3, atol=1e-6
        )
        assert np.abs(with_queue[i] - alone[i]).max() > 1e-2
    # Computing codes outside training pushes nothing.
    np.testing.assert_array_equal(_np(model.queue), queue)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_mirrored_replicas_share_one_sinkhorn_over_the_queue(
    small_images, mirrored_strategy
):
    """2 replicas of 8 images with a full queue: each gathers the global
    crops' scores, runs Sinkhorn over [queue; global batch] and keeps its
    rows, and both push the whole batch: the same step as one device
    (the harness's check, tests/models/test_distribution.py, starts with an
    empty queue)."""
    from test_distribution import assert_same_step, one_step

    def full_queue_swav():
        model = tiny_swav(queue_size=QUEUE, queue_start_step=0,
                          freeze_prototypes_steps=0)
        # Full (set_deterministic_weights then gives the rows fixed values).
        model.queue.assign(
            np.random.default_rng(0).normal(size=(2, QUEUE, 8)).astype("float32")
        )
        model.queue_count.assign(QUEUE)
        return model

    case = MethodCase("swav_full_queue", full_queue_swav, None, fixed_crops,
                      None)
    inputs = fixed_crops(small_images)
    kwargs = dict(jit_compile=False, run_eagerly=True,
                  synchronized_batch_norm=True)
    expected = one_step(case, inputs, **kwargs)
    got = one_step(case, inputs, mirrored_strategy.scope(), **kwargs)
    assert got[2].distribute_strategy is mirrored_strategy
    assert_same_step(got, expected)
    after, before = got[1]["queue"]
    np.testing.assert_array_equal(after[:, B:], before[:, : QUEUE - B])


def test_queue_size_must_divide_the_global_batch(small_images):
    model = tiny_swav(queue_size=24)
    with pytest.raises(ValueError, match=r"divisible by the global batch size \(16\)"):
        model(fixed_crops(small_images))


def test_bad_configuration_and_encoder_raise(small_images):
    model = tiny_swav()
    encoder = model.encoder
    for kwargs, message in [
        ({"temperature": 0.0}, "temperature` must be positive"),
        ({"sinkhorn_epsilon": -1.0}, "sinkhorn_epsilon` must be positive"),
        ({"num_prototypes": 0}, "num_prototypes` must be an integer >= 1"),
        ({"projection_dim": 2.5}, "projection_dim` must be an integer"),
        ({"sinkhorn_iterations": 0}, "sinkhorn_iterations` must be an integer >= 1"),
        ({"num_local_crops": -1}, "num_local_crops` must be an integer >= 0"),
        ({"queue_size": -64}, "queue_size` must be an integer >= 0"),
        ({"queue_start_step": 1.5}, "queue_start_step` must be an integer"),
        ({"freeze_prototypes_steps": -1}, "freeze_prototypes_steps` must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            type(model)(encoder, **kwargs)
    # Local crops need an encoder of free image size.
    fixed = type(model)(tiny_encoder(), num_prototypes=16, projection_dim=8,
                        projection_hidden_dims=(16,), num_local_crops=2)
    with pytest.raises(ValueError, match="free image size"):
        fixed(fixed_crops(small_images))
