"""VQTokenizer: a small VQ-VAE that turns image patches into discrete codes.

BEiT (Bao et al., 2021) pre-trains a ViT to predict, at masked patch
positions, "visual tokens" that a discrete VAE tokenizer assigns to the
patches; its stage 1 is that tokenizer. Nothing can be downloaded here
(BEiT used DALL-E's), so this model trains one: a VQ-VAE (van den Oord et
al., 2017) with an EMA codebook, trained with `fit` like every method.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_ssl.layers.vector_quantizer import VectorQuantizer
from keras_ssl.losses.vq import codebook_perplexity, codebook_usage, vq_commitment_loss
from keras_ssl.models.ssl_model import SSLModel

NUM_RESIDUAL_BLOCKS = 2


def _residual_block(x, width, name):
    """VQ-VAE's residual block: `x + conv1×1(relu(conv3×3(relu(x))))`."""
    h = keras.layers.ReLU(name=f"{name}_relu_1")(x)
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv_3x3")(h)
    h = keras.layers.ReLU(name=f"{name}_relu_2")(h)
    h = keras.layers.Conv2D(width, 1, name=f"{name}_conv_1x1")(h)
    return keras.layers.Add(name=f"{name}_add")([x, h])


def build_encoder(image_shape, patch_size, hidden_dim, code_dim, name="encoder"):
    """`(B, H, W, C)` images → `(B, H/p, W/p, code_dim)` latents z_e.

    A 3×3 conv, log2(p) stride-2 3×3 convs (ReLU), two residual blocks,
    ReLU and a 1×1 conv to `code_dim`.
    """
    inputs = keras.Input(tuple(image_shape), name="images")
    x = keras.layers.Conv2D(
        hidden_dim, 3, padding="same", activation="relu", name="stem"
    )(inputs)
    for i in range(int(math.log2(patch_size))):
        x = keras.layers.Conv2D(
            hidden_dim, 3, strides=2, padding="same", activation="relu",
            name=f"down_{i}",
        )(x)
    for i in range(NUM_RESIDUAL_BLOCKS):
        x = _residual_block(x, hidden_dim, name=f"residual_{i}")
    x = keras.layers.ReLU(name="relu")(x)
    outputs = keras.layers.Conv2D(code_dim, 1, name="to_codes")(x)
    return keras.Model(inputs, outputs, name=name)


def build_decoder(grid, channels, patch_size, hidden_dim, code_dim, name="decoder"):
    """`(B, H/p, W/p, code_dim)` quantised latents → `(B, H, W, C)` in [0, 1].

    The encoder mirrored: a 3×3 conv, two residual blocks, ReLU, log2(p)
    × (nearest 2× upsampling, 3×3 conv, ReLU), a 3×3 conv to the image's
    channels and a sigmoid.
    """
    inputs = keras.Input((grid[0], grid[1], code_dim), name="quantized")
    x = keras.layers.Conv2D(hidden_dim, 3, padding="same", name="stem")(inputs)
    for i in range(NUM_RESIDUAL_BLOCKS):
        x = _residual_block(x, hidden_dim, name=f"residual_{i}")
    x = keras.layers.ReLU(name="relu")(x)
    for i in range(int(math.log2(patch_size))):
        x = keras.layers.UpSampling2D(2, name=f"upsample_{i}")(x)
        x = keras.layers.Conv2D(
            hidden_dim, 3, padding="same", activation="relu", name=f"up_{i}"
        )(x)
    outputs = keras.layers.Conv2D(
        channels, 3, padding="same", activation="sigmoid", name="to_pixels"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _is_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and (
        int(value) == value
    )


@keras.saving.register_keras_serializable(package="keras_ssl")
class VQTokenizer(SSLModel):
    """A VQ-VAE image tokenizer: one discrete code per `p × p` patch.

    BEiT's stage 1: "each image has two views [...] image patches and
    visual tokens. [...] we tokenize the image to discrete tokens [...]
    learned by discrete variational autoencoder (dVAE)". This model learns
    such a tokenizer as a VQ-VAE (van den Oord et al., 2017): "the encoder
    [...] outputs z_e(x) [...] The discrete latent variables z are then
    calculated by a nearest neighbour look-up using the shared embedding
    space e", and the decoder reconstructs the image from the codes. The
    training step, which `call` and `compute_loss` follow:

    ```
    z_e = encoder(x)                          # (B, H/p, W/p, D)
    codes = argmin_k ||z_e − e_k||²           # one code per patch
    z_q = z_e + sg(e[codes] − z_e)            # straight-through
    x̂ = decoder(z_q)
    loss = mse(x̂, x) + β · mean (z_e − sg(e[codes]))²
    codebook ← EMA of the z_e assigned to each code; dead codes restarted
    ```

    Details:

    - Encoder (`model.encoder`, a functional `keras.Model`): a 3×3 conv,
      log2(`patch_size`) stride-2 3×3 convs, two residual blocks (ReLU,
      3×3 conv, ReLU, 1×1 conv, as in VQ-VAE) and a 1×1 conv to
      `code_dim`: `(B, H/p, W/p, code_dim)`, one vector per patch. The
      decoder (`model.decoder`) mirrors it with nearest upsampling and a
      sigmoid output.
    - Quantiser (`model.quantizer`, a `keras_ssl.layers.VectorQuantizer`):
      the codebook is not trainable; it moves by EMA (γ = `decay`) inside
      `compute_loss` when `training`, after the loss has used it, and codes
      whose EMA count per batch falls under `dead_code_threshold` restart
      at random encoder outputs of the batch. `evaluate`, `predict`,
      `tokenize` and a frozen model (`trainable=False`) leave it as is.
    - The loss is the pixel MSE plus `commitment_cost` × the commitment
      term (`keras_ssl.losses.vq_commitment_loss`, averaged over elements
      as Sonnet's VQ-VAE). Logged beside it: `reconstruction_loss`,
      `commitment_loss`, `codebook_usage` (the fraction of the codes that
      the batch uses) and `perplexity` (exp of the entropy of the batch's
      code histogram; `num_codes` at uniform use, 1 at collapse).
    - Nothing is computed across images except the codebook's statistics:
      a batch of one image is accepted.

    Measured (TensorFlow; the defaults on
    `load_image_data("digits").x_unlabeled`, 5,384 16×16 images, patches of
    2, batch 128, `Adam(1e-3)`, 6 epochs): reconstruction MSE per epoch
    0.044, 0.020, 0.014, 0.011, 0.0076, 0.0066 (predicting the mean image:
    0.094); codebook usage per batch 0.40 → 0.76 and perplexity 106 → 245;
    on the 451 test images, 434 of the 512 codes occur (perplexity 267) and
    `decode_codes(tokenize(x))` has an MSE of 0.0062.

    For BEiT: `tokenize(images)` gives int32 `(B, N)` code ids, `N =
    (H/p)·(W/p)`, in row-major patch order (that of
    `keras_ssl.layers.vit.patchify`); it is pure `keras.ops` without side
    effects, usable inside another model's jit-compiled step.
    `decode_codes(codes)` maps ids back to images.

    Inputs (to `call`, `fit`, `tokenize`, `reconstruct`): float images
    `(B, H, W, C)` in [0, 1] of `image_shape`, as a tensor or a 1-tuple
    `(images,)` (what `multi_view_dataset(x, augment, num_views=1)` yields).

    Outputs of `call`: a dict of `reconstruction` `(B, H, W, C)`, `codes`
    `(B, N)` int32, `latents` z_e and `quantized` (straight-through z_q),
    both `(B, H/p, W/p, code_dim)`.

    Args:
        image_shape: `(H, W, C)` of the images.
        patch_size: p, a power of two dividing H and W; one code per p × p
            patch (BEiT: 16 on 224² images, a 14 × 14 grid).
        num_codes: V, the codebook size (BEiT's DALL-E tokenizer: 8192).
        code_dim: D, the width of the codes.
        hidden_dim: the width of the encoder's and decoder's convolutions.
        commitment_cost: β (VQ-VAE: 0.25).
        decay: γ of the codebook's EMA (VQ-VAE: 0.99).
        dead_code_threshold: EMA count per batch under which a code is
            restarted (0: never).
        seed: seed of the codebook's initialisation and of the restarts.

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.models import VQTokenizer
    data = keras_ssl.data.load_image_data("digits")  # 16×16×3 floats
    tokenizer = VQTokenizer(image_shape=(16, 16, 3), patch_size=2, seed=0)
    tokenizer.compile(optimizer=keras.optimizers.Adam(1e-3))
    tokenizer.fit(data.x_unlabeled, batch_size=128, epochs=3)
    codes = tokenizer.tokenize(data.x_test[:8])       # (8, 64) int32
    images = tokenizer.decode_codes(codes)            # (8, 16, 16, 3)
    tokenizer.save("tokenizer.keras")
    ```
    """

    def __init__(
        self,
        image_shape=(16, 16, 3),
        patch_size=2,
        num_codes=512,
        code_dim=32,
        hidden_dim=64,
        commitment_cost=0.25,
        decay=0.99,
        dead_code_threshold=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or not all(
            _is_int(s) and s >= 1 for s in image_shape
        ):
            raise ValueError(
                "VQTokenizer `image_shape` must be (height, width, channels) "
                f"of positive integers; got {image_shape}."
            )
        image_shape = tuple(int(s) for s in image_shape)
        if not _is_int(patch_size) or patch_size < 1 or (
            int(patch_size) & (int(patch_size) - 1)
        ):
            raise ValueError(
                "VQTokenizer `patch_size` must be a power of two >= 1 (the "
                "encoder halves the resolution log2(patch_size) times); got "
                f"{patch_size}."
            )
        patch_size = int(patch_size)
        height, width, channels = image_shape
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"VQTokenizer: the image size {height}×{width} is not divisible "
                f"by the patch size {patch_size}; choose a `patch_size` that "
                "divides both sides, or crop the images."
            )
        for arg, value in (("num_codes", num_codes), ("code_dim", code_dim),
                           ("hidden_dim", hidden_dim)):
            if not _is_int(value) or value < 1:
                raise ValueError(
                    f"VQTokenizer `{arg}` must be a positive integer; got "
                    f"{value}."
                )
        if not float(commitment_cost) >= 0.0:
            raise ValueError(
                "VQTokenizer `commitment_cost` (β) must be >= 0; got "
                f"{commitment_cost}. VQ-VAE uses 0.25."
            )
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.hidden_dim = int(hidden_dim)
        self.commitment_cost = float(commitment_cost)
        self.decay = float(decay)
        self.dead_code_threshold = float(dead_code_threshold)
        self.seed = seed
        self.grid = (height // patch_size, width // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]

        self.quantizer = VectorQuantizer(
            self.num_codes,
            self.code_dim,
            decay=self.decay,
            dead_code_threshold=self.dead_code_threshold,
            seed=seed,
            name="quantizer",
        )
        self.encoder = build_encoder(
            image_shape, patch_size, self.hidden_dim, self.code_dim
        )
        self.decoder = build_decoder(
            self.grid, channels, patch_size, self.hidden_dim, self.code_dim
        )
        self.quantizer.build((None, self.grid[0], self.grid[1], self.code_dim))
        self.add_metric_trackers(
            "reconstruction_loss", "commitment_loss", "codebook_usage", "perplexity"
        )
        # Every size is known: built now, weights exist before the first batch.
        self.build(None)

    def build(self, input_shape=None):
        self.built = True

    # --- inputs -------------------------------------------------------------
    def split_inputs(self, inputs):
        """The image batch of `inputs` (a tensor or a 1-tuple), checked.

        Raises:
            ValueError: naming what was expected, for several views, images
                that are not a float batch of `image_shape`, or an empty batch.
        """
        images, _ = self.split_image_inputs(inputs)
        self.check_image_batch(images, self.image_shape)
        return images

    # --- the model ----------------------------------------------------------
    def call(self, inputs, training=False):
        images = self.split_inputs(inputs)
        latents = self.encoder(images, training=training)
        quantized, codes = self.quantizer(latents)
        reconstruction = self.decoder(quantized, training=training)
        return {
            "reconstruction": reconstruction,
            "codes": ops.reshape(codes, (-1, self.num_patches)),
            "latents": latents,
            "quantized": quantized,
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if x is None:
            raise ValueError(
                "VQTokenizer.compute_loss needs the images `x` (the "
                "reconstruction target) beside `y_pred`."
            )
        images = ops.cast(self.split_inputs(x), "float32")
        reconstruction = ops.cast(y_pred["reconstruction"], "float32")
        reconstruction_loss = ops.mean(ops.square(reconstruction - images))
        latents, codes = y_pred["latents"], y_pred["codes"]
        commitment = vq_commitment_loss(latents, y_pred["quantized"])
        loss = reconstruction_loss + self.commitment_cost * commitment
        self.track(
            reconstruction_loss=reconstruction_loss,
            commitment_loss=commitment,
            codebook_usage=codebook_usage(codes, self.num_codes),
            perplexity=codebook_perplexity(codes, self.num_codes),
        )
        if training:
            # After the loss: the EMA reads stop-gradient copies, and nothing
            # in this step's graph reads the codebook again. The statistics
            # are those of the global batch, so all replicas keep one
            # codebook (the identity without tf.distribute replicas).
            self.quantizer.update_codebook(
                self.gather_across_replicas(ops.stop_gradient(latents))[0],
                self.gather_across_replicas(codes)[0],
            )
        return loss

    # --- the tokenizer's API ------------------------------------------------
    def tokenize(self, images):
        """int32 `(B, N)` code ids of the images' patches, row-major.

        Pure `keras.ops` (encoder in inference mode, nearest codes), without
        side effects: usable inside another model's jit-compiled step.
        Code `n` is that of patch `(n // cols, n % cols)`, the order of
        `keras_ssl.layers.vit.patchify`.
        """
        images = self.split_inputs(images)
        latents = self.encoder(images, training=False)
        codes = self.quantizer.nearest_codes(latents)
        return ops.reshape(codes, (-1, self.num_patches))

    def decode_codes(self, codes):
        """Images `(B, H, W, C)` in [0, 1] decoded from `(B, N)` code ids.

        The ids are integers in `[0, num_codes)`, in `tokenize`'s row-major
        patch order (out-of-range ids are not checked: backends differ on
        them, clamping or failing).
        """
        shape = tuple(getattr(codes, "shape", ()))
        if len(shape) != 2 or shape[1] != self.num_patches:
            raise ValueError(
                "VQTokenizer.decode_codes expects code ids of shape (batch, "
                f"num_patches) = (batch, {self.num_patches}); got {shape}."
            )
        dtype = keras.backend.standardize_dtype(codes.dtype)
        if "int" not in dtype:
            raise ValueError(
                f"VQTokenizer.decode_codes expects integer code ids; got dtype "
                f"{dtype}."
            )
        vectors = self.quantizer.lookup(codes)
        vectors = ops.reshape(vectors, (-1, *self.grid, self.code_dim))
        return self.decoder(vectors, training=False)

    def reconstruct(self, images):
        """NumPy reconstructions `(B, H, W, C)`: `decode_codes(tokenize(x))`."""
        return ops.convert_to_numpy(self.decode_codes(self.tokenize(images)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "patch_size": self.patch_size,
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "hidden_dim": self.hidden_dim,
                "commitment_cost": self.commitment_cost,
                "decay": self.decay,
                "dead_code_threshold": self.dead_code_threshold,
                "seed": self.seed,
            }
        )
        return config


def train_vq_tokenizer(images, patch_size, epochs=10, batch_size=128,
                       learning_rate=1e-3, seed=0, verbose=0, image_size=None,
                       **options):
    """BEiT's stage 1: a `VQTokenizer` trained with `fit` on unlabelled images.

    Args:
        images: float images `(N, H, W, C)` in [0, 1], or streamed images
            (a `keras_ssl.data.image_files.ImageSource`, read batch by
            batch; then give `image_size`).
        patch_size: the encoder's patch size (one code per patch).
        epochs, batch_size, learning_rate: of its Adam training.
        seed: of the pipeline's shuffling and of the tokenizer.
        verbose: `fit`'s verbosity.
        image_size: the side of the crops (default: the images' side).
        **options: other `VQTokenizer` constructor arguments.

    Returns:
        The trained tokenizer (uncompiled), with its `fit` history as
        `tokenizer.history`.
    """
    from keras_ssl.data import multi_view_dataset
    from keras_ssl.data.policies import mae_augmentation

    from keras_ssl.data.image_files import ImageSource

    if isinstance(images, ImageSource):
        size = int(image_size or images.image_size)
    else:
        images = np.asarray(images, "float32")
        size = int(image_size or images.shape[1])
    batch_size = min(int(batch_size), len(images))  # small data: one batch
    tokenizer = VQTokenizer(
        image_shape=(size, size, 3), patch_size=patch_size, seed=seed, **options
    )
    tokenizer.compile(optimizer=keras.optimizers.Adam(learning_rate))
    # Crops and flips, the augmentation stage 2 sees: the tokenizer then
    # knows every patch the encoder will be asked about.
    views = multi_view_dataset(
        images, mae_augmentation(size), num_views=1,
        batch_size=batch_size, seed=seed,
    )
    history = tokenizer.fit(views, epochs=epochs, verbose=verbose)
    # An uncompiled copy travels inside BEiT: a compiled one would carry its
    # optimizer into BEiT's saved file, to be rebuilt (and warned about) on
    # loading, though stage 2 never trains it.
    trained = VQTokenizer.from_config(tokenizer.get_config())
    trained.set_weights(tokenizer.get_weights())
    trained.history = history
    return trained
