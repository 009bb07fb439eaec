"""Runs the shared harness (tests/harness.py) on every method and backend."""

import keras
import keras_hub
import numpy as np
import pytest

from conftest import JIT_COMPILE
from harness import (
    CASES,
    deterministic_loss,
    load_goldens,
)

ids = [case.name for case in CASES]
BATCH = 32


@pytest.fixture(scope="module", params=CASES, ids=ids)
def trained(request, small_images):
    """A tiny model of each method fitted a few jit-compiled epochs."""
    keras.utils.set_random_seed(0)
    case = request.param
    model = case.build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(case.learning_rate),
        jit_compile=JIT_COMPILE,
    )
    dataset = case.make_dataset(small_images, BATCH)
    history = model.fit(
        dataset, epochs=4, steps_per_epoch=6, verbose=0, shuffle=False
    )
    return case, model, history, dataset


def _outputs(model, inputs):
    return [
        keras.ops.convert_to_numpy(o)
        for o in keras.tree.flatten(model(inputs, training=False))
    ]


def test_fit_lowers_the_loss_on_real_images(trained):
    _, _, history, _ = trained
    losses = history.history["loss"]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses


def test_metrics_are_logged_and_evaluate_runs(trained):
    case, model, history, dataset = trained
    for name in case.metrics:
        assert name in history.history
    results = model.evaluate(dataset, steps=2, verbose=0, return_dict=True)
    assert np.isfinite(results["loss"])
    assert set(case.metrics) <= set(results)


def test_keras_round_trip_is_identical(trained, small_images, tmp_path):
    case, model, _, _ = trained
    path = tmp_path / f"{case.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    inputs = case.fixed_inputs(small_images)
    for a, b in zip(_outputs(model, inputs), _outputs(loaded, inputs)):
        np.testing.assert_array_equal(a, b)
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations)


_CLASSIFIER_TRAINED = set()


def _architecture(encoder):
    """An encoder's class and config, without its (numbered) name."""
    config = {k: v for k, v in encoder.get_config().items() if k != "name"}
    return type(encoder).__name__, repr(sorted(config.items()))


def test_encoder_exports_and_reloads_as_backbone(trained, digits, tmp_path):
    case, model, _, _ = trained
    encoder = model.encoder
    images = np.asarray(digits.x_train[:64, :16, :16])
    features = keras.ops.convert_to_numpy(encoder(images, training=False))

    encoder.save(tmp_path / "encoder.keras")
    reloaded = keras.saving.load_model(tmp_path / "encoder.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(images, training=False)),
        features,
        rtol=1e-6,
        atol=1e-6,
    )
    if isinstance(encoder, keras_hub.models.Backbone):
        encoder.save_to_preset(str(tmp_path / "preset"))
        from_preset = keras_hub.models.Backbone.from_preset(
            str(tmp_path / "preset")
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(from_preset(images, training=False)),
            features,
            rtol=1e-6,
            atol=1e-6,
        )
    # A downstream classifier over the reloaded backbone trains: once per
    # encoder architecture (most methods share the harness's tiny ResNet;
    # what differs between them, the trained weights, reloads above).
    architecture = _architecture(encoder)
    if architecture in _CLASSIFIER_TRAINED:
        return
    _CLASSIFIER_TRAINED.add(architecture)
    # Backbones return feature maps or tokens (keras-hub's convention).
    layers = [keras.Input(images.shape[1:]), reloaded]
    pooling = {4: keras.layers.GlobalAveragePooling2D,
               3: keras.layers.GlobalAveragePooling1D}.get(len(features.shape))
    if pooling is not None:
        layers.append(pooling())
    classifier = keras.Sequential([*layers, keras.layers.Dense(10)])
    classifier.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT_COMPILE,
    )
    labels = np.asarray(digits.y_train[:64])
    before = reloaded.get_weights()
    h = classifier.fit(images, labels, epochs=2, batch_size=32, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, reloaded.get_weights())
    )


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_same_loss_on_every_backend(case, small_images):
    goldens = load_goldens()
    assert case.name in goldens, (
        f"no golden loss for {case.name}: run `python tests/make_goldens.py "
        f"{case.name}`"
    )
    loss = deterministic_loss(case, small_images)
    np.testing.assert_allclose(loss, goldens[case.name], rtol=1e-5,
                               atol=case.golden_atol)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_bad_inputs_raise_clear_errors(case):
    model = case.build_model()
    for inputs, message in case.bad_inputs():
        with pytest.raises(ValueError, match=message):
            model(inputs)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_bad_inputs_fail_clearly_inside_fit(case):
    model = case.build_model()
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    inputs, message = case.bad_inputs()[4]  # a batch of one image
    with pytest.raises(ValueError, match=message):
        model.fit(x=inputs, batch_size=1, epochs=1, verbose=0)


def test_every_registered_method_is_in_the_harness():
    from keras_ssl.models import METHODS

    assert set(METHODS) <= set(ids), set(METHODS) - set(ids)
