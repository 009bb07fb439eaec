"""A small Vision Transformer with fixed sin-cos positions, as a keras-hub `Backbone`."""

import keras
from keras_hub.models import Backbone

from keras_ssl.layers.vit import (
    ClassToken,
    PatchEmbedding,
    TokenPooling,
    grid_size,
    transformer_block,
)


@keras.saving.register_keras_serializable(package="keras_ssl")
class ViTBackbone(Backbone):
    """Vision Transformer (Dosovitskiy et al., 2021) with MAE's fixed positions.

    Images `(B, H, W, C)` in [0, 1] are cut into `patch_size` patches, each
    linearly embedded (`PatchEmbedding`: a strided convolution) with fixed 2-D
    sin-cos positions added; an optional class token is prepended; then
    `num_layers` pre-norm Transformer blocks (`transformer_block`) and a final
    layer norm. This is the encoder of MAE (He et al., 2021): "Our encoder is a
    ViT but applied only on visible, unmasked patches".

    keras-hub's `ViTBackbone` learns its position embeddings and runs all
    patches in one functional graph; this one uses MAE's fixed sin-cos
    positions by default (`position_embedding="learned"` learns them, as
    keras-hub's does: `keras_ssl.backbones.initialize_from_preset` copies a
    keras-hub ViT preset into it exactly) and also exposes its two halves,
    so that a method can run the *same weights* on a subset of the patch
    tokens (no mask tokens enter the encoder):

    - `embed_patches(images)`: `(B, N, D)` patch tokens with positions;
    - `encode_tokens(tokens)`: class token + blocks + norm on any number of
      tokens, `(B, [1 +] n, D)`.

    Calling the backbone is `encode_tokens(embed_patches(images))` followed by
    the pooling. Being a keras-hub `Backbone`, it saves to and loads from a
    preset directory (`save_to_preset` / `keras_hub.models.Backbone.from_preset`).

    Args:
        image_shape: `(height, width, channels)`, height and width divisible
            by `patch_size`.
        patch_size: side of the square patches (ViT-B/16: 16; 4 suits 32×32).
        hidden_dim: token width D, a multiple of 4 and of `num_heads`.
        num_layers: number of Transformer blocks.
        num_heads: attention heads per block.
        mlp_ratio: MLP width as a multiple of D.
        use_class_token: prepend a learned class token (MAE and ViT do).
        pooling: `None` (default, as keras-hub's ViT) returns the token
            sequence `(B, [1 +] N, D)`, which methods and the evaluation
            average over the patch tokens (`num_prefix_tokens` says how many
            leading tokens are not patches); `"avg"` returns `(B, D)`, the
            mean of the patch tokens; `"cls"` the class token.
        layer_norm_epsilon: ε of the layer norms (MAE: 1e-6).
        position_embedding: `"sincos"` (default): MAE's fixed 2-D sin-cos
            positions; `"learned"`: a trainable table (ViT's), initialised
            to the same values.
        dtype: dtype policy of the layers.

    Example:

    >>> import numpy as np
    >>> backbone = ViTBackbone(image_shape=(16, 16, 3), patch_size=4,
    ...                        hidden_dim=16, num_layers=1, num_heads=2)
    >>> tuple(backbone(np.zeros((2, 16, 16, 3), "float32")).shape)
    (2, 17, 16)
    >>> tokens = backbone.embed_patches(np.zeros((2, 16, 16, 3), "float32"))
    >>> tuple(backbone.encode_tokens(tokens[:, :4]).shape)  # 4 patches + cls
    (2, 5, 16)
    """

    def __init__(
        self,
        image_shape=(32, 32, 3),
        patch_size=4,
        hidden_dim=192,
        num_layers=12,
        num_heads=3,
        mlp_ratio=4.0,
        use_class_token=True,
        pooling=None,
        layer_norm_epsilon=1e-6,
        position_embedding="sincos",
        dtype=None,
        **kwargs,
    ):
        image_shape = tuple(image_shape)
        if len(image_shape) != 3:
            raise ValueError(
                "`image_shape` must be (height, width, channels); got "
                f"{image_shape}."
            )
        patch_size, hidden_dim = int(patch_size), int(hidden_dim)
        num_layers, num_heads = int(num_layers), int(num_heads)
        grid = grid_size(image_shape[:2], patch_size)
        if hidden_dim < 4 or hidden_dim % 4:
            raise ValueError(
                "`hidden_dim` must be a multiple of 4 (2-D sin-cos positions); "
                f"got {hidden_dim}."
            )
        if num_heads < 1 or hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` {hidden_dim} must be divisible by `num_heads` "
                f"{num_heads}."
            )
        if num_layers < 0:
            raise ValueError(f"`num_layers` must be >= 0; got {num_layers}.")
        if pooling not in ("avg", "cls", None):
            raise ValueError(
                f"`pooling` must be 'avg', 'cls' or None; got {pooling!r}."
            )
        if pooling == "cls" and not use_class_token:
            raise ValueError("`pooling='cls'` needs `use_class_token=True`.")

        # === Layers ===
        self.patch_embedding = PatchEmbedding(
            hidden_dim, patch_size, image_shape[:2],
            position_embedding=position_embedding, dtype=dtype,
            name="patch_embedding",
        )
        self.class_token = (
            ClassToken(dtype=dtype, name="class_token") if use_class_token else None
        )
        self.transformer_layers = [
            transformer_block(
                hidden_dim, num_heads, mlp_ratio, layer_norm_epsilon,
                dtype=dtype, name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="encoder_norm"
        )

        # === Functional Model ===
        inputs = keras.layers.Input(shape=image_shape, name="images")
        x = self.encode_tokens(self.embed_patches(inputs))
        if pooling is not None:
            x = TokenPooling(
                pooling, int(use_class_token), dtype=dtype, name="pooling"
            )(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_ratio = float(mlp_ratio)
        self.use_class_token = bool(use_class_token)
        self.pooling = pooling
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.position_embedding = position_embedding
        self.grid = grid
        self.num_patches = grid[0] * grid[1]
        self.num_prefix_tokens = int(use_class_token)

    def embed_patches(self, images, mask=None, mask_token=None):
        """Images `(B, H, W, C)` → patch tokens `(B, N, D)` with positions.

        With a `(B, N)` `mask` (1 = masked) the masked patches' embeddings
        are replaced by `mask_token` (a `(D,)` weight of the caller, BEiT's
        `[MASK]` embedding) before the positions are added.
        """
        if mask is None:
            return self.patch_embedding(images)
        return self.patch_embedding(
            images, token_mask=mask, mask_token=mask_token
        )

    def encode_tokens(self, tokens, training=False):
        """Runs the Transformer on any subset of patch tokens `(B, n, D)`.

        Prepends the class token (if any), applies the blocks and the final
        layer norm: `(B, [1 +] n, D)`. With all N tokens of `embed_patches`
        this is the backbone's output before pooling.
        """
        x = tokens
        if self.class_token is not None:
            x = self.class_token(x)
        for layer in self.transformer_layers:
            x = layer(x, training=training)
        return self.layer_norm(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "patch_size": self.patch_size,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "use_class_token": self.use_class_token,
                "pooling": self.pooling,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "position_embedding": self.position_embedding,
            }
        )
        return config
