"""ViT pieces: patches, sin-cos positions (against MAE's code), masking, decoder."""

import keras
import numpy as np
import pytest

from keras_ssl.layers.mae_decoder import MAEDecoder
from keras_ssl.layers.vit import (
    ClassToken,
    PatchEmbedding,
    TokenPooling,
    patchify,
    random_masking,
    sincos_position_embedding,
    unpatchify,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


# --- MAE's reference code (util/pos_embed.py, models_mae.py), NumPy only ----
def mae_get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)
    grid = grid.reshape([2, 1, grid_size, grid_size])
    emb_h = mae_get_1d(embed_dim // 2, grid[0])
    emb_w = mae_get_1d(embed_dim // 2, grid[1])
    pos_embed = np.concatenate([emb_h, emb_w], axis=1)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def mae_get_1d(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000**omega
    pos = pos.reshape(-1)
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def mae_patchify(imgs_nchw, p):
    n, c, h_px, w_px = imgs_nchw.shape
    h, w = h_px // p, w_px // p
    x = imgs_nchw.reshape(n, c, h, p, w, p)
    x = np.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, h * w, p**2 * c)


# -----------------------------------------------------------------------------


@pytest.mark.parametrize("dim,grid,cls", [(16, 4, False), (32, 7, True), (8, 2, True)])
def test_sincos_matches_mae_code(dim, grid, cls):
    np.testing.assert_allclose(
        sincos_position_embedding(dim, grid, class_token=cls),
        mae_get_2d_sincos_pos_embed(dim, grid, cls_token=cls),
        atol=1e-6,
    )


def test_sincos_on_a_rectangular_grid_and_bad_width():
    emb = sincos_position_embedding(8, (2, 3))
    assert emb.shape == (6, 8)
    assert len({tuple(row) for row in emb}) == 6  # every position differs
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_position_embedding(6, 4)


def test_patchify_matches_mae_order_and_unpatchify_inverts():
    x = np.random.default_rng(0).random((2, 8, 12, 3)).astype("float32")
    patches = _np(patchify(x, 4))
    assert patches.shape == (2, 6, 48)
    np.testing.assert_array_equal(patches, mae_patchify(x.transpose(0, 3, 1, 2), 4))
    np.testing.assert_array_equal(_np(unpatchify(patches, 4, grid=(2, 3))), x)
    square = x[:, :8, :8]
    np.testing.assert_array_equal(_np(unpatchify(patchify(square, 4), 4)), square)


def test_patch_errors():
    with pytest.raises(ValueError, match="not divisible by the patch size 4"):
        patchify(np.zeros((1, 10, 12, 3), "float32"), 4)
    with pytest.raises(ValueError, match="rank|\\(batch, height"):
        patchify(np.zeros((10, 12, 3), "float32"), 4)
    with pytest.raises(ValueError, match="square grid"):
        unpatchify(np.zeros((1, 6, 48), "float32"), 4)


def test_random_masking_keeps_the_lowest_noise_and_restores_order():
    b, n, d = 3, 16, 2
    tokens = np.broadcast_to(np.arange(n, dtype="float32")[None, :, None], (b, n, d))
    noise = np.random.default_rng(1).random((b, n)).astype("float32")
    visible, mask, ids_restore = (_np(t) for t in random_masking(tokens, noise, 0.75))
    shuffle = np.argsort(noise, axis=1)
    # The kept tokens are the 4 of lowest noise, in shuffled order.
    np.testing.assert_array_equal(visible[:, :, 0], shuffle[:, :4])
    assert mask.shape == (b, n) and (mask.sum(axis=1) == 12).all()
    for row_mask, row_shuffle in zip(mask, shuffle):
        assert set(np.flatnonzero(row_mask == 0)) == set(row_shuffle[:4])
    # ids_restore: gathering the shuffled sequence puts it back in order.
    np.testing.assert_array_equal(
        np.take_along_axis(shuffle, ids_restore, axis=1), np.tile(np.arange(n), (b, 1))
    )
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(tokens, noise, 1.0)


def test_patch_embedding_is_a_linear_map_of_patches_plus_positions():
    layer = PatchEmbedding(16, 4, (8, 12))
    x = np.random.default_rng(2).random((2, 8, 12, 3)).astype("float32")
    out = _np(layer(x))
    kernel = _np(layer.projection.kernel).reshape(-1, 16)  # (p·p·C, D)
    expected = _np(patchify(x, 4)) @ kernel + _np(layer.projection.bias)
    expected += sincos_position_embedding(16, (2, 3))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # MAE's init: Xavier-uniform of the (p·p·C, D) matrix.
    assert np.abs(kernel).max() <= np.sqrt(6 / (48 + 16))
    assert np.abs(kernel).max() > 0.8 * np.sqrt(6 / (48 + 16))


def test_class_token_and_pooling():
    tokens = np.random.default_rng(3).random((2, 5, 4)).astype("float32")
    with_cls = _np(ClassToken()(tokens))
    assert with_cls.shape == (2, 6, 4)
    np.testing.assert_array_equal(with_cls[0, 0], with_cls[1, 0])
    np.testing.assert_allclose(
        _np(TokenPooling("avg", 1)(with_cls)), tokens.mean(axis=1), rtol=1e-6
    )
    np.testing.assert_array_equal(_np(TokenPooling("cls", 1)(with_cls)), with_cls[:, 0])
    with pytest.raises(ValueError, match="class token"):
        TokenPooling("cls", 0)


def test_decoder_puts_tokens_back_in_patch_order():
    """Without blocks each output depends on its own token only: the
    prediction of patch j is pred(norm(token_j + pos_j)), where token_j is the
    embedded visible token that was patch j or the shared mask token."""
    decoder = MAEDecoder((4, 4), patch_dim=8, hidden_dim=8, num_layers=0,
                         num_prefix_tokens=1)
    rng = np.random.default_rng(4)
    noise = rng.random((2, 16)).astype("float32")
    tokens = rng.normal(size=(2, 16, 6)).astype("float32")
    visible, mask, ids_restore = random_masking(tokens, noise, 0.75)
    latent = np.concatenate([rng.normal(size=(2, 1, 6)), _np(visible)], 1)
    out = _np(decoder(latent.astype("float32"), ids_restore))
    assert out.shape == (2, 16, 8)

    def head(x):
        return _np(decoder.predict_pixels(decoder.norm(x)))

    embedded = _np(decoder.embed(tokens))  # every patch's token, patch order
    mask_token = _np(decoder.mask_token)[0]
    positions = sincos_position_embedding(8, 4)
    expected = np.where(_np(mask)[..., None] == 1, mask_token, embedded) + positions
    np.testing.assert_allclose(out, head(expected), rtol=1e-5, atol=1e-5)


def test_decoder_config_round_trip():
    decoder = MAEDecoder((2, 3), patch_dim=12, hidden_dim=8, num_layers=1,
                         num_heads=2, num_prefix_tokens=0, name="decoder")
    config = decoder.get_config()
    rebuilt = MAEDecoder.from_config(config)
    assert rebuilt.get_config() == config
    assert config["grid"] == [2, 3] and config["num_prefix_tokens"] == 0


def test_docstring_examples():
    import doctest

    from keras_ssl.backbones import vit as vit_backbone
    from keras_ssl.layers import mae_decoder, vit
    from keras_ssl.losses import mae

    for module in (vit, mae_decoder, vit_backbone, mae):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_beit_block_sizes_scale_the_papers_to_the_grid():
    from keras_ssl.layers.vit import beit_block_sizes

    assert beit_block_sizes((14, 14)) == (78, 16)  # the paper's 224-px grid
    assert beit_block_sizes((8, 8)) == (26, 5)
    assert beit_block_sizes((4, 4)) == (6, 1)
    assert beit_block_sizes((8, 8), 0.5, 3) == (32, 3)
    with pytest.raises(ValueError, match="mask_ratio.*\\(0, 1\\)"):
        beit_block_sizes((8, 8), 0.0)
    with pytest.raises(ValueError, match="min_block_patches.*\\[1, 26\\]"):
        beit_block_sizes((8, 8), min_block_patches=30)
    with pytest.raises(ValueError, match="at least one patch must be masked"):
        beit_block_sizes((2, 2), 0.05)


@pytest.mark.parametrize("grid,num_masked,min_block", [((8, 8), 26, 5),
                                                        ((4, 6), 10, 2),
                                                        ((14, 14), 78, 16)])
def test_blockwise_masking_masks_exactly_and_in_blocks(grid, num_masked, min_block):
    from keras_ssl.layers.vit import blockwise_masking

    seed = keras.random.SeedGenerator(0)
    first = keras.ops.convert_to_numpy(
        blockwise_masking(32, grid, num_masked, min_block, seed=seed))
    second = keras.ops.convert_to_numpy(
        blockwise_masking(32, grid, num_masked, min_block, seed=seed))
    assert first.shape == (32, grid[0] * grid[1]) and first.dtype == np.float32
    assert set(np.unique(first)) == {0.0, 1.0}
    np.testing.assert_array_equal(first.sum(axis=1), num_masked)
    # Each draw and each sample get their own mask.
    assert not np.array_equal(first, second)
    assert len({tuple(row) for row in first}) > 24
    # Every sample holds a full rectangle of at least `min_block` patches:
    # the first block always fits (its area is at most `num_masked`).
    rows, cols = grid
    for row in first.reshape(-1, rows, cols):
        best = 0
        for h in range(1, rows + 1):
            for w in range(1, cols + 1):
                if h * w <= best:
                    continue
                for t in range(rows - h + 1):
                    for l in range(cols - w + 1):
                        if row[t:t + h, l:l + w].all():
                            best = h * w
                            break
                    else:
                        continue
                    break
        # (rounding √(s·r) and √(s/r) to whole patches can shave a block
        # of area s a little below it)
        assert best >= min(min_block, num_masked) * 0.75, row
