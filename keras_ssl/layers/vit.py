"""Vision Transformer pieces: patches, fixed positions, masking, blocks.

Pure `keras.ops` functions (`patchify`, `unpatchify`, `random_masking`), the
fixed 2-D sin-cos positions of MAE's code (NumPy, computed once), and the
small layers a ViT is made of (`PatchEmbedding`, `ClassToken`,
`TokenPooling`, `transformer_block`). `keras_ssl.backbones.ViTBackbone`
assembles them; `keras_ssl.models.MAE` reuses them to run the same encoder
weights on the visible patches only.
"""

import keras
import numpy as np
from keras import ops


def _pair(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an int or a pair; got {value}.")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def grid_size(image_size, patch_size):
    """`(rows, columns)` of patches of an `(height, width)` image.

    Raises:
        ValueError: if a side is unknown or not divisible by `patch_size`.
    """
    height, width = image_size
    patch_size = int(patch_size)
    if patch_size < 1:
        raise ValueError(f"`patch_size` must be a positive integer; got {patch_size}.")
    if height is None or width is None:
        raise ValueError(
            "Patches need a known image size; got height and width "
            f"{(height, width)}. Give the backbone a full `image_shape`."
        )
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"The image size {height}×{width} is not divisible by the patch "
            f"size {patch_size}: crop or resize the images to a multiple of "
            f"{patch_size}, or choose another `patch_size`."
        )
    return height // patch_size, width // patch_size


def patchify(images, patch_size):
    """Cuts images into flattened, non-overlapping patches.

    `(B, H, W, C)` → `(B, (H/p)·(W/p), p·p·C)`: patches in row-major order
    (as the ViT's patch-embedding convolution visits them), each flattened
    as `(row, column, channel)`, the order of MAE's `patchify`
    (`einsum('nchpwq->nhwpqc')`).

    Example:

    >>> import numpy as np
    >>> tuple(patchify(np.zeros((2, 16, 16, 3), "float32"), 4).shape)
    (2, 16, 48)
    """
    if len(images.shape) != 4:
        raise ValueError(
            "patchify expects images (batch, height, width, channels); got "
            f"shape {tuple(images.shape)}."
        )
    _, height, width, channels = images.shape
    rows, cols = grid_size((height, width), patch_size)
    p = int(patch_size)
    x = ops.reshape(images, (-1, rows, p, cols, p, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * cols, p * p * channels))


def unpatchify(patches, patch_size, grid=None):
    """The inverse of `patchify`: `(B, N, p·p·C)` → `(B, H, W, C)`.

    Args:
        patches: flattened patches in `patchify`'s order.
        patch_size: the side p of a patch.
        grid: `(rows, columns)` of patches; `None` for a square grid.
    """
    if len(patches.shape) != 3:
        raise ValueError(
            "unpatchify expects patches (batch, patches, values); got shape "
            f"{tuple(patches.shape)}."
        )
    _, num_patches, values = patches.shape
    p = int(patch_size)
    if values % (p * p):
        raise ValueError(
            f"A patch of side {p} holds a multiple of {p * p} values; got {values}."
        )
    channels = values // (p * p)
    if grid is None:
        side = int(round(num_patches**0.5))
        if side * side != num_patches:
            raise ValueError(
                f"{num_patches} patches do not make a square grid: pass `grid`."
            )
        grid = (side, side)
    rows, cols = grid
    if rows * cols != num_patches:
        raise ValueError(f"A {rows}×{cols} grid has not {num_patches} patches.")
    x = ops.reshape(patches, (-1, rows, cols, p, p, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * p, cols * p, channels))


def _sincos_1d(dim, positions):
    """MAE's `get_1d_sincos_pos_embed_from_grid`: `[sin(pos·ω), cos(pos·ω)]`."""
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", positions.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_position_embedding(dim, grid, class_token=False):
    """Fixed 2-D sin-cos position embeddings, as in MAE's code.

    MAE (He et al., 2021) uses "the standard ViT architecture [...] with
    sine-cosine positional embeddings" in both encoder and decoder
    (`util/pos_embed.py`: `get_2d_sincos_pos_embed`): half of the channels
    encode one grid coordinate with sines and cosines of frequencies
    1/10000^(2i/d'), the other half the other coordinate; a class token gets
    an all-zero position. The numbers match that code (including which
    coordinate comes first).

    Args:
        dim: embedding width, a multiple of 4.
        grid: `(rows, columns)` of patches, or an int for a square grid.
        class_token: prepend a zero row for a class token.

    Returns:
        float32 NumPy array `([1 +] rows·columns, dim)`.

    Example:

    >>> sincos_position_embedding(16, 4, class_token=True).shape
    (17, 16)
    """
    dim = int(dim)
    if dim < 4 or dim % 4:
        raise ValueError(
            "Sin-cos position embeddings need a width that is a multiple of 4 "
            f"(sine and cosine of two coordinates); got {dim}."
        )
    rows, cols = _pair(grid, "grid")
    grid_h = np.arange(rows, dtype=np.float32)
    grid_w = np.arange(cols, dtype=np.float32)
    coords = np.stack(np.meshgrid(grid_w, grid_h), axis=0)  # w first, as MAE
    coords = coords.reshape(2, 1, rows, cols)
    emb = np.concatenate(
        [_sincos_1d(dim // 2, coords[0]), _sincos_1d(dim // 2, coords[1])], axis=1
    )
    if class_token:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return emb.astype("float32")


def random_masking(tokens, noise, mask_ratio):
    """MAE's per-sample random masking, by sorting noise.

    "We randomly sample a subset of patches without replacement, following
    a uniform distribution [...]. Implementation: first we generate a token
    for every input patch; next we randomly shuffle the list of tokens and
    remove the last portion of the list, based on the masking ratio." Each
    sample sorts its own noise: `ids_shuffle = argsort(noise)`, the first
    `int(N·(1 − mask_ratio))` are kept, `ids_restore = argsort(ids_shuffle)`
    puts the decoder's sequence back in patch order.

    Args:
        tokens: `(B, N, D)` patch tokens.
        noise: `(B, N)` floats, e.g. `keras.random.uniform` with a
            `SeedGenerator` (distinct values: ties are broken arbitrarily).
        mask_ratio: the fraction of patches to remove, in (0, 1).

    Returns:
        `(visible, mask, ids_restore)`: the kept tokens `(B, N_keep, D)` in
        shuffled order, the binary mask `(B, N)` in patch order (1 = removed,
        0 = kept) and `ids_restore` `(B, N)` int32.

    Example:

    >>> import numpy as np
    >>> tokens = np.zeros((2, 16, 8), "float32")
    >>> noise = np.random.default_rng(0).random((2, 16))
    >>> visible, mask, ids_restore = random_masking(tokens, noise, 0.75)
    >>> tuple(visible.shape), float(keras.ops.sum(mask))
    ((2, 4, 8), 24.0)
    """
    num_patches = tokens.shape[1]
    num_keep = kept_patches(num_patches, mask_ratio)
    ids_shuffle = ops.cast(ops.argsort(noise, axis=1), "int32")
    ids_restore = ops.cast(ops.argsort(ids_shuffle, axis=1), "int32")
    ids_keep = ids_shuffle[:, :num_keep]
    visible = ops.take_along_axis(tokens, ids_keep[:, :, None], axis=1)
    # A patch is removed when its place in the shuffled list is past N_keep.
    mask = ops.cast(ops.greater_equal(ids_restore, num_keep), tokens.dtype)
    return visible, mask, ids_restore


def beit_block_sizes(grid, mask_ratio=0.4, min_block_patches=None):
    """`(num_masked, min_block_patches)` of BEiT's masking, scaled to a grid.

    BEiT masks 75 of the 14×14 = 196 patches of a 224-px image (~40%) in
    blocks of at least 16 patches; on another grid the same fractions give
    `round(mask_ratio · N)` masked patches and blocks of at least
    `max(1, round(16 · N / 196))` patches (5 on an 8×8 grid).
    """
    rows, cols = _pair(grid, "grid")
    num_patches = rows * cols
    mask_ratio = float(mask_ratio)
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(
            f"`mask_ratio` must be in (0, 1) (BEiT: 0.4); got {mask_ratio}."
        )
    num_masked = int(round(mask_ratio * num_patches))
    if num_masked < 1 or num_masked >= num_patches:
        raise ValueError(
            f"`mask_ratio` {mask_ratio} of {num_patches} patches masks "
            f"{num_masked}; at least one patch must be masked and one kept."
        )
    if min_block_patches is None:
        min_block_patches = max(1, int(round(16 * num_patches / 196)))
    min_block_patches = int(min_block_patches)
    if not 1 <= min_block_patches <= num_masked:
        raise ValueError(
            f"`min_block_patches` must be in [1, {num_masked}] (the patches "
            f"to mask); got {min_block_patches}."
        )
    return num_masked, min_block_patches


def blockwise_masking(batch_size, grid, num_masked, min_block_patches,
                      seed=None, num_blocks=None, min_aspect=0.3):
    """BEiT's blockwise masking: `(B, N)` masks of exactly `num_masked` ones.

    BEiT (Bao et al., 2021, algorithm 1): "we randomly choose a block of
    image patches [...] with a minimum number of patches to 16 [...] and
    randomly choose an aspect ratio for the masking block", repeated until
    enough patches are masked. Here, for every sample, in `keras.ops` (so it
    runs inside a jit-compiled step, drawing from `seed`, a
    `keras.random.SeedGenerator`):

    1. `num_blocks` rectangles: area `s ~ U[min_block_patches, num_masked]`,
       aspect `r ~ logU[min_aspect, 1/min_aspect]`, height `round(√(s·r))`
       and width `round(√(s/r))` clipped to the grid, uniform position;
    2. they are added in turn, each only if the union still masks at most
       `num_masked` patches (BEiT's `0 < delta <= max_mask_patches`);
    3. the count is then made exact with random single patches (BEiT's loop
       can stop short; an exact count keeps the loss's denominator fixed).

    Args:
        batch_size: B.
        grid: `(rows, columns)` of patches.
        num_masked: patches to mask per sample (see `beit_block_sizes`).
        min_block_patches: the smallest block's area, in patches.
        seed: a `keras.random.SeedGenerator` (or int) for every draw.
        num_blocks: rectangles tried per sample (default: enough for the
            smallest blocks to cover the count twice, at most 16).
        min_aspect: the smallest aspect ratio (BEiT: 0.3).

    Returns:
        float32 `(B, rows·columns)`, 1 = masked, in patch (row-major) order.

    Example:

    >>> mask = blockwise_masking(2, (8, 8), 26, 5, seed=0)
    >>> keras.ops.convert_to_numpy(keras.ops.sum(mask, axis=1)).tolist()
    [26.0, 26.0]
    """
    rows, cols = _pair(grid, "grid")
    num_patches = rows * cols
    num_masked, min_block = int(num_masked), int(min_block_patches)
    if not 0 < num_masked < num_patches:
        raise ValueError(
            f"`num_masked` must be in (0, {num_patches}); got {num_masked}."
        )
    if num_blocks is None:
        num_blocks = min(16, max(2, -(-2 * num_masked // min_block)))
    shape = (batch_size, int(num_blocks), 1, 1)
    uniform = lambda: keras.random.uniform(shape, seed=seed)  # noqa: E731
    area = min_block + uniform() * (num_masked - min_block)
    log_aspect = np.log(min_aspect) + uniform() * (-2.0 * np.log(min_aspect))
    aspect = ops.exp(log_aspect)
    height = ops.clip(ops.round(ops.sqrt(area * aspect)), 1.0, float(rows))
    width = ops.clip(ops.round(ops.sqrt(area / aspect)), 1.0, float(cols))
    top = ops.floor(uniform() * (rows - height + 1.0))
    left = ops.floor(uniform() * (cols - width + 1.0))
    r = ops.reshape(ops.arange(rows, dtype="float32"), (1, 1, rows, 1))
    c = ops.reshape(ops.arange(cols, dtype="float32"), (1, 1, 1, cols))
    inside = (
        ops.cast(r >= top, "float32") * ops.cast(r < top + height, "float32")
        * ops.cast(c >= left, "float32") * ops.cast(c < left + width, "float32")
    )
    blocks = ops.reshape(inside, (batch_size, int(num_blocks), num_patches))
    union = ops.zeros((batch_size, num_patches), "float32")
    for k in range(int(num_blocks)):
        candidate = ops.maximum(union, blocks[:, k])
        fits = ops.sum(candidate, axis=1, keepdims=True) <= num_masked
        union = ops.where(fits, candidate, union)
    # Blocks first (score ≥ 2), then random patches, until exactly
    # `num_masked`: the top `num_masked` scores of each row.
    score = 2.0 * union + keras.random.uniform(
        (batch_size, num_patches), seed=seed
    )
    order = ops.argsort(-score, axis=1)
    rank = ops.argsort(order, axis=1)
    return ops.cast(rank < num_masked, "float32")


def kept_patches(num_patches, mask_ratio):
    """`int(N·(1 − mask_ratio))`, MAE's `len_keep`, with clear errors."""
    mask_ratio = float(mask_ratio)
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(
            f"`mask_ratio` must be in (0, 1) (MAE: 0.75); got {mask_ratio}."
        )
    num_keep = int(num_patches * (1 - mask_ratio))
    if num_keep < 1 or num_keep >= num_patches:
        raise ValueError(
            f"`mask_ratio` {mask_ratio} of {num_patches} patches keeps "
            f"{num_keep}; at least one patch must be kept and one removed. "
            "Use smaller patches or another ratio."
        )
    return num_keep


def transformer_block(hidden_dim, num_heads, mlp_ratio=4.0,
                      layer_norm_epsilon=1e-6, dtype=None, name=None):
    """A pre-norm ViT block: `x + MSA(LN(x))`, then `x + MLP(LN(x))`.

    The block of ViT and MAE (timm's `Block`): multi-head self-attention
    with biases, an MLP `hidden_dim → mlp_ratio·hidden_dim → hidden_dim`
    with (exact) GELU, layer norm with ε = 1e-6 before each, residual
    connections around both, Xavier-uniform weights. It is keras-hub's
    `TransformerEncoder` with `normalize_first=True`, which is exactly this,
    works on any sequence length and serialises.
    """
    from keras_hub.layers import TransformerEncoder

    if int(hidden_dim) % int(num_heads):
        raise ValueError(
            f"The width {hidden_dim} must be divisible by the number of "
            f"attention heads {num_heads}."
        )
    return TransformerEncoder(
        intermediate_dim=int(round(mlp_ratio * hidden_dim)),
        num_heads=int(num_heads),
        activation="gelu",
        layer_norm_epsilon=layer_norm_epsilon,
        normalize_first=True,
        dtype=dtype,
        name=name,
    )


@keras.saving.register_keras_serializable(package="keras_ssl")
class PatchEmbedding(keras.layers.Layer):
    """Images → patch tokens with fixed sin-cos positions added.

    Called with a `(B, N)` `token_mask` (1 = masked) and a `(D,)` `mask_token`,
    masked patches' embeddings are replaced by the token before the
    positions are added (BEiT's corrupted input). A convolution of kernel and stride `patch_size` (a linear map of each
    flattened patch) to `hidden_dim` channels, flattened to a sequence in
    `patchify`'s patch order, plus `sincos_position_embedding`. Its kernel is
    initialised as MAE initialises it: Xavier-uniform over the kernel viewed
    as a `(p·p·C, hidden_dim)` matrix.

    Args:
        hidden_dim: token width (a multiple of 4).
        patch_size: side of a square patch.
        image_size: `(height, width)`, each divisible by `patch_size`.
        position_embedding: `"sincos"` (default) adds the fixed table;
            `"learned"` adds a trainable `(N, hidden_dim)` weight
            (`learned_positions`, ViT's and keras-hub's choice), initialised
            to the same sin-cos table.

    Example:

    >>> import numpy as np
    >>> layer = PatchEmbedding(16, 4, (16, 16))
    >>> tuple(layer(np.zeros((2, 16, 16, 3), "float32")).shape)
    (2, 16, 16)
    """

    def __init__(self, hidden_dim, patch_size, image_size,
                 position_embedding="sincos", **kwargs):
        super().__init__(**kwargs)
        if position_embedding not in ("sincos", "learned"):
            raise ValueError(
                "`position_embedding` must be 'sincos' or 'learned'; got "
                f"{position_embedding!r}."
            )
        self.hidden_dim = int(hidden_dim)
        self.patch_size = int(patch_size)
        self.image_size = _pair(image_size, "image_size")
        self.position_embedding = position_embedding
        self.grid = grid_size(self.image_size, self.patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.positions = sincos_position_embedding(self.hidden_dim, self.grid)
        self.projection = None
        self.learned_positions = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        fan_in = self.patch_size**2 * channels
        # Keras' Glorot on a conv kernel counts p·p·hidden_dim as fan-out;
        # this scale gives MAE's limit sqrt(6 / (p·p·C + hidden_dim)).
        scale = (fan_in + self.patch_size**2 * self.hidden_dim) / (
            fan_in + self.hidden_dim
        )
        self.projection = keras.layers.Conv2D(
            self.hidden_dim,
            self.patch_size,
            strides=self.patch_size,
            padding="valid",
            kernel_initializer=keras.initializers.VarianceScaling(
                scale, mode="fan_avg", distribution="uniform"
            ),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build(input_shape)
        if self.position_embedding == "learned":
            table = self.positions
            self.learned_positions = self.add_weight(
                shape=table.shape,
                initializer=lambda shape, dtype=None: ops.cast(table, dtype),
                name="positions",
            )
        self.built = True

    def call(self, images, token_mask=None, mask_token=None):
        # `token_mask`, not `mask`: Keras reserves `mask` for its own masking.
        x = self.projection(images)
        x = ops.reshape(x, (-1, self.num_patches, self.hidden_dim))
        if token_mask is not None:
            # BEiT: a masked patch's embedding is replaced by the learned
            # [MASK] embedding, before the positions are added.
            if mask_token is None:
                raise ValueError("A `token_mask` needs the `mask_token` to put in.")
            m = ops.cast(token_mask, x.dtype)[:, :, None]
            token = ops.reshape(ops.cast(mask_token, x.dtype), (1, 1, -1))
            x = x * (1.0 - m) + token * m
        positions = (
            self.positions if self.learned_positions is None
            else self.learned_positions
        )
        return x + ops.cast(positions, x.dtype)[None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "patch_size": self.patch_size,
                "image_size": list(self.image_size),
                "position_embedding": self.position_embedding,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class ClassToken(keras.layers.Layer):
    """Prepends a learned token to a sequence: `(B, N, D)` → `(B, 1 + N, D)`.

    ViT's `[class]` token, initialised N(0, 0.02²) as in MAE; its position
    embedding is zero, so nothing is added to it.
    """

    def build(self, input_shape):
        self.token = self.add_weight(
            shape=(1, 1, int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="token",
        )
        self.built = True

    def call(self, tokens):
        token = ops.cast(self.token, tokens.dtype) + ops.zeros_like(tokens[:, :1])
        return ops.concatenate([token, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])


def prefix_tokens(encoder):
    """How many leading tokens of `encoder`'s output are not patches (a
    ViT's class token): the average of the tokens leaves them out."""
    return int(getattr(encoder, "num_prefix_tokens", 0) or 0)


@keras.saving.register_keras_serializable(package="keras_ssl")
class TokenPooling(keras.layers.Layer):
    """A token sequence → one vector: `"avg"` of the patch tokens or `"cls"`.

    Args:
        pooling: `"avg"` averages the tokens after the first
            `num_prefix_tokens` (MAE's `global_pool`); `"cls"` takes the
            first token (ViT's class token).
        num_prefix_tokens: number of leading non-patch tokens (class token).
    """

    def __init__(self, pooling="avg", num_prefix_tokens=0, **kwargs):
        super().__init__(**kwargs)
        if pooling not in ("avg", "cls"):
            raise ValueError(f"`pooling` must be 'avg' or 'cls'; got {pooling!r}.")
        if pooling == "cls" and num_prefix_tokens < 1:
            raise ValueError("`pooling='cls'` needs a class token.")
        self.pooling = pooling
        self.num_prefix_tokens = int(num_prefix_tokens)

    def call(self, tokens):
        if self.pooling == "cls":
            return tokens[:, 0]
        return ops.mean(tokens[:, self.num_prefix_tokens :], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {"pooling": self.pooling, "num_prefix_tokens": self.num_prefix_tokens}
        )
        return config
