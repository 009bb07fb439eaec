"""BEiT: masked image modelling against the codes of a visual tokenizer."""

import keras
import numpy as np
from keras import ops

from keras_ssl.layers.vit import beit_block_sizes, blockwise_masking
from keras_ssl.losses.masked_tokens import masked_token_accuracy, masked_token_loss
from keras_ssl.models.ssl_model import SSLModel, freeze

_ENCODER_API = ("embed_patches", "encode_tokens", "patch_size", "image_shape",
                "grid", "num_patches", "num_prefix_tokens", "hidden_dim")
_TOKENIZER_API = ("tokenize", "decode_codes", "num_codes", "patch_size",
                  "image_shape", "grid")


@keras.saving.register_keras_serializable(package="keras_ssl")
class BEiT(SSLModel):
    """BEiT (Bao et al., 2021): BERT pre-training of image Transformers.

    "We propose a masked image modeling task to pretrain vision
    Transformers. [...] each image has two views in our pre-training, i.e.,
    image patches, and visual tokens. We first 'tokenize' the original image
    into visual tokens. Then we randomly mask some image patches and feed
    them into the backbone Transformer. The pre-training objective is to
    recover the original visual tokens based on the corrupted image
    patches." Stage 1, the tokenizer, is a `keras_ssl.models.VQTokenizer`
    trained first (the paper's pretrained dVAE cannot be downloaded here);
    stage 2, which `call` and `compute_loss` implement:

    ```
    for minibatch x:
        z = tokenizer.tokenize(x)                  # (B, N) visual tokens, frozen
        M = blockwise_masking(~40% of N)           # (B, N), blocks of patches
        e = patch_embed(x); e[M] = e_[MASK]        # corrupted input
        h = vit_blocks([cls, e + pos])             # the encoder sees all N
        logits = softmax_head(h_patches)           # (B, N, V)
        loss = cross_entropy(logits, z) on M only
    ```

    Details:

    - The encoder is a `keras_ssl.backbones.ViTBackbone` (its
      `embed_patches(images, mask, mask_token)` puts the learned `[MASK]`
      embedding, a weight of this model, in place of the masked patches'
      embeddings before the positions are added).
    - The tokenizer gives one code per encoder patch: its `grid` and
      `image_shape` must equal the encoder's, and the head predicts its
      `num_codes` ids. It is frozen (`trainable = False`) and travels with
      the model: its config is in `get_config` and its weights (codebook
      included) in the saved model, so a loaded BEiT goes on training.
    - Masks are drawn in the training step from a `keras.random.SeedGenerator`
      stored on the model (`blockwise_masking`), so they differ in every
      sample and step, jit-compiled on every backend; pass
      `{"images": x, "mask": m}` to fix them (the cross-backend tests do).
    - Representations for downstream use are the encoder's on whole,
      unmasked images: `model.encoder`.

    Inputs (to `call`, `fit`): float images `(B, H, W, C)` in [0, 1] of the
    encoder's `image_shape`, as a tensor, a 1-tuple `(images,)` or a dict
    `{"images": images, "mask": mask}` with a `(B, N)` mask (1 = masked).

    Outputs of `call`: a dict of `logits` `(B, N, V)`, `targets` `(B, N)`
    (the tokenizer's codes) and `mask` `(B, N)`.

    Args:
        encoder: a `ViTBackbone`.
        tokenizer: a trained `VQTokenizer` with the encoder's patch grid.
        mask_ratio: the fraction of patches masked (paper: 75 of 196, 0.4).
        min_block_patches: the smallest masking block, in patches (paper: 16
            of 196; default: scaled to the grid, `beit_block_sizes`).
        vocab_size: optional check: the number of codes the head must
            predict; a `ValueError` if the tokenizer's differs.
        seed: seed of the masking's `SeedGenerator`.

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.data import load_image_data, mae_augmentation, multi_view_dataset
    from keras_ssl.models.beit import BEiT
    from keras_ssl.models.vq_tokenizer import VQTokenizer

    data = load_image_data("digits")  # 16×16 images
    images = multi_view_dataset(data.x_unlabeled, mae_augmentation(16),
                                num_views=1, batch_size=128)
    tokenizer = VQTokenizer(image_shape=(16, 16, 3), patch_size=2)
    tokenizer.compile(optimizer=keras.optimizers.Adam(1e-3))
    tokenizer.fit(images, epochs=2)                    # stage 1
    encoder = keras_ssl.backbones.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=2, hidden_dim=64, num_layers=4,
        num_heads=4)
    model = BEiT(encoder, tokenizer)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05))
    model.fit(images, epochs=2)                        # stage 2
    encoder.save("encoder.keras")
    ```
    """

    nested_models = ("encoder", "tokenizer")

    def __init__(
        self,
        encoder,
        tokenizer,
        mask_ratio=0.4,
        min_block_patches=None,
        vocab_size=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.require_api(
            encoder, _ENCODER_API, "BEiT's encoder",
            "a ViT that embeds patches with a mask token, such as "
            "`keras_ssl.backbones.ViTBackbone`",
        )
        self.require_api(
            tokenizer, _TOKENIZER_API, "BEiT's tokenizer",
            "a model that maps images to one code per patch, such as "
            "`keras_ssl.models.VQTokenizer`",
        )
        if tuple(tokenizer.grid) != tuple(encoder.grid) or tuple(
            tokenizer.image_shape
        ) != tuple(encoder.image_shape):
            raise ValueError(
                "BEiT's tokenizer must give one code per encoder patch: the "
                f"tokenizer cuts {tuple(tokenizer.image_shape)} images into a "
                f"{tuple(tokenizer.grid)} grid, the encoder "
                f"{tuple(encoder.image_shape)} images into "
                f"{tuple(encoder.grid)}."
            )
        num_codes = int(tokenizer.num_codes)
        if vocab_size is not None and int(vocab_size) != num_codes:
            raise ValueError(
                f"Tokenizer vocabulary mismatch: BEiT was asked to predict "
                f"{vocab_size} visual tokens, but its tokenizer has "
                f"{num_codes} codes."
            )
        self.num_masked, self.min_block_patches = beit_block_sizes(
            encoder.grid, mask_ratio, min_block_patches
        )
        self.encoder = encoder
        self.tokenizer = tokenizer
        # Frozen in stage 2; set before `compile()`.
        freeze(self.tokenizer)
        self.mask_ratio = float(mask_ratio)
        self.vocab_size = num_codes
        self.seed = seed
        hidden_dim = int(encoder.hidden_dim)
        self.mask_token = self.add_weight(
            shape=(hidden_dim,),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="mask_token",
        )
        self.head = keras.layers.Dense(
            num_codes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="lm_head",
        )
        self.head.build((None, None, hidden_dim))
        self.add_metric_trackers("masked_accuracy")
        self.seed_generator = keras.random.SeedGenerator(seed, name="mask_seed")
        self.build(None)

    def build(self, input_shape=None):
        # Every size is known from the encoder and the tokenizer.
        self.built = True

    # --- inputs -------------------------------------------------------------
    def split_inputs(self, inputs):
        """`(images, mask or None)`, checked (see the class docstring)."""
        images, mask = self.split_image_inputs(inputs, "mask")
        self.check_image_batch(
            images, self.encoder.image_shape, self.encoder.patch_size
        )
        if mask is not None:
            self.check_patch_values(mask, images, self.encoder.num_patches, "mask")
        return images, mask

    # --- the method ---------------------------------------------------------
    def make_mask(self, batch_size):
        """`(batch_size, N)` blockwise masks from the model's `SeedGenerator`
        (under `tf.distribute`, this replica's rows of the global draw)."""
        return self.draw_for_replica(
            lambda n: blockwise_masking(
                n,
                self.encoder.grid,
                self.num_masked,
                self.min_block_patches,
                seed=self.seed_generator,
            ),
            batch_size,
        )

    def call(self, inputs, training=False):
        images, mask = self.split_inputs(inputs)
        if mask is None:
            mask = self.make_mask(ops.shape(images)[0])
        mask = ops.cast(mask, "float32")
        targets = ops.stop_gradient(self.tokenizer.tokenize(images))
        tokens = self.encoder.embed_patches(
            images, mask=mask, mask_token=self.mask_token
        )
        hidden = self.encoder.encode_tokens(tokens, training=training)
        logits = self.head(hidden[:, self.encoder.num_prefix_tokens :])
        return {"logits": logits, "targets": targets, "mask": mask}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        logits, targets, mask = y_pred["logits"], y_pred["targets"], y_pred["mask"]
        self.track(masked_accuracy=masked_token_accuracy(logits, targets, mask))
        return masked_token_loss(logits, targets, mask)

    def predict_codes(self, images, mask=None):
        """The tokenizer's codes with the masked ones replaced by BEiT's
        predictions, and the mask: `(codes, predicted, mask)` in NumPy."""
        inputs = images if mask is None else {"images": images, "mask": mask}
        outputs = self(inputs, training=False)
        predicted = ops.cast(ops.argmax(outputs["logits"], axis=-1), "int32")
        mask = ops.cast(outputs["mask"], "int32")
        targets = ops.cast(outputs["targets"], "int32")
        filled = targets * (1 - mask) + predicted * mask
        return (
            ops.convert_to_numpy(targets),
            ops.convert_to_numpy(filled),
            ops.convert_to_numpy(mask),
        )

    def visualize(self, images, mask=None, fill_value=0.5):
        """Pictures of the objective, NumPy `(B, H, W, C)` each: the masked
        input, what the tokenizer's codes decode to (the target) and what the
        codes with BEiT's predictions at the masked patches decode to."""
        images = np.asarray(images, "float32")
        codes, filled, mask = self.predict_codes(images, mask)
        p = int(self.encoder.patch_size)
        rows, cols = self.encoder.grid
        pixel_mask = np.repeat(
            np.repeat(mask.reshape(-1, rows, cols), p, axis=1), p, axis=2
        )[..., None]
        masked = images * (1 - pixel_mask) + fill_value * pixel_mask
        decode = lambda c: np.clip(  # noqa: E731
            ops.convert_to_numpy(self.tokenizer.decode_codes(c)), 0.0, 1.0
        )
        return masked, decode(codes), decode(filled)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "mask_ratio": self.mask_ratio,
                "min_block_patches": self.min_block_patches,
                "vocab_size": self.vocab_size,
                "seed": self.seed,
            }
        )
        return config
