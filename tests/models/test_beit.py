"""BEiT on every backend: blockwise masks, the [MASK] input, the frozen
tokenizer, the loss on masked positions, saving and resuming, errors."""

import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from cases_beit import (  # noqa: E402
    NUM_CODES,
    NUM_MASKED,
    NUM_PATCHES,
    PATCH_SIZE,
    fixed_inputs,
    tiny_beit,
    tiny_tokenizer,
    tiny_vit,
)
from conftest import JIT_COMPILE  # noqa: E402
from keras_ssl.losses import masked_token_loss  # noqa: E402
from keras_ssl.models import BEiT  # noqa: E402


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def model():
    return tiny_beit()


@pytest.fixture(scope="module")
def inputs(small_images):
    return fixed_inputs(small_images)


def test_masks_have_the_exact_count_and_differ_per_sample(model, small_images):
    image = np.asarray(small_images[:1, :16, :16], "float32")
    mask = _np(model(np.repeat(image, 16, axis=0))["mask"])
    assert mask.shape == (16, NUM_PATCHES)
    assert set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_array_equal(mask.sum(axis=1), NUM_MASKED)
    assert len({tuple(row) for row in mask}) >= 8, mask


def test_masks_differ_across_jitted_training_steps(small_images):
    """With a frozen model (lr 0), only the mask changes the loss."""
    model = tiny_beit()
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=JIT_COMPILE)
    images = np.asarray(small_images[:16, :16, :16], "float32")
    state = _np(model.seed_generator.state).copy()
    history = model.fit(images, batch_size=16, epochs=3, verbose=0, shuffle=False)
    assert len(set(history.history["loss"])) == 3, history.history["loss"]
    assert not np.array_equal(_np(model.seed_generator.state), state)


def test_masked_patches_enter_as_the_mask_token(model, inputs):
    images, mask = inputs["images"], inputs["mask"]
    tokens = _np(model.encoder.embed_patches(images, mask=mask,
                                             mask_token=model.mask_token))
    plain = _np(model.encoder.embed_patches(images))
    positions = model.encoder.patch_embedding.positions
    expected_masked = _np(model.mask_token)[None, None] + positions[None]
    m = mask[..., None] == 1
    np.testing.assert_allclose(
        np.where(m, tokens, 0), np.where(m, expected_masked, 0), atol=1e-6
    )
    np.testing.assert_allclose(np.where(m, 0, tokens), np.where(m, 0, plain), atol=1e-6)
    # Masked pixels do not reach the encoder; the targets still see them.
    scrambled = np.where(
        np.repeat(np.repeat(mask.reshape(16, 4, 4), PATCH_SIZE, 1), PATCH_SIZE, 2)[
            ..., None
        ] == 1,
        1.0 - images,
        images,
    ).astype("float32")
    a = model(inputs)
    b = model({"images": scrambled, "mask": mask})
    np.testing.assert_allclose(_np(a["logits"]), _np(b["logits"]), atol=1e-5)


def test_targets_are_the_tokenizer_codes(model, inputs):
    outputs = model(inputs)
    np.testing.assert_array_equal(
        _np(outputs["targets"]), _np(model.tokenizer.tokenize(inputs["images"]))
    )
    assert _np(outputs["logits"]).shape == (16, NUM_PATCHES, NUM_CODES)


def test_loss_counts_the_masked_positions_only(model, inputs):
    outputs = model(inputs)
    loss = float(_np(model.compute_loss(x=inputs, y_pred=outputs)))
    logits = _np(outputs["logits"]).astype("float64")
    targets, mask = _np(outputs["targets"]), _np(outputs["mask"])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    assert loss == pytest.approx(nll[mask == 1].mean(), rel=1e-5)
    garbage = dict(outputs, logits=np.where(mask[..., None] == 1, logits, 1e3)
                   .astype("float32"))
    assert float(_np(masked_token_loss(garbage["logits"], targets, mask))) == (
        pytest.approx(loss, rel=1e-5)
    )


def test_the_tokenizer_is_frozen_and_the_encoder_trains(small_images):
    model = tiny_beit()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=JIT_COMPILE)
    assert not model.tokenizer.trainable
    assert all(not w.trainable for w in model.tokenizer.weights)
    before_tok = [_np(w).copy() for w in model.tokenizer.weights]
    before_enc = [_np(w).copy() for w in model.encoder.trainable_weights]
    images = np.asarray(small_images[:32, :16, :16], "float32")
    history = model.fit(images, batch_size=16, epochs=2, verbose=0)
    assert "masked_accuracy" in history.history
    for a, w in zip(before_tok, model.tokenizer.weights):
        np.testing.assert_array_equal(a, _np(w))
    assert any(
        not np.array_equal(a, _np(w))
        for a, w in zip(before_enc, model.encoder.trainable_weights)
    )


def test_a_loaded_model_goes_on_training(small_images, tmp_path):
    model = tiny_beit()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=JIT_COMPILE)
    images = np.asarray(small_images[:32, :16, :16], "float32")
    model.fit(images, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "beit.keras")
    loaded = keras.saving.load_model(tmp_path / "beit.keras")
    assert isinstance(loaded, BEiT) and not loaded.tokenizer.trainable
    np.testing.assert_array_equal(
        _np(loaded.tokenizer.tokenize(images)), _np(model.tokenizer.tokenize(images))
    )
    history = loaded.fit(images, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(loaded.optimizer.iterations) == 4


def test_blocks_are_contiguous(model):
    """Masked patches touch other masked patches far more often than under
    random masking of the same count (8×8 grid: 26 patches, blocks ≥ 5)."""
    vit = tiny_vit(image_shape=(32, 32, 3))
    beit = BEiT(vit, tiny_tokenizer(image_shape=(32, 32, 3)), seed=1)
    assert (beit.num_masked, beit.min_block_patches) == (26, 5)
    mask = _np(beit.make_mask(64)).reshape(64, 8, 8)
    np.testing.assert_array_equal(mask.sum(axis=(1, 2)), 26)

    def neighbour_fraction(m):
        padded = np.pad(m, ((0, 0), (1, 1), (1, 1)))
        neighbours = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1]
                      + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:])
        return (neighbours[m == 1] > 0).mean(), (neighbours[m == 1]).mean()

    rng = np.random.default_rng(0)
    random = np.zeros((64, 64))
    for row in random:
        row[rng.choice(64, 26, replace=False)] = 1
    blocky, mean_blocky = neighbour_fraction(mask)
    _, mean_random = neighbour_fraction(random.reshape(64, 8, 8))
    assert blocky > 0.95 and mean_blocky > mean_random + 1.0, (
        blocky, mean_blocky, mean_random)


def test_configuration_errors():
    with pytest.raises(ValueError, match="one code per encoder patch"):
        tiny_beit(tokenizer=tiny_tokenizer(patch_size=2))
    with pytest.raises(ValueError, match="one code per encoder patch"):
        BEiT(tiny_vit(image_shape=(32, 32, 3)), tiny_tokenizer())
    with pytest.raises(ValueError, match="vocabulary mismatch.*16 codes"):
        tiny_beit(vocab_size=8192)
    for ratio in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="mask_ratio.*\\(0, 1\\)"):
            tiny_beit(mask_ratio=ratio)
    with pytest.raises(ValueError, match="min_block_patches"):
        tiny_beit(min_block_patches=12)
    convnet = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D()]
    )
    with pytest.raises(ValueError, match="ViTBackbone.*has no embed_patches"):
        BEiT(convnet, tiny_tokenizer())
    with pytest.raises(ValueError, match="VQTokenizer.*has no tokenize"):
        BEiT(tiny_vit(), convnet)


def test_get_config_round_trip():
    model = tiny_beit(mask_ratio=0.5, seed=3)
    config = model.get_config()
    assert config["mask_ratio"] == 0.5 and config["seed"] == 3
    assert config["vocab_size"] == NUM_CODES and config["min_block_patches"] == 1
    rebuilt = BEiT.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.num_masked == 8
    assert [tuple(w.shape) for w in rebuilt.weights] == [
        tuple(w.shape) for w in model.weights
    ]


def test_visualize_decodes_the_codes(model, inputs):
    masked, target, predicted = model.visualize(inputs["images"], inputs["mask"])
    for picture in (masked, target, predicted):
        assert picture.shape == inputs["images"].shape
        assert 0.0 <= picture.min() and picture.max() <= 1.0
    np.testing.assert_allclose(
        target, np.clip(_np(model.tokenizer.decode_codes(
            model.tokenizer.tokenize(inputs["images"]))), 0, 1), atol=1e-6)
