"""MAE on every backend: masking, visible-only encoder, loss, errors, config."""

import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from cases_mae import (  # noqa: E402
    NUM_PATCHES,
    PATCH_SIZE,
    fixed_inputs,
    tiny_mae,
    tiny_vit,
)
from conftest import JIT_COMPILE  # noqa: E402
from keras_ssl.backbones import ViTBackbone  # noqa: E402
from keras_ssl.layers.vit import patchify  # noqa: E402
from keras_ssl.losses import mae_loss  # noqa: E402
from keras_ssl.models import MAE  # noqa: E402

NUM_KEEP = NUM_PATCHES // 4  # mask_ratio 0.75 keeps 4 of 16 patches


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def model():
    return tiny_mae()


@pytest.fixture(scope="module")
def inputs(small_images):
    return fixed_inputs(small_images)


def test_masking_keeps_a_quarter_of_the_patches_per_sample(model, small_images):
    # The same image 16 times: each sample still gets its own mask.
    image = np.asarray(small_images[:1, :16, :16], "float32")
    mask = _np(model(np.repeat(image, 16, axis=0))["mask"])
    assert mask.shape == (16, NUM_PATCHES)
    assert set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_array_equal(mask.sum(axis=1), NUM_PATCHES - NUM_KEEP)
    assert len({tuple(row) for row in mask}) >= 12, mask


def test_fixed_noise_fixes_the_mask(model, inputs):
    images, noise = inputs["images"], inputs["noise"]
    mask = _np(model(inputs)["mask"])
    kept = np.argsort(noise, axis=1)[:, :NUM_KEEP]
    expected = np.ones_like(noise)
    np.put_along_axis(expected, kept, 0.0, axis=1)
    np.testing.assert_array_equal(mask, expected)
    # Same noise, same outputs; the model's own noise gives other masks.
    for a, b in zip(keras.tree.flatten(model(inputs)), keras.tree.flatten(model(inputs))):
        np.testing.assert_array_equal(_np(a), _np(b))
    assert not np.array_equal(_np(model(images)["mask"]), mask)


def test_the_encoder_sees_only_the_visible_patches(model, inputs):
    images, noise = inputs["images"], inputs["noise"]
    latent, mask, ids_restore = model.encode_visible(images, noise)
    latent, mask = _np(latent), _np(mask)
    # Class token + 25% of the patches: no mask tokens in the encoder.
    assert latent.shape == (16, 1 + NUM_KEEP, 16)
    # The same encoder weights on the kept tokens, gathered by hand.
    tokens = _np(model.encoder.embed_patches(images))
    kept = np.argsort(noise, axis=1)[:, :NUM_KEEP]
    visible = np.take_along_axis(tokens, kept[:, :, None], axis=1)
    np.testing.assert_allclose(
        _np(model.encoder.encode_tokens(visible)), latent, rtol=1e-5, atol=1e-5
    )
    # Pixels of removed patches do not reach the encoder.
    patch_mask = np.repeat(
        np.repeat(mask.reshape(16, 4, 4), PATCH_SIZE, axis=1), PATCH_SIZE, axis=2
    )[..., None]
    scrambled = images * (1 - patch_mask) + patch_mask * (1 - images)
    latent_2, _, _ = model.encode_visible(scrambled.astype("float32"), noise)
    np.testing.assert_allclose(_np(latent_2), latent, rtol=1e-5, atol=1e-5)
    # ids_restore inverts the shuffle.
    shuffle = np.argsort(noise, axis=1)
    np.testing.assert_array_equal(
        np.take_along_axis(shuffle, _np(ids_restore), axis=1),
        np.tile(np.arange(NUM_PATCHES), (16, 1)),
    )


def test_loss_counts_the_masked_patches_only(model, inputs):
    outputs = model(inputs)
    loss = float(_np(model.compute_loss(x=inputs, y_pred=outputs)))
    pred, target, mask = (
        _np(outputs[k]).astype("float64")
        for k in ("predictions", "target_patches", "mask")
    )
    per_patch = ((pred - target) ** 2).mean(axis=-1)
    assert loss == pytest.approx(per_patch[mask == 1].mean(), rel=1e-5)
    # Anything predicted for visible patches leaves the loss as it is.
    garbage = dict(outputs, predictions=np.where(mask[..., None] == 1, pred, 1e3))
    garbage["predictions"] = garbage["predictions"].astype("float32")
    assert float(_np(model.compute_loss(y_pred=garbage))) == pytest.approx(loss, rel=1e-5)
    # The targets are the images' patches.
    np.testing.assert_array_equal(target, _np(patchify(inputs["images"], PATCH_SIZE)))


def test_norm_pix_loss_regresses_normalised_patches(inputs):
    model = tiny_mae(norm_pix_loss=True)
    outputs = model(inputs)
    loss = float(_np(model.compute_loss(y_pred=outputs)))
    target = _np(outputs["target_patches"]).astype("float64")
    mean = target.mean(-1, keepdims=True)
    std = np.sqrt(target.var(-1, ddof=1, keepdims=True) + 1e-6)
    pred, mask = _np(outputs["predictions"]), _np(outputs["mask"])
    per_patch = ((pred - (target - mean) / std) ** 2).mean(-1)
    assert loss == pytest.approx(per_patch[mask == 1].mean(), rel=1e-4)
    # The reconstruction maps normalised predictions back to pixels.
    _, reconstructed = model.reconstruct(inputs["images"], inputs["noise"])
    pixels = np.clip(pred * std + mean, 0, 1)
    got = _np(patchify(reconstructed, PATCH_SIZE))
    np.testing.assert_allclose(got[mask == 1], pixels[mask == 1], atol=1e-5)


def test_inputs_as_tensor_tuple_or_dict(model, inputs):
    images = inputs["images"]
    state = _np(model.seed_generator.state).copy()
    out_tensor = model(images)
    model.seed_generator.state.assign(state)  # the same noise again
    out_tuple = model((images,))
    for x, y in zip(keras.tree.flatten(out_tensor), keras.tree.flatten(out_tuple)):
        np.testing.assert_array_equal(_np(x), _np(y))
    # A batch of one image is enough (nothing is computed across the batch).
    one = model({"images": images[:1], "noise": inputs["noise"][:1]})
    np.testing.assert_allclose(
        _np(one["predictions"]), _np(model(inputs)["predictions"])[:1],
        rtol=1e-5, atol=1e-5,
    )


def test_masks_differ_across_jitted_training_steps(small_images):
    """With a frozen model (lr 0), only the mask changes the loss."""
    model = tiny_mae()
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=JIT_COMPILE)
    images = np.asarray(small_images[:16, :16, :16], "float32")
    state = _np(model.seed_generator.state).copy()
    history = model.fit(images, batch_size=16, epochs=3, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert len(set(losses)) == 3, losses
    assert not np.array_equal(_np(model.seed_generator.state), state)


def test_reconstruct_returns_masked_and_pasted_images(model, inputs):
    images, noise = inputs["images"], inputs["noise"]
    masked, reconstructed = model.reconstruct(images, noise, fill_value=0.25)
    assert isinstance(masked, np.ndarray) and masked.shape == images.shape
    assert reconstructed.shape == images.shape
    mask = _np(model(inputs)["mask"])[..., None]
    patches = patchify(images, PATCH_SIZE)
    np.testing.assert_allclose(
        _np(patchify(masked, PATCH_SIZE)), _np(patches) * (1 - mask) + 0.25 * mask,
        atol=1e-6,
    )
    got = _np(patchify(reconstructed, PATCH_SIZE))
    # Visible patches are the input's; the removed ones are predictions.
    np.testing.assert_allclose(got * (1 - mask), _np(patches) * (1 - mask), atol=1e-6)
    assert 0.0 <= reconstructed.min() and reconstructed.max() <= 1.0


def test_encoder_runs_on_whole_images_for_evaluation(model, inputs):
    features = _np(model.encode(inputs["images"]))
    assert features.shape == (16, 16)
    tokens = _np(model.encoder(inputs["images"]))  # class token + patches
    np.testing.assert_allclose(features, tokens[:, 1:].mean(axis=1), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.5, 1.5])
def test_mask_ratio_outside_zero_one_is_rejected(ratio):
    with pytest.raises(ValueError, match="mask_ratio.*\\(0, 1\\)"):
        tiny_mae(mask_ratio=ratio)


def test_configuration_errors():
    with pytest.raises(ValueError, match="keeps 0; at least one patch"):
        tiny_mae(mask_ratio=0.99)  # int(16 × 0.01) = 0 patches kept
    with pytest.raises(ValueError, match="not divisible by the patch size 4"):
        tiny_vit(image_shape=(18, 18, 3))
    convnet = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D()],
        name="convnet",
    )
    with pytest.raises(ValueError, match="ViTBackbone.*Sequential has no embed_patches"):
        MAE(convnet)
    with pytest.raises(ValueError, match="decoder_dim.*multiple of 4"):
        tiny_mae(decoder_dim=18, decoder_num_heads=2)
    with pytest.raises(ValueError, match="multiple of 4"):
        tiny_vit(hidden_dim=18)


def test_get_config_round_trip():
    model = tiny_mae(mask_ratio=0.5, norm_pix_loss=True, decoder_mlp_ratio=2.0,
                     seed=7)
    config = model.get_config()
    assert config["mask_ratio"] == 0.5 and config["norm_pix_loss"] is True
    assert config["decoder_mlp_ratio"] == 2.0 and config["seed"] == 7
    assert config["decoder_dim"] == 16 and config["decoder_depth"] == 1
    rebuilt = MAE.from_config(config)
    assert isinstance(rebuilt.encoder, ViTBackbone)
    assert rebuilt.get_config() == config
    assert rebuilt.num_keep == NUM_PATCHES // 2
    assert [tuple(w.shape) for w in rebuilt.weights] == [
        tuple(w.shape) for w in model.weights
    ]


def test_mae_loss_is_the_exported_function(model, inputs):
    outputs = model(inputs)
    np.testing.assert_allclose(
        _np(model.compute_loss(y_pred=outputs)),
        _np(mae_loss(outputs["predictions"], outputs["target_patches"], outputs["mask"])),
    )
