"""MoCo v2 and v3: the key encoder's EMA, the queue, shuffling BN, saving and
resuming, configuration errors."""

import math

import keras
import numpy as np
import pytest

from conftest import JIT_COMPILE
from harness import IMAGE_SIZE, _two_fixed_views, tiny_encoder
from keras_ssl.losses import infonce_in_batch, infonce_with_queue
from keras_ssl.models.moco import MoCo, MoCoV3, enqueue

B = 16  # batch size of the fixed views


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _moco(**kwargs):
    kwargs.setdefault("queue_size", 64)
    return MoCo(tiny_encoder(), projection_dim=8, projection_hidden_dims=(16,),
                **kwargs)


def _mocov3(encoder=None, **kwargs):
    return MoCoV3(
        encoder or tiny_encoder(),
        projection_dim=8,
        projection_hidden_dims=(16, 16),
        prediction_hidden_dims=(16,),
        **kwargs,
    )


def _compiled(model, inputs, optimizer):
    model(inputs)
    model.compile(optimizer=optimizer, jit_compile=JIT_COMPILE)
    return model


def _step(model, inputs, steps=1):
    model.fit(x=inputs, batch_size=B, epochs=steps, shuffle=False, verbose=0)


def _views(images, batch):
    """Two deterministic views of the `batch`-th block of 16 images."""
    return _two_fixed_views(images[B * batch : B * (batch + 1)])


def _parameter_pairs(model):
    """(key, query) parameter pairs, matched by their path in the network."""
    key = model.key_encoder.weights + model.key_projector.weights
    query = model.encoder.weights + model.projector.weights
    pairs = []
    for k, q in zip(key, query):
        assert k.path.split("/")[-2:] == q.path.split("/")[-2:], (k.path, q.path)
        if q.trainable:
            pairs.append((k, q))
    assert len(pairs) == len(model.encoder.trainable_weights) + len(
        model.projector.trainable_weights
    )
    return pairs


def _perturb(pairs, seed=0):
    """Moves θk away from θq, so that an EMA that ran shows."""
    rng = np.random.default_rng(seed)
    for k, _ in pairs:
        value = _np(k)
        k.assign((value + 0.1 * rng.normal(size=value.shape)).astype(value.dtype))


def _cosine(k, base, total):
    return 1 - (1 - base) * (np.cos(np.pi * min(k, total) / total) + 1) / 2


@pytest.fixture
def inputs(small_images):
    return _views(small_images, 0)


# --- the key encoder ----------------------------------------------------------
@pytest.mark.parametrize(
    "build, momentum_at_step",
    [
        # One split: the EMA does not depend on shuffling BN (and compiles
        # faster).
        (lambda: _moco(momentum=0.9, shuffle_bn_splits=1), lambda k: 0.9),
        (lambda: _mocov3(momentum=0.9, total_steps=4),
         lambda k: _cosine(k, 0.9, 4)),
    ],
    ids=["v2-constant", "v3-cosine"],
)
def test_key_network_moves_by_the_exact_ema_rule_and_gets_no_gradient(
    inputs, build, momentum_at_step
):
    """θk ← m·θk + (1 − m)·θq after every step, whatever the optimizer does:
    AdamW's weight decay would move any variable the optimizer sees."""
    optimizer = keras.optimizers.AdamW(1e-2, weight_decay=0.5)
    model = _compiled(build(), inputs, optimizer)
    pairs = _parameter_pairs(model)
    assert len({v.path for v in model.weights}) == len(model.weights)
    trainable = {id(v) for v in model.trainable_variables}
    key_network = model.key_encoder.weights + model.key_projector.weights
    assert not any(id(v) in trainable for v in key_network)
    if isinstance(model, MoCoV3):
        # The predictor is on the query side only.
        assert all(id(v) in trainable for v in model.predictor.trainable_weights)
    _perturb(pairs)
    for k in range(3):
        before = [_np(t).copy() for t, _ in pairs]
        _step(model, inputs)
        assert int(_np(model.optimizer.iterations)) == k + 1
        m = momentum_at_step(k)
        for t0, (t, o) in zip(before, pairs):
            np.testing.assert_allclose(
                _np(t), m * t0 + (1 - m) * _np(o), rtol=1e-5, atol=1e-6
            )


def test_accumulation_moves_the_key_network_once_per_optimizer_step(
    small_images,
):
    """With gradient accumulation the EMA waits for the optimizer step, while
    every micro-batch's keys are enqueued."""
    optimizer = keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
    batches = [_views(small_images, i) for i in range(2)]
    model = _compiled(
        _moco(momentum=0.9, shuffle_bn_splits=1), batches[0], optimizer
    )
    pairs = _parameter_pairs(model)
    _perturb(pairs)
    before = [_np(t).copy() for t, _ in pairs]
    _step(model, batches[0])  # a micro-batch: no optimizer step, no EMA
    for t0, (t, _) in zip(before, pairs):
        np.testing.assert_array_equal(_np(t), t0)
    assert int(_np(model.queue_pointer)) == B
    _step(model, batches[1])  # the optimizer step, then the EMA
    for t0, (t, o) in zip(before, pairs):
        np.testing.assert_allclose(
            _np(t), 0.9 * t0 + 0.1 * _np(o), rtol=1e-5, atol=1e-6
        )
    assert int(_np(model.queue_pointer)) == 2 * B


# --- the queue ----------------------------------------------------------------
def test_enqueue_is_a_ring_buffer():
    queue = np.arange(12, dtype="float32").reshape(6, 2)
    keys = -np.arange(1, 9, dtype="float32").reshape(4, 2)
    new_queue, pointer = enqueue(queue, 4, keys)
    np.testing.assert_array_equal(
        _np(new_queue), [[-5, -6], [-7, -8], [4, 5], [6, 7], [-1, -2], [-3, -4]]
    )
    assert int(_np(pointer)) == 2


def test_queue_holds_earlier_keys_in_order_and_wraps_around(small_images):
    """After k steps (k·B ≤ K) rows [0, k·B) are the keys of those steps, in
    order; the third step wraps round and overwrites the oldest keys."""
    model = _compiled(
        _moco(queue_size=2 * B), _views(small_images, 0),
        keras.optimizers.SGD(0.1),
    )
    initial = _np(model.queue).copy()
    np.testing.assert_allclose(np.linalg.norm(initial, axis=1), 1.0, rtol=1e-5)
    assert int(_np(model.queue_pointer)) == 0
    expected = []
    for step in range(3):
        batch = _views(small_images, step)
        # The keys of this step: k2 = f_k(x_k) of the second views, computed
        # by the key network as it is before the step (the step's forward
        # pass runs before the EMA moves it).
        keys = model(batch, training=True)["keys"][0]
        expected.append(_unit(_np(keys)))
        _step(model, batch)
        queue = _np(model.queue)
        if step == 0:
            np.testing.assert_allclose(queue[:B], expected[0], atol=1e-5)
            np.testing.assert_array_equal(queue[B:], initial[B:])
        elif step == 1:
            np.testing.assert_allclose(
                queue, np.concatenate(expected), atol=1e-5
            )
        else:
            np.testing.assert_allclose(queue[:B], expected[2], atol=1e-5)
            np.testing.assert_allclose(queue[B:], expected[1], atol=1e-5)
        assert int(_np(model.queue_pointer)) == (step + 1) * B % (2 * B)
    # Keys of different images at different steps: the test is not vacuous.
    assert not np.allclose(expected[0], expected[1], atol=1e-2)
    # evaluate() computes the loss but does not enqueue.
    model.evaluate(x=_views(small_images, 3), batch_size=B, verbose=0)
    np.testing.assert_array_equal(_np(model.queue), queue)
    assert int(_np(model.queue_pointer)) == B


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.distribute only"
)
def test_mirrored_strategy_enqueues_the_global_batchs_keys(
    small_images, mirrored_strategy
):
    """Under `tf.distribute` (2 logical CPUs) each replica computes its half
    of the batch; the keys are gathered across replicas, so the queue takes
    the whole batch's keys in replica order (identical on every replica),
    and the key network moves once, by the EMA rule, towards the mirrored
    query network."""
    strategy = mirrored_strategy
    batch = _views(small_images, 0)  # 16 images, 8 per replica
    with strategy.scope():
        model = _moco(queue_size=32, momentum=0.9, shuffle_bn_splits=1)
        model(batch)
        pairs = _parameter_pairs(model)
        _perturb(pairs)
        # Each replica's keys, from the key network before the step.
        keys = np.concatenate([
            _unit(_np(model(tuple(v[s : s + B // 2] for v in batch),
                            training=True)["keys"][0]))
            for s in (0, B // 2)
        ])
        initial = _np(model.queue).copy()
        before = [_np(k).copy() for k, _ in pairs]
        # XLA cannot compile a step over several logical CPU devices.
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        model.fit(x=batch, batch_size=B, epochs=1, shuffle=False, verbose=0)
    assert int(_np(model.queue_pointer)) == B
    np.testing.assert_allclose(_np(model.queue)[:B], keys, atol=1e-5)
    np.testing.assert_array_equal(_np(model.queue)[B:], initial[B:])
    for k0, (k, q) in zip(before, pairs):
        np.testing.assert_allclose(
            _np(k), 0.9 * k0 + 0.1 * _np(q), rtol=1e-5, atol=1e-6
        )


def test_compute_loss_is_the_symmetrised_infonce_with_the_queue(inputs):
    model = _moco(queue_size=32)
    model(inputs)
    rng = np.random.default_rng(0)
    q1, q2, k1, k2 = rng.normal(size=(4, B, 8)).astype("float32")
    queue = _np(model.queue)
    y_pred = {"queries": (q1, q2), "keys": (k2, k1)}
    got = float(_np(model.compute_loss(y_pred=y_pred, training=False)))
    expected = (
        float(_np(infonce_with_queue(q1, k2, queue, 0.2)))
        + float(_np(infonce_with_queue(q2, k1, queue, 0.2)))
    ) / 2
    np.testing.assert_allclose(got, expected, rtol=1e-6)

    one_way = _moco(queue_size=32, symmetric=False)
    outputs = one_way(inputs)
    assert len(outputs["queries"]) == len(outputs["keys"]) == 1
    got = one_way.compute_loss(
        y_pred={"queries": (q1,), "keys": (k2,)}, training=False
    )
    np.testing.assert_allclose(
        float(_np(got)),
        float(_np(infonce_with_queue(q1, k2, _np(one_way.queue), 0.2))),
        rtol=1e-6,
    )


# --- batch norm ---------------------------------------------------------------
def test_shuffling_bn_emulation_normalises_queries_and_keys_on_other_subsets(
    inputs,
):
    """In training, queries come from contiguous halves of the batch and keys
    from interleaved halves, each with its own batch statistics."""
    model = _moco(shuffle_bn_splits=2)
    model(inputs)
    v1, v2 = inputs
    outputs = model(inputs, training=True)
    q1, k2 = _np(outputs["queries"][0]), _np(outputs["keys"][0])
    half = B // 2
    for rows in (slice(0, half), slice(half, B)):
        np.testing.assert_allclose(
            q1[rows], _np(model.query_features(v1[rows], training=True)),
            rtol=1e-4, atol=1e-5,
        )
    for start in (0, 1):
        np.testing.assert_allclose(
            k2[start::2],
            _np(model.key_features(v2[start::2], training=True)),
            rtol=1e-4, atol=1e-5,
        )
    # The split matters: whole-batch statistics give other projections.
    whole = _np(model.key_features(v2, training=True))
    assert not np.allclose(whole, k2, atol=1e-3)
    # In inference the networks run on the whole batch (moving statistics).
    np.testing.assert_allclose(
        _np(model(inputs)["keys"][0]), _np(model.key_features(v2)),
        rtol=1e-4, atol=1e-5,
    )


def test_loss_is_not_trivially_solved_at_step_one(inputs):
    """At random initialisation the positive does not stand out from the
    queue: its similarity is far from 1, the negatives' is about 0, and the
    loss is near chance, log(K + 1).

    With the MoCo v2 paper's head (no batch norm) the untrained network maps
    every image to almost the same direction while the queue starts as
    random unit vectors, so every positive towers over the negatives at step
    1 — the reason for `projection_batch_norm=True`.
    """
    size = 1024

    def step_one(**kwargs):
        keras.utils.set_random_seed(0)
        model = MoCo(
            tiny_encoder(), projection_dim=128, projection_hidden_dims=(128,),
            queue_size=size, **kwargs,
        )
        y_pred = model(inputs, training=True)
        loss = float(_np(model.compute_loss(y_pred=y_pred, training=False)))
        metrics = {k: float(_np(v.result())) for k, v in model._trackers.items()}
        return loss, metrics

    chance = math.log(size + 1)
    loss, metrics = step_one()
    assert metrics["positive_similarity"] < 0.75, metrics
    assert abs(metrics["negative_similarity"]) < 0.05, metrics
    assert loss > 0.5 * chance, (loss, chance, metrics)

    paper_loss, paper_metrics = step_one(projection_batch_norm=False)
    assert paper_metrics["positive_similarity"] > 0.85, paper_metrics
    assert paper_loss < loss - 1.0, (paper_loss, loss)


# --- saving and resuming ------------------------------------------------------
def test_keras_round_trip_restores_the_queue_and_resumes(small_images, tmp_path):
    """The key network, the queue and its pointer are saved; a loaded model
    continues training exactly where the saved one was. (The shared harness
    checks the round trip of MoCoV3 too.)"""
    batches = [_views(small_images, i) for i in range(3)]
    model = _compiled(  # one BN split: compiles faster, same saved state
        _moco(momentum=0.9, shuffle_bn_splits=1),
        batches[0],
        keras.optimizers.Adam(1e-2),
    )
    _step(model, batches[0])
    _step(model, batches[1])
    path = tmp_path / "moco.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert int(_np(loaded.optimizer.iterations)) == 2
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(_np(a), _np(b))
    assert int(_np(loaded.queue_pointer)) == 2 * B
    np.testing.assert_array_equal(_np(loaded.queue), _np(model.queue))
    assert not any(
        v.trainable
        for v in loaded.key_encoder.weights + loaded.key_projector.weights
    )
    # Resuming continues from the same state: same key network, queue,
    # pointer and query network after one more step.
    _step(model, batches[2])
    _step(loaded, batches[2])
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-4, atol=1e-5)


# --- MoCo v3 ------------------------------------------------------------------
def test_v3_loss_is_twice_tau_times_the_symmetrised_in_batch_infonce(inputs):
    model = _mocov3(temperature=0.5)
    model(inputs)
    assert not hasattr(model, "queue")
    rng = np.random.default_rng(1)
    q1, q2, k1, k2 = rng.normal(size=(4, B, 8)).astype("float32")
    got = model.compute_loss(y_pred={"queries": (q1, q2), "keys": (k2, k1)})
    expected = 2 * 0.5 * (
        float(_np(infonce_in_batch(q1, k2, 0.5)))
        + float(_np(infonce_in_batch(q2, k1, 0.5)))
    )
    np.testing.assert_allclose(float(_np(got)), expected, rtol=1e-6)
    # negative_similarity: the mean cosine of q_i with the other keys k_j.
    q, k = _unit(q1), _unit(k2)
    off_diagonal = (q @ k.T)[~np.eye(B, dtype=bool)].mean()
    q, k = _unit(q2), _unit(k1)
    off_diagonal = (off_diagonal + (q @ k.T)[~np.eye(B, dtype=bool)].mean()) / 2
    np.testing.assert_allclose(
        float(_np(model._trackers["negative_similarity"].result())),
        off_diagonal,
        atol=1e-5,
    )


@pytest.mark.slow  # compiles four ViT passes
def test_v3_trains_a_vit_backbone(inputs):
    import keras_hub

    vit = keras_hub.models.ViTBackbone(
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), patch_size=8, num_layers=1,
        num_heads=2, hidden_dim=16, mlp_dim=32,
    )
    model = _compiled(
        _mocov3(vit, momentum=0.9), inputs, keras.optimizers.Adam(1e-3)
    )
    pairs = _parameter_pairs(model)
    before = [(_np(k).copy(), _np(q).copy()) for k, q in pairs]
    history = model.fit(x=inputs, batch_size=B, epochs=1, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert set(history.history) >= {
        "positive_similarity", "negative_similarity", "representation_std"
    }
    assert any(not np.array_equal(q0, _np(q)) for (_, q0), (_, q) in zip(before, pairs))
    assert any(not np.array_equal(k0, _np(k)) for (k0, _), (k, _) in zip(before, pairs))


# --- configuration ------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"momentum": 1.5}, "momentum.*in \\[0, 1\\]"),
        ({"momentum": -0.1}, "momentum.*in \\[0, 1\\]"),
        ({"final_momentum": 2.0}, "final_momentum.*in \\[0, 1\\]"),
        ({"temperature": 0.0}, "temperature.*positive"),
        ({"temperature": -0.2}, "temperature.*positive"),
        ({"queue_size": 0}, "queue_size.*integer >= 1"),
        ({"queue_size": 2.5}, "queue_size.*integer >= 1"),
        ({"queue_size": True}, "queue_size.*integer >= 1"),
        ({"shuffle_bn_splits": 0}, "shuffle_bn_splits.*integer >= 1"),
        ({"total_steps": 0}, "total_steps.*integer >= 1"),
    ],
)
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _moco(**kwargs)
    if "queue_size" not in kwargs and "shuffle_bn_splits" not in kwargs:
        with pytest.raises(ValueError, match=message):
            _mocov3(**kwargs)


def test_batch_size_must_divide_the_queue(small_images):
    views = _two_fixed_views(small_images[:12])
    with pytest.raises(ValueError, match="queue_size.*64.*divisible by the batch size.*12"):
        _moco(queue_size=64)(views)  # at build
    model = _moco(queue_size=36)
    model(views)  # 36 keys = 3 batches of 12
    with pytest.raises(ValueError, match="divisible by the batch size \\(8\\)"):
        model(_two_fixed_views(small_images[:8]), training=True)
    model.compile(optimizer="sgd", jit_compile=JIT_COMPILE)
    with pytest.raises(ValueError, match="divisible by the batch size \\(8\\)"):
        model.fit(x=_two_fixed_views(small_images[:16]), batch_size=8, verbose=0)
    small = tuple(v[:6] for v in views)
    with pytest.raises(ValueError, match="at least 8 images \\(2 per split\\)"):
        _moco(queue_size=36, shuffle_bn_splits=4)(small, training=True)


def test_config_round_trip():
    model = _moco(momentum=0.97, temperature=0.1, symmetric=False,
                  shuffle_bn_splits=4, projection_batch_norm=False,
                  total_steps=10)
    restored = MoCo.from_config(model.get_config())
    for name in (
        "projection_dim", "projection_hidden_dims", "queue_size",
        "temperature", "momentum", "final_momentum", "total_steps",
        "symmetric", "shuffle_bn_splits", "projection_batch_norm",
    ):
        assert getattr(restored, name) == getattr(model, name), name
    v3 = _mocov3(momentum=0.95, total_steps=7)
    restored = MoCoV3.from_config(v3.get_config())
    for name in ("prediction_hidden_dims", "momentum", "total_steps"):
        assert getattr(restored, name) == getattr(v3, name), name
