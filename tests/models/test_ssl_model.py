"""The training core: after_step on every backend, loss scaling, helpers."""

import keras
import numpy as np
import pytest
from keras import ops

from conftest import BACKEND, JIT_COMPILE
from keras_ssl.models import SSLModel, pool_features


class EMAToy(SSLModel):
    """A toy method with an EMA target and a step counter moved in after_step."""

    def __init__(self, momentum=0.9, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        reg = keras.regularizers.L2(l2) if l2 else None
        self.encoder = keras.layers.Dense(3, kernel_regularizer=reg, name="online")
        self.target = keras.layers.Dense(3, name="target")
        self.target.trainable = False
        self.momentum = momentum
        self.steps_seen = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="steps_seen"
        )
        self.add_metric_trackers("target_gap")

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.target.build(input_shape)
        for t, o in zip(self.target.weights, self.encoder.weights):
            t.assign(ops.convert_to_numpy(o))  # copy values, never the buffer

    def call(self, x, training=False):
        return self.encoder(x), self.target(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        online, target = y_pred
        self.track(target_gap=ops.mean(ops.abs(online - target)))
        return ops.mean(ops.square(online - 1.0))

    def after_step(self):
        self.steps_seen.assign(self.steps_seen + 1.0)
        self.ema_update(self.target.weights, self.encoder.weights, self.momentum)


def _fit_one_step(model, x, lr=0.1, jit_compile=JIT_COMPILE):
    model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=jit_compile)
    return model.fit(x, epochs=1, batch_size=len(x), verbose=0, shuffle=False)


def test_after_step_moves_target_by_exact_ema_rule():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model = EMAToy(momentum=0.9)
    model.build((None, 4))
    target_before = [ops.convert_to_numpy(w).copy() for w in model.target.weights]
    history = _fit_one_step(model, x)
    online_after = [ops.convert_to_numpy(w) for w in model.encoder.weights]
    for t0, o1, t1 in zip(target_before, online_after, model.target.weights):
        np.testing.assert_allclose(
            ops.convert_to_numpy(t1), 0.9 * t0 + 0.1 * o1, rtol=1e-5, atol=1e-6
        )
    assert float(ops.convert_to_numpy(model.steps_seen)) == 1.0
    assert "target_gap" in history.history


def test_after_step_runs_once_per_step_and_target_gets_no_gradient():
    x = np.random.default_rng(1).normal(size=(32, 4)).astype("float32")
    model = EMAToy(momentum=0.5)
    model.build((None, 4))
    assert all(not w.trainable for w in model.target.weights)
    assert len(model.trainable_weights) == 2
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)
    model.fit(x, epochs=2, batch_size=8, verbose=0)
    assert float(ops.convert_to_numpy(model.steps_seen)) == 8.0


def test_regularisation_losses_are_added_to_the_objective():
    x = np.ones((4, 4), "float32")
    plain, regularised = EMAToy(), EMAToy(l2=10.0)
    plain.build((None, 4))
    regularised.build((None, 4))
    regularised.set_weights(plain.get_weights())
    for m in (plain, regularised):
        m.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=JIT_COMPILE)
    l_plain = plain.evaluate(x, batch_size=4, verbose=0, return_dict=True)["loss"]
    l_reg = regularised.evaluate(x, batch_size=4, verbose=0, return_dict=True)["loss"]
    kernel = ops.convert_to_numpy(regularised.encoder.kernel)
    np.testing.assert_allclose(l_reg - l_plain, 10.0 * np.sum(kernel**2), rtol=1e-4)


def test_ema_update_checks_lengths():
    with pytest.raises(ValueError, match="as many target as online"):
        SSLModel.ema_update([keras.Variable(1.0)], [], 0.9)


@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 5), (2, 3, 4, 5)])
def test_pool_features(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    pooled = ops.convert_to_numpy(pool_features(x))
    axes = tuple(range(1, len(shape) - 1))
    np.testing.assert_allclose(pooled, x.mean(axis=axes) if axes else x, rtol=1e-6)


def test_pool_features_rejects_rank_5():
    with pytest.raises(ValueError, match="rank 2, 3 or 4"):
        pool_features(np.zeros((1, 1, 1, 1, 1), "float32"))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_mirrored_strategy_scales_loss_and_gradients(mirrored_strategy):
    """2 replicas × B/2 examples give the loss and update of 1 device × B."""
    x = np.random.default_rng(2).normal(size=(8, 4)).astype("float32")
    single = EMAToy()
    single.build((None, 4))
    init = single.get_weights()
    h_single = _fit_one_step(single, x)

    strategy = mirrored_strategy
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        mirrored = EMAToy()
        mirrored.build((None, 4))
        mirrored.set_weights(init)
        # XLA cannot compile a step whose variables live on several logical
        # CPU devices (TF "known issues"); real multi-GPU runs can jit.
        h_mirrored = _fit_one_step(mirrored, x, jit_compile=False)
    np.testing.assert_allclose(
        h_mirrored.history["loss"], h_single.history["loss"], rtol=1e-5
    )
    for a, b in zip(mirrored.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_clone_as_target_copies_values_not_buffers():
    from keras_ssl.backbones import CIFARResNetBackbone
    from keras_ssl.layers import MLPHead
    from keras_ssl.models import clone_as_target

    backbone = CIFARResNetBackbone((4,), (1,), image_shape=(8, 8, 3))
    target = clone_as_target(backbone)
    assert not target.trainable and target.name == f"target_{backbone.name}"
    for a, b in zip(backbone.weights, target.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    backbone.weights[0].assign(np.zeros(backbone.weights[0].shape, "float32"))
    assert np.any(ops.convert_to_numpy(target.weights[0]) != 0)

    paths = [v.path for v in backbone.weights] + [v.path for v in target.weights]
    assert len(set(paths)) == len(paths), "the copy must not share variable paths"

    head = MLPHead((4,), 2)
    head.build((None, 3))
    head_target = clone_as_target(head, input_shape=(None, 3))
    assert len(head_target.weights) == len(head.weights)
    with pytest.raises(ValueError, match="input_shape"):
        clone_as_target(MLPHead((4,), 2))


def test_cosine_schedule_matches_byol_formula():
    from keras_ssl.models import cosine_schedule

    base, total = 0.996, 100
    for k in (0, 25, 50, 100, 150):
        expected = 1 - (1 - base) * (np.cos(np.pi * min(k, total) / total) + 1) / 2
        got = float(ops.convert_to_numpy(cosine_schedule(k, total, base, 1.0)))
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_freeze_reaches_the_sublayers_of_a_deserialised_model():
    from keras_ssl.models import freeze

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    config = keras.saving.serialize_keras_object(outer)
    config["config"]["trainable"] = False
    loaded = keras.saving.deserialize_keras_object(config)
    freeze(loaded)
    assert not loaded.trainable and loaded.trainable_variables == []
    assert not any(w.trainable for w in loaded.weights)
    assert not inner.trainable or inner is not loaded.layers[0]
