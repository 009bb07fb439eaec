"""MAE's light-weight decoder: mask tokens, unshuffle, Transformer, pixels."""

import keras
from keras import ops

from keras_ssl.layers.vit import sincos_position_embedding, transformer_block


@keras.saving.register_keras_serializable(package="keras_ssl")
class MAEDecoder(keras.layers.Layer):
    """The decoder of MAE (He et al., 2021).

    "The input to the MAE decoder is the full set of tokens consisting of (i)
    encoded visible patches, and (ii) mask tokens. Each mask token is a
    shared, learned vector that indicates the presence of a missing patch to
    be predicted. We add positional embeddings to all tokens in this full
    set [...]. The decoder has another series of Transformer blocks. [...]
    Each element in the decoder's output is a vector of pixel values
    representing a patch. The last layer of the decoder is a linear
    projection whose number of output channels equals the number of pixel
    values in a patch." MAE's `forward_decoder`:

    ```
    x = decoder_embed(latent)                        # encoder → decoder width
    x_ = cat([x[:, 1:], mask_token × (N − n_keep)])  # visible + mask tokens
    x_ = gather(x_, ids_restore)                     # unshuffle: patch order
    x = cat([x[:, :1], x_]) + decoder_pos_embed      # class token back
    x = decoder_norm(decoder_blocks(x))
    pred = decoder_pred(x)[:, 1:]                    # pixels, no class token
    ```

    Args:
        grid: `(rows, columns)` of patches (N = rows·columns).
        patch_dim: pixel values per patch, p·p·C.
        hidden_dim: decoder width (paper: 512, a multiple of 4).
        num_layers: decoder blocks (paper: 8).
        num_heads: attention heads (paper: 16).
        mlp_ratio: MLP width as a multiple of `hidden_dim`.
        num_prefix_tokens: leading non-patch tokens of the encoder's output
            (1 with a class token), carried through and dropped at the end.
        layer_norm_epsilon: ε of the layer norms.

    Call arguments:
        latent: `(B, num_prefix_tokens + n_keep, D_encoder)` encoded visible
            tokens in shuffled order (`random_masking`'s order).
        ids_restore: `(B, N)` int, `random_masking`'s `ids_restore`.

    Returns:
        `(B, N, patch_dim)` predicted pixels, in patch order.

    Example:

    >>> import numpy as np
    >>> from keras_ssl.layers.vit import random_masking
    >>> decoder = MAEDecoder((4, 4), patch_dim=48, hidden_dim=16,
    ...                      num_layers=1, num_heads=2)
    >>> tokens = np.zeros((2, 16, 32), "float32")
    >>> noise = np.random.default_rng(0).random((2, 16))
    >>> visible, mask, ids_restore = random_masking(tokens, noise, 0.75)
    >>> latent = np.concatenate([np.zeros((2, 1, 32), "float32"), visible], 1)
    >>> tuple(decoder(latent, ids_restore).shape)
    (2, 16, 48)
    """

    def __init__(
        self,
        grid,
        patch_dim,
        hidden_dim=512,
        num_layers=8,
        num_heads=16,
        mlp_ratio=4.0,
        num_prefix_tokens=1,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid = (int(grid[0]), int(grid[1]))
        self.num_patches = self.grid[0] * self.grid[1]
        self.patch_dim = int(patch_dim)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.mlp_ratio = float(mlp_ratio)
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        if self.num_layers < 0 or self.patch_dim < 1:
            raise ValueError(
                "MAEDecoder needs `num_layers` >= 0 and `patch_dim` >= 1; got "
                f"{self.num_layers} and {self.patch_dim}."
            )
        # Raises for a width that is not a multiple of 4.
        self.positions = sincos_position_embedding(
            self.hidden_dim, self.grid, class_token=False
        )
        self.embed = keras.layers.Dense(
            self.hidden_dim, dtype=self.dtype_policy, name="decoder_embed"
        )
        self.blocks = [
            transformer_block(
                self.hidden_dim, self.num_heads, self.mlp_ratio,
                self.layer_norm_epsilon, dtype=self.dtype_policy,
                name=f"decoder_layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="decoder_norm",
        )
        self.predict_pixels = keras.layers.Dense(
            self.patch_dim, dtype=self.dtype_policy, name="decoder_pred"
        )

    def build(self, latent_shape, ids_restore_shape=None):
        self.embed.build((None, None, int(latent_shape[-1])))
        self.mask_token = self.add_weight(
            shape=(1, 1, self.hidden_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="mask_token",
        )
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        self.norm.build((None, None, self.hidden_dim))
        self.predict_pixels.build((None, None, self.hidden_dim))
        self.built = True

    def call(self, latent, ids_restore, training=False):
        prefix = self.num_prefix_tokens
        num_visible = latent.shape[1] - prefix
        num_masked = self.num_patches - num_visible
        if num_visible < 1 or num_masked < 0:
            raise ValueError(
                f"MAEDecoder: {latent.shape[1]} tokens with {prefix} prefix "
                f"tokens do not fit {self.num_patches} patches."
            )
        x = self.embed(latent)
        head, visible = x[:, :prefix], x[:, prefix:]
        # One shared mask token per removed patch (B × (N − n_keep) copies).
        mask_tokens = ops.repeat(
            ops.cast(self.mask_token, x.dtype) + ops.zeros_like(visible[:, :1]),
            num_masked,
            axis=1,
        )
        x = ops.concatenate([visible, mask_tokens], axis=1)
        # Unshuffle: token j of the patch-order sequence is shuffled token
        # ids_restore[j].
        x = ops.take_along_axis(x, ops.cast(ids_restore, "int32")[:, :, None], axis=1)
        x = x + ops.cast(self.positions[None], x.dtype)
        # The class token's position is zero (MAE), so it is put back as is.
        x = ops.concatenate([head, x], axis=1)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.predict_pixels(self.norm(x))
        return x[:, prefix:]

    def compute_output_shape(self, latent_shape, ids_restore_shape=None):
        return (latent_shape[0], self.num_patches, self.patch_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid": list(self.grid),
                "patch_dim": self.patch_dim,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "num_prefix_tokens": self.num_prefix_tokens,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
