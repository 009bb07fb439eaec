"""Many devices, for every method of the harness (tests/harness.py).

The key property: one training step on N devices with global batch B gives
the same loss and the same updated weights - target networks, queues,
centers included - as one device with batch B.

- JAX: `keras.distribution.DataParallel` over 4 virtual CPU devices, and
  `ModelParallel` over a 2×2 mesh with `keras_ssl.distribution`'s layout
  map for the ViT backbone;
- TensorFlow: `tf.distribute.MirroredStrategy` over 2 logical CPUs, with
  synchronised batch norm (`synchronized_batch_norm=True`), the contrastive
  losses over the global batch, per-replica random masks drawn as slices of
  one global draw;
- PyTorch: a multi-device request fails with a clear message.
"""

import contextlib

import keras
import numpy as np
import pytest

from conftest import BACKEND
from harness import CASES, matrix_params, set_deterministic_weights

ids = [case.name for case in CASES]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _batch_size(inputs):
    return len(keras.tree.flatten(inputs)[0])


def one_step(case, inputs, scope=None, jit_compile=True, run_eagerly=False,
             **overrides):
    """Loss and all weights after one SGD step on `inputs` (one batch)."""
    with scope or contextlib.nullcontext():
        model = case.build_model()
        for name, value in overrides.items():
            setattr(model, name, value)
        model(inputs)
        set_deterministic_weights(model)
        start = [_np(w) for w in model.weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      jit_compile=jit_compile, run_eagerly=run_eagerly)
        history = model.fit(x=inputs, batch_size=_batch_size(inputs),
                            epochs=1, verbose=0, shuffle=False)
    # Paths without the model's own (numbered) name.
    weights = {
        w.path.split("/", 1)[-1]: (_np(w), w0)
        for w, w0 in zip(model.weights, start)
    }
    return history.history["loss"][0], weights, model


def assert_same_step(got, expected):
    (loss_n, weights_n, _), (loss_1, weights_1, _) = got, expected
    np.testing.assert_allclose(loss_n, loss_1, rtol=1e-5)
    assert weights_n.keys() == weights_1.keys()
    for path, (value, start) in weights_1.items():
        if "seed_generator" in path:
            continue  # per-replica generators advance per replica
        # Equal up to float round-off, which a batch-norm channel of tiny
        # variance amplifies: 1% of the step's largest change is allowed.
        step = float(np.max(np.abs(value - start), initial=0.0))
        np.testing.assert_allclose(
            weights_n[path][0], value, rtol=1e-4, atol=max(1e-5, 1e-2 * step),
            err_msg=path,
        )


# Each case compiles two steps: by default the methods whose state crosses
# devices differently (queue, center, masks, global contrast); every method
# with KERAS_SSL_FULL_MATRIX=1.
@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution is JAX-only")
@pytest.mark.parametrize(
    "case", matrix_params({"moco", "dino", "mae", "clip", "swav"}))
def test_jax_data_parallel_step_matches_one_device(case, small_images):
    import jax

    devices = jax.devices("cpu")
    assert len(devices) == 4, "conftest sets 4 virtual CPU devices for JAX"
    inputs = case.fixed_inputs(small_images)
    expected = one_step(case, inputs)
    distribution = keras.distribution.DataParallel(devices=devices)
    assert_same_step(one_step(case, inputs, distribution.scope()), expected)


# By default the methods with their own cross-replica code (the gathered
# negatives of SimCLR and CLIP, MoCo's gathered enqueue, DINO's center, MAE's
# global mask draw, the VQ codebook statistics, the global batch statistics of
# Barlow Twins and VICReg, SwAV's global Sinkhorn); all with the full matrix.
@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
@pytest.mark.parametrize(
    "case",
    matrix_params({"simclr", "moco", "dino", "mae", "vq_tokenizer", "clip",
                   "barlow_twins", "vicreg", "swav"}),
)
def test_mirrored_strategy_step_matches_one_device(
    case, small_images, mirrored_strategy
):
    inputs = case.fixed_inputs(small_images)
    # XLA cannot compile one step over several logical CPU devices.
    overrides = dict(case.replica_overrides, synchronized_batch_norm=True)
    # One step: tracing a graph costs more than running it eagerly.
    expected = one_step(case, inputs, jit_compile=False, run_eagerly=True,
                        **overrides)
    got = one_step(case, inputs, mirrored_strategy.scope(), jit_compile=False,
                   run_eagerly=True, **overrides)
    assert got[2].distribute_strategy is mirrored_strategy
    assert_same_step(got, expected)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
@pytest.mark.parametrize("name", ["mae", "beit"])
def test_mirrored_replicas_draw_their_rows_of_one_global_mask(
    name, small_images, mirrored_strategy
):
    """Masks drawn inside the step: each replica keeps its slice of the
    global batch's draw, so N replicas mask exactly as one device does
    (rather than every replica repeating replica 0's masks)."""
    case = next(c for c in CASES if c.name == name)
    images = case.fixed_inputs(small_images)["images"]
    expected = one_step(case, images, jit_compile=False, run_eagerly=True)
    got = one_step(case, images, mirrored_strategy.scope(), jit_compile=False,
                   run_eagerly=True)
    assert_same_step(got, expected)


def _vit_weights(model):
    from keras_ssl.distribution import _TRANSFORMER_LAYOUT
    import re

    return [w for w in model.weights
            if any(re.fullmatch(p, w.path) for p, _ in _TRANSFORMER_LAYOUT)]


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution is JAX-only")
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_jax_model_parallel_on_a_2x2_mesh_matches_one_device(case, small_images):
    """Transformer weights (ViT, and the MAE decoder) sharded over the
    mesh's "model" axis, the batch over "batch": one step equals one
    device's."""
    import jax

    from keras_ssl.distribution import model_parallel

    inputs = case.fixed_inputs(small_images)
    probe = case.build_model()
    probe(inputs)
    if not _vit_weights(probe):
        pytest.skip(f"{case.name}: no Transformer blocks to shard")
    expected = one_step(case, inputs)
    mesh = keras.distribution.DeviceMesh(
        (2, 2), ("batch", "model"), devices=jax.devices("cpu")
    )
    got = one_step(case, inputs, model_parallel(mesh).scope())
    sharded = _vit_weights(got[2])
    for w in sharded:
        spec = w.value.sharding.spec
        assert "model" in tuple(spec), (w.path, spec)
    assert_same_step(got, expected)


def test_layout_map_needs_the_named_mesh_axes():
    from keras_ssl.distribution import model_parallel, transformer_layout_map

    mesh = keras.distribution.DeviceMesh((1,), ("data",), devices=["cpu:0"])
    with pytest.raises(ValueError, match="model axis 'model'"):
        transformer_layout_map(mesh)
    mesh = keras.distribution.DeviceMesh((1, 1), ("x", "model"),
                                         devices=["cpu:0"])
    with pytest.raises(ValueError, match="batch axis 'batch'"):
        model_parallel(mesh)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TF runs tf.distribute")
def test_a_tf_strategy_on_another_backend_fails_clearly(small_images):
    import tensorflow as tf

    case = CASES[0]
    model = case.build_model()
    model.compile(optimizer="sgd")
    inputs = case.fixed_inputs(small_images)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(RuntimeError, match="cannot distribute training"):
            model.train_on_batch(inputs)


@pytest.mark.skipif(BACKEND != "torch", reason="the torch backend's check")
def test_torch_multi_device_request_fails_clearly(monkeypatch, small_images):
    """Keras 3.15 has no torch distribution: a set `keras.distribution`
    fails when the train step is made, naming the backends that can do it."""

    class FakeDataParallel:
        pass

    monkeypatch.setattr(keras.distribution, "distribution",
                        lambda: FakeDataParallel())
    model = CASES[0].build_model()
    model.compile(optimizer="sgd")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=jax") as error:
        model.train_on_batch(CASES[0].fixed_inputs(small_images))
    assert "FakeDataParallel" in str(error.value)
    assert "torch backend" in str(error.value)


# --- language models: keras-hub Transformers, the same layout map ----------
def _language_case(kind, tokenizer, documents):
    """A `one_step` case and a fixed batch of 8 rows for BERT or GPT."""
    import types

    import keras_hub

    sizes = dict(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1,
                 num_heads=2, hidden_dim=16, intermediate_dim=32,
                 max_sequence_length=32, dropout=0.0)
    if kind == "bert":
        from keras_ssl.data.masked_lm import masked_lm_dataset
        from keras_ssl.models.masked_lm import MaskedLanguageModel

        build = lambda: MaskedLanguageModel(  # noqa: E731
            keras_hub.models.BertBackbone(**sizes), tokenizer=tokenizer)
        data = masked_lm_dataset(documents, tokenizer, 32, 8,
                                 dynamic_masking=False, shuffle=False)
    else:
        from keras_ssl.data.causal_lm import causal_lm_dataset
        from keras_ssl.models.causal_lm import CausalLanguageModel

        build = lambda: CausalLanguageModel(  # noqa: E731
            keras_hub.models.GPT2Backbone(**sizes), tokenizer=tokenizer)
        data = causal_lm_dataset(documents, tokenizer, 32, 8, shuffle=False)
    batch = keras.utils.unpack_x_y_sample_weight(next(iter(data)))[0]
    inputs = {k: np.asarray(v) for k, v in batch.items()}
    return types.SimpleNamespace(build_model=build), inputs


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution is JAX-only")
@pytest.mark.parametrize("kind", ["bert", "gpt"])
def test_language_models_data_and_model_parallel_match_one_device(
    kind, python_docs, wordpiece_tokenizer, gpt2_tokenizer
):
    """BERT (MLM + NSP) and GPT: one step over 4 devices (DataParallel) and
    on a 2×2 mesh with the Transformer blocks sharded (keras-hub names its
    layers as our ViT does) equals one device's."""
    import jax

    from keras_ssl.distribution import model_parallel

    tokenizer = wordpiece_tokenizer if kind == "bert" else gpt2_tokenizer
    case, inputs = _language_case(kind, tokenizer, python_docs.documents[:12])
    expected = one_step(case, inputs)
    devices = jax.devices("cpu")
    data_parallel = keras.distribution.DataParallel(devices=devices)
    assert_same_step(one_step(case, inputs, data_parallel.scope()), expected)
    mesh = keras.distribution.DeviceMesh((2, 2), ("batch", "model"), devices=devices)
    got = one_step(case, inputs, model_parallel(mesh).scope())
    sharded = _vit_weights(got[2])
    assert len(sharded) >= 6
    for w in sharded:
        assert "model" in tuple(w.value.sharding.spec), w.path
    assert_same_step(got, expected)
