"""MAE: masked autoencoders are scalable vision learners."""

import keras
from keras import ops

from keras_ssl.layers.mae_decoder import MAEDecoder
from keras_ssl.layers.vit import kept_patches, patchify, random_masking, unpatchify
from keras_ssl.losses.mae import mae_loss, normalize_patches
from keras_ssl.models.ssl_model import SSLModel

_ENCODER_API = ("embed_patches", "encode_tokens", "patch_size", "image_shape",
                "grid", "num_patches", "num_prefix_tokens", "hidden_dim")


@keras.saving.register_keras_serializable(package="keras_ssl")
class MAE(SSLModel):
    """MAE (He et al., 2021).

    "Our MAE is a simple autoencoding approach that reconstructs the original
    signal given its partial observation. [...] we use an asymmetric design
    that allows the encoder to operate only on the partial, observed signal
    (without mask tokens) and a lightweight decoder that reconstructs the
    full signal from the latent representation and mask tokens." The
    paper's recipe, which `call` and `compute_loss` follow:

    ```
    for minibatch x:
        patches = patchify(x)                          # N patches per image
        tokens = embed(patches) + pos                  # encoder's embedding
        noise = uniform(B, N)                          # per sample
        visible, mask, ids_restore = random_masking(tokens, noise, 0.75)
        latent = encoder_blocks([cls, visible])        # 25% of the tokens
        pred = decoder(latent, mask_token, ids_restore)  # all N patches
        loss = mse(pred, patches) on the masked patches only
    ```

    Details:

    - The encoder must run on a subset of patch tokens: a
      `keras_ssl.backbones.ViTBackbone` (it exposes `embed_patches` and
      `encode_tokens`, the two halves of its forward pass). Masked patches
      are removed, not replaced: no mask token enters the encoder, so its
      sequence is `num_prefix_tokens + int(N · (1 − mask_ratio))` long.
    - Random masking draws its noise from `keras.random.uniform` with a
      `keras.random.SeedGenerator` stored on the model, so masks differ at
      every step and in every sample, jit-compiled on every backend (the
      generator's state is model state, carried through the jitted step).
      The same seed does not give the same masks on different backends
      (their random number generators differ): to fix a mask, pass the noise
      yourself (`{"images": x, "noise": n}`, as MAE's `random_masking` takes
      `noise`), which the cross-backend tests do.
    - The decoder (`MAEDecoder`) has its own width, depth and sin-cos
      positions; its output is dropped after pre-training. Representations
      for downstream use are the encoder's, on whole images: `model.encoder`
      (pooled as the backbone was configured; `encode` pools tokens).
    - The loss is `keras_ssl.losses.mae_loss`: pixel MSE on the masked
      patches only, on per-patch normalised pixels with `norm_pix_loss`.

    Inputs (to `call`, `fit`, `reconstruct`): float images `(B, H, W, C)` in
    [0, 1] of the encoder's `image_shape`, given as a tensor, as a 1-tuple
    `(images,)` (what `multi_view_dataset(..., num_views=1)` yields), or as
    a dict `{"images": images, "noise": noise}` with `(B, N)` noise whose
    per-sample argsort decides which patches are kept (the lowest
    `int(N · (1 − mask_ratio))`). One image per batch is enough: nothing is
    computed across the batch.

    Outputs of `call`: a dict of `predictions` `(B, N, p·p·C)` (pixels, or
    normalised pixels with `norm_pix_loss`), `target_patches` (the images'
    patches, `patchify`) and `mask` `(B, N)` (1 = removed).

    Args:
        encoder: a `ViTBackbone` (or any model with its `embed_patches` /
            `encode_tokens` interface).
        mask_ratio: the fraction of patches removed per image (paper: 0.75).
        decoder_dim: decoder width (paper: 512; a multiple of 4).
        decoder_depth: decoder Transformer blocks (paper: 8).
        decoder_num_heads: decoder attention heads (paper: 16).
        decoder_mlp_ratio: decoder MLP width as a multiple of `decoder_dim`.
        norm_pix_loss: regress per-patch normalised pixels (the paper's
            better variant; off by default, plain pixels).
        seed: seed of the masking's `SeedGenerator` (`None`: drawn from
            Keras' global seed, `keras.utils.set_random_seed`).

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.models.mae import MAE
    data = keras_ssl.data.load_image_data("digits")
    images = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.mae_augmentation(16), num_views=1,
        batch_size=128)
    encoder = keras_ssl.backbones.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=4, hidden_dim=64, num_layers=4,
        num_heads=4)
    model = MAE(encoder, decoder_dim=32, decoder_depth=2, decoder_num_heads=4)
    model.compile(optimizer=keras.optimizers.AdamW(
        1e-3, weight_decay=0.05, beta_2=0.95))  # MAE: AdamW, β2 0.95, wd 0.05
    model.fit(images, epochs=2)
    masked, reconstructed = model.reconstruct(data.x_test[:8, :16, :16])
    encoder.save("encoder.keras")
    ```
    """

    def __init__(
        self,
        encoder,
        mask_ratio=0.75,
        decoder_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        decoder_mlp_ratio=4.0,
        norm_pix_loss=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mask_ratio = float(mask_ratio)
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(
                "MAE `mask_ratio` (the fraction of patches removed) must be in "
                f"(0, 1); got {mask_ratio}. The paper uses 0.75."
            )
        self.require_api(
            encoder, _ENCODER_API, "MAE's encoder",
            "a ViT that can embed patches and encode any subset of them (it "
            "runs on the visible patches only), such as "
            "`keras_ssl.backbones.ViTBackbone`",
        )
        if int(decoder_dim) < 4 or int(decoder_dim) % 4:
            raise ValueError(
                "MAE `decoder_dim` must be a multiple of 4 (the decoder's 2-D "
                f"sin-cos positions); got {decoder_dim}."
            )
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.num_keep = kept_patches(encoder.num_patches, mask_ratio)
        self.patch_size = int(encoder.patch_size)
        self.decoder_dim = int(decoder_dim)
        self.decoder_depth = int(decoder_depth)
        self.decoder_num_heads = int(decoder_num_heads)
        self.decoder_mlp_ratio = float(decoder_mlp_ratio)
        self.norm_pix_loss = bool(norm_pix_loss)
        self.seed = seed
        channels = int(encoder.image_shape[-1])
        self.decoder = MAEDecoder(
            encoder.grid,
            patch_dim=self.patch_size**2 * channels,
            hidden_dim=self.decoder_dim,
            num_layers=self.decoder_depth,
            num_heads=self.decoder_num_heads,
            mlp_ratio=self.decoder_mlp_ratio,
            num_prefix_tokens=encoder.num_prefix_tokens,
            layer_norm_epsilon=getattr(encoder, "layer_norm_epsilon", 1e-6),
            name="decoder",
        )
        self.decoder.build((None, None, int(encoder.hidden_dim)))
        # Masking noise: state of the model, advanced at every draw, carried
        # through the jitted step on every backend (as `Dropout` does).
        self.seed_generator = keras.random.SeedGenerator(seed, name="mask_seed")
        # Every size is known from the encoder: build now, so that weights,
        # `summary()` and `count_params()` exist before the first batch.
        self.build(None)

    def build(self, input_shape=None):
        # The decoder is built in the constructor; nothing depends on the
        # input shape.
        self.built = True

    # --- inputs -------------------------------------------------------------
    def split_inputs(self, inputs):
        """`(images, noise or None)` from the accepted input forms, checked.

        Raises:
            ValueError: naming what was expected, for several views, an
                unknown dict key, images that are not a float batch of the
                encoder's `image_shape`, an empty batch, or noise that is not
                `(batch, num_patches)`.
        """
        images, noise = self.split_image_inputs(inputs, "noise")
        self.check_image_batch(images, self.encoder.image_shape, self.patch_size)
        if noise is not None:
            self.check_patch_values(noise, images, self.encoder.num_patches,
                                    "masking noise")
        return images, noise

    # --- the method ---------------------------------------------------------
    def mask_noise(self, batch_size):
        """Uniform noise `(batch_size, N)` from the model's `SeedGenerator`
        (under `tf.distribute`, this replica's rows of the global draw)."""
        return self.uniform_noise(batch_size, (self.encoder.num_patches,))

    def encode_visible(self, images, noise=None, training=False):
        """MAE's `forward_encoder`: masking, then the encoder on visible tokens.

        Returns:
            `(latent, mask, ids_restore)`: the encoded visible tokens
            `(B, num_prefix_tokens + n_keep, D)`, the mask `(B, N)` (1 =
            removed) and `ids_restore` `(B, N)`.
        """
        tokens = self.encoder.embed_patches(images)
        if noise is None:
            noise = self.mask_noise(ops.shape(tokens)[0])
        visible, mask, ids_restore = random_masking(tokens, noise, self.mask_ratio)
        latent = self.encoder.encode_tokens(visible, training=training)
        return latent, mask, ids_restore

    def call(self, inputs, training=False):
        images, noise = self.split_inputs(inputs)
        latent, mask, ids_restore = self.encode_visible(images, noise, training)
        predictions = self.decoder(latent, ids_restore, training=training)
        return {
            "predictions": predictions,
            "target_patches": patchify(images, self.patch_size),
            "mask": mask,
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return mae_loss(
            y_pred["predictions"],
            y_pred["target_patches"],
            y_pred["mask"],
            norm_pix_loss=self.norm_pix_loss,
        )

    def reconstruct(self, images, noise=None, fill_value=0.5):
        """Masked inputs and reconstructions, for a picture grid.

        Runs the model once (a fresh random mask per image unless `noise` is
        given). With `norm_pix_loss` the predicted patches are mapped back to
        pixels with each true patch's mean and standard deviation, as MAE's
        visualisations do.

        Args:
            images: float images `(B, H, W, C)` in [0, 1].
            noise: optional `(B, N)` masking noise.
            fill_value: the grey level shown in removed patches.

        Returns:
            `(masked_images, reconstructed_images)`, NumPy `(B, H, W, C)`:
            the visible patches with removed ones filled with `fill_value`,
            and the visible patches with the predictions pasted into the
            removed ones, clipped to [0, 1].
        """
        inputs = images if noise is None else {"images": images, "noise": noise}
        outputs = self(inputs, training=False)
        predictions = ops.cast(outputs["predictions"], "float32")
        target = ops.cast(outputs["target_patches"], "float32")
        if self.norm_pix_loss:
            _, mean, std = normalize_patches(target)
            predictions = predictions * std + mean
        mask = ops.cast(outputs["mask"], "float32")[:, :, None]
        masked = target * (1.0 - mask) + fill_value * mask
        pasted = target * (1.0 - mask) + predictions * mask
        grid = tuple(self.encoder.grid)
        return (
            ops.convert_to_numpy(unpatchify(masked, self.patch_size, grid)),
            ops.convert_to_numpy(
                ops.clip(unpatchify(pasted, self.patch_size, grid), 0.0, 1.0)
            ),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "mask_ratio": self.mask_ratio,
                "decoder_dim": self.decoder_dim,
                "decoder_depth": self.decoder_depth,
                "decoder_num_heads": self.decoder_num_heads,
                "decoder_mlp_ratio": self.decoder_mlp_ratio,
                "norm_pix_loss": self.norm_pix_loss,
                "seed": self.seed,
            }
        )
        return config
