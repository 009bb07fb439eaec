"""VQTokenizer on every backend: tokens, decoding, training, state, errors, saving."""

import inspect
import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from cases_vq_tokenizer import (  # noqa: E402
    CODE_DIM,
    GRID,
    NUM_CODES,
    NUM_PATCHES,
    PATCH_SIZE,
    crops,
    tiny_tokenizer,
)
from conftest import JIT_COMPILE  # noqa: E402
from keras_ssl.layers.vit import patchify  # noqa: E402
from keras_ssl.models import METHODS, VQTokenizer  # noqa: E402
from keras_ssl.models.vq_tokenizer import train_vq_tokenizer  # noqa: E402


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _state(model):
    return [_np(v).copy() for v in model.variables]


def _same_state(before, model):
    return all(np.array_equal(a, _np(v)) for a, v in zip(before, model.variables))


def _codebook(model):
    return _np(model.quantizer.codebook).copy()


@pytest.fixture(scope="module")
def images(small_images):
    return crops(small_images, count=32)


@pytest.fixture(scope="module")
def trained(small_images):
    """A tiny tokenizer after a short jit-compiled fit on real 16×16 crops."""
    keras.utils.set_random_seed(0)
    model = tiny_tokenizer()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=JIT_COMPILE)
    x = np.asarray(small_images[:, :16, :16], "float32")
    before = _codebook(model)
    history = model.fit(x, batch_size=32, epochs=4, verbose=0, shuffle=False)
    return model, history, before, x


# --- tokens -------------------------------------------------------------------
def test_tokenize_gives_row_major_code_ids(images):
    model = tiny_tokenizer()
    codes = model.tokenize(images)
    assert tuple(codes.shape) == (len(images), NUM_PATCHES)
    assert keras.backend.standardize_dtype(codes.dtype) == "int32"
    codes = _np(codes)
    assert codes.min() >= 0 and codes.max() < NUM_CODES
    # The argmin over the encoder's (rows, cols) grid, reshaped row-major.
    latents = _np(model.encoder(images)).astype(np.float64)
    assert latents.shape == (len(images), *GRID, CODE_DIM)
    codebook = _codebook(model).astype(np.float64)
    distances = ((latents[..., None, :] - codebook) ** 2).sum(-1)
    grid_codes = distances.argmin(-1)
    np.testing.assert_array_equal(codes, grid_codes.reshape(len(images), -1))
    # Code n belongs to patch (n // cols, n % cols): patchify's order.
    n = 11
    assert codes[0, n] == grid_codes[0, n // GRID[1], n % GRID[1]]
    assert patchify(images, PATCH_SIZE).shape[1] == NUM_PATCHES
    # The same codes from `call`, and as a 1-tuple input.
    np.testing.assert_array_equal(_np(model(images)["codes"]), codes)
    np.testing.assert_array_equal(_np(model.tokenize((images,))), codes)


def test_decode_codes_and_reconstruct(images):
    model = tiny_tokenizer()
    codes = model.tokenize(images)
    decoded = _np(model.decode_codes(codes))
    assert decoded.shape == images.shape
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0
    # decode(tokenize(x)) is the model's reconstruction in inference.
    np.testing.assert_allclose(
        decoded, _np(model(images)["reconstruction"]), rtol=1e-5, atol=1e-6
    )
    reconstructed = model.reconstruct(images)
    assert isinstance(reconstructed, np.ndarray)
    np.testing.assert_allclose(reconstructed, decoded, rtol=1e-5, atol=1e-6)
    # NumPy int64 ids work too; one image is enough.
    one = _np(model.decode_codes(_np(codes)[:1].astype("int64")))
    np.testing.assert_allclose(one, decoded[:1], rtol=1e-5, atol=1e-6)


def test_outputs_and_loss_match_numpy(images):
    model = tiny_tokenizer(commitment_cost=0.5)
    outputs = model(images)
    assert set(outputs) == {"reconstruction", "codes", "latents", "quantized"}
    latents = _np(outputs["latents"]).astype(np.float64)
    quantized = _np(outputs["quantized"]).astype(np.float64)
    codebook = _codebook(model)
    np.testing.assert_allclose(
        quantized,
        codebook[_np(outputs["codes"])].reshape(quantized.shape),
        atol=1e-6,
    )
    reconstruction = _np(outputs["reconstruction"]).astype(np.float64)
    expected = ((reconstruction - images) ** 2).mean() + 0.5 * (
        (latents - quantized) ** 2
    ).mean()
    before = _state(model)
    loss = model.compute_loss(x=images, y_pred=outputs, training=False)
    assert float(_np(loss)) == pytest.approx(expected, rel=1e-5)
    assert _same_state(before, model)  # not training: the codebook stays


def test_tokenize_never_changes_state(images):
    model = tiny_tokenizer()
    before = _state(model)
    for _ in range(2):
        model.tokenize(images)
        model.decode_codes(model.tokenize(images))
        model.reconstruct(images)
        model(images, training=True)
    assert _same_state(before, model)


# --- training -------------------------------------------------------------------
def test_fit_lowers_the_reconstruction_loss_without_collapse(trained):
    model, history, _, x = trained
    reconstruction = history.history["reconstruction_loss"]
    assert all(np.isfinite(history.history["loss"]))
    assert reconstruction[-1] < 0.7 * reconstruction[0], reconstruction
    # Many codes in use (no collapse onto a few).
    assert history.history["codebook_usage"][-1] * NUM_CODES >= 8, history.history
    assert history.history["perplexity"][-1] >= 4.0, history.history
    assert len(np.unique(_np(model.tokenize(x[:64])))) >= 8


def test_the_codebook_moves_in_fit_but_not_in_evaluate_or_predict(trained):
    model, _, before_fit, x = trained
    after_fit = _codebook(model)
    assert not np.allclose(before_fit, after_fit)
    size = _np(model.quantizer.ema_cluster_size)
    assert not np.allclose(size, 1.0)  # the EMA counts moved
    state = _state(model)
    results = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    assert {"reconstruction_loss", "codebook_usage", "perplexity"} <= set(results)
    predictions = model.predict(x[:64], batch_size=32, verbose=0)
    assert predictions["codes"].shape == (64, NUM_PATCHES)
    model.tokenize(x[:8])
    assert _same_state(state, model)


def test_straight_through_trains_the_encoder(images):
    """Without the commitment term, the encoder learns only through the
    straight-through path from the decoder."""
    model = tiny_tokenizer(commitment_cost=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)
    before = [_np(w).copy() for w in model.encoder.weights]
    model.fit(images, batch_size=len(images), epochs=1, verbose=0)
    after = [_np(w) for w in model.encoder.weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


def test_restarts_draw_new_vectors_at_every_jitted_step(images):
    """Every code is dead at every step (huge threshold): the codebook is
    redrawn from the batch's encoder outputs, differently each step."""
    model = tiny_tokenizer(dead_code_threshold=1e9)
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=JIT_COMPILE)
    latents = _np(model.encoder(images)).reshape(-1, CODE_DIM)
    codebooks = []
    for _ in range(3):  # the same batch, in the same order, every step
        model.fit(images, batch_size=len(images), epochs=1, verbose=0,
                  shuffle=False)
        codebooks.append(_codebook(model))
    for codebook in codebooks:
        distances = ((codebook[:, None, :] - latents[None]) ** 2).sum(-1)
        assert distances.min(axis=1).max() < 1e-8  # each code is a batch vector
    assert not np.array_equal(codebooks[0], codebooks[1])
    assert not np.array_equal(codebooks[1], codebooks[2])


def test_a_frozen_quantizer_or_model_keeps_its_codebook(images):
    model = tiny_tokenizer()
    model.quantizer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=JIT_COMPILE)
    codebook = _codebook(model)
    encoder = [_np(w).copy() for w in model.encoder.weights]
    model.fit(images, batch_size=16, epochs=1, verbose=0)
    np.testing.assert_array_equal(_codebook(model), codebook)
    assert not np.array_equal(_np(model.encoder.weights[0]), encoder[0])

    frozen = tiny_tokenizer()
    frozen.trainable = False
    frozen.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=JIT_COMPILE)
    state = _state(frozen)
    frozen.fit(images, batch_size=16, epochs=1, verbose=0)
    assert _same_state(state, frozen)


def test_tokenize_inside_another_models_jitted_step(images):
    """BEiT's use: a frozen tokenizer gives the targets in the training step
    of another model."""
    tokenizer = tiny_tokenizer()

    class PatchClassifier(keras.Model):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer
            self.tokenizer.trainable = False
            self.head = keras.layers.Dense(NUM_CODES)

        def call(self, x, training=False):
            return self.head(patchify(x, PATCH_SIZE))

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                         training=True):
            targets = self.tokenizer.tokenize(x)
            return keras.ops.mean(
                keras.losses.sparse_categorical_crossentropy(
                    targets, y_pred, from_logits=True
                )
            )

    model = PatchClassifier(tokenizer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=JIT_COMPILE)
    state = _state(tokenizer)
    history = model.fit(images, batch_size=16, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    assert _same_state(state, tokenizer)


# --- errors -------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(images):
    model = tiny_tokenizer()
    bad = [
        ((images, images), "one batch of images \\(one view\\)"),
        (images[..., 0], "rank 4"),
        ((images * 255).astype("uint8"), "float images"),
        (images[:, :8, :8], "16×16 images with 3 channels"),
        (images[:0], "at least 1 image"),
    ]
    for inputs, message in bad:
        for fn in (model, model.tokenize, model.reconstruct):
            with pytest.raises(ValueError, match=message):
                fn(inputs)
    codes = _np(model.tokenize(images))
    with pytest.raises(ValueError, match="num_patches"):
        model.decode_codes(codes[:, :10])
    with pytest.raises(ValueError, match="num_patches"):
        model.decode_codes(codes.reshape(-1, *GRID))
    with pytest.raises(ValueError, match="integer code ids"):
        model.decode_codes(codes.astype("float32"))
    with pytest.raises(ValueError, match="needs the images"):
        model.compute_loss(y_pred=model(images))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(patch_size=3), "power of two"),
        (dict(patch_size=0), "power of two"),
        (dict(patch_size=2.5), "power of two"),
        (dict(image_shape=(12, 12, 3), patch_size=8), "not divisible"),
        (dict(image_shape=(16, 16)), "image_shape"),
        (dict(num_codes=0), "num_codes"),
        (dict(code_dim=-1), "code_dim"),
        (dict(hidden_dim=0), "hidden_dim"),
        (dict(commitment_cost=-0.1), "commitment_cost"),
        (dict(decay=1.0), "decay"),
        (dict(dead_code_threshold=-1.0), "dead_code_threshold"),
    ],
)
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_tokenizer(**kwargs)


@pytest.mark.parametrize("patch_size,grid", [(1, (8, 12)), (4, (2, 3))])
def test_other_patch_sizes_and_rectangular_images(patch_size, grid):
    model = VQTokenizer(image_shape=(8, 12, 1), patch_size=patch_size,
                        num_codes=8, code_dim=4, hidden_dim=8, seed=0)
    assert model.grid == grid and model.num_patches == grid[0] * grid[1]
    x = np.random.default_rng(0).random((2, 8, 12, 1)).astype("float32")
    codes = model.tokenize(x)
    assert tuple(codes.shape) == (2, model.num_patches)
    assert tuple(model.decode_codes(codes).shape) == (2, 8, 12, 1)


# --- configuration and saving ---------------------------------------------------
def test_attributes_and_registry():
    model = tiny_tokenizer()
    assert METHODS["vq_tokenizer"] is VQTokenizer
    assert model.num_codes == NUM_CODES and model.patch_size == PATCH_SIZE
    assert model.image_shape == (16, 16, 3) and isinstance(model.image_shape, tuple)
    assert model.grid == GRID and model.num_patches == NUM_PATCHES
    assert model.quantizer.trainable_weights == []
    assert isinstance(model.encoder, keras.Model)
    assert isinstance(model.decoder, keras.Model)


def test_get_config_mirrors_the_constructor():
    model = tiny_tokenizer(commitment_cost=0.3, decay=0.95, dead_code_threshold=2.0)
    config = model.get_config()
    arguments = set(inspect.signature(VQTokenizer.__init__).parameters) - {
        "self", "kwargs"
    }
    assert arguments <= set(config)
    restored = VQTokenizer.from_config(config)
    assert restored.get_config() == config
    assert restored.image_shape == (16, 16, 3)
    assert len(restored.weights) == len(model.weights)


def test_keras_round_trip_gives_identical_tokens(trained, tmp_path):
    model, _, _, x = trained
    path = tmp_path / "tokenizer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VQTokenizer)
    for name in ("codebook", "ema_cluster_size", "ema_sums"):
        np.testing.assert_array_equal(
            _np(getattr(loaded.quantizer, name)), _np(getattr(model.quantizer, name))
        )
    np.testing.assert_array_equal(
        _np(loaded.tokenize(x[:64])), _np(model.tokenize(x[:64]))
    )
    np.testing.assert_array_equal(loaded.reconstruct(x[:8]), model.reconstruct(x[:8]))


# --- BEiT's stage 1 -------------------------------------------------------------
def test_train_vq_tokenizer_returns_an_uncompiled_trained_tokenizer(small_images):
    images = np.asarray(small_images[:64, :16, :16], "float32")
    tokenizer = train_vq_tokenizer(images, 4, epochs=4, batch_size=16,
                                   learning_rate=3e-3, num_codes=16,
                                   code_dim=8, hidden_dim=8)
    assert not tokenizer.compiled
    losses = tokenizer.history.history["reconstruction_loss"]
    assert len(losses) == 4 and np.isfinite(losses).all(), losses
    codes = _np(tokenizer.tokenize(images))
    assert codes.shape == (64, 16) and len(np.unique(codes)) > 1
