"""wav2vec 2.0's encoder as a keras-hub `Backbone`: raw audio → context frames."""

import keras
from keras_hub.layers import TransformerEncoder
from keras_hub.models import Backbone

from keras_ssl.layers.wav2vec2 import (
    PAPER_KERNELS,
    PAPER_STRIDES,
    ConvFeatureEncoder,
    FramePaddingMask,
    PositionalConvEmbedding,
    WaveformNormalization,
    frame_lengths,
)


@keras.saving.register_keras_serializable(package="keras_ssl")
class Wav2Vec2Backbone(Backbone):
    """wav2vec 2.0 (Baevski et al., 2020): feature encoder + context network.

    "The model is composed of a multi-layer convolutional feature encoder
    f : X → Z which takes as input raw audio X and outputs latent speech
    representations z1, ..., zT for T time-steps. They are then fed to a
    Transformer g : Z → C to build representations c1, ..., cT capturing
    information from the entire sequence."

    The forward pass, in the order of fairseq's code (BASE: post-norm
    Transformer):

    ```
    x = normalize(audio)                       # optional, per utterance
    z = layer_norm(conv_feature_encoder(x))    # (B, T', C), ~20 ms frames
    h = feature_projection(z)                  # (B, T', D)
    [h[masked] = mask_embedding]               # pre-training, fine-tuning
    h = layer_norm(h + gelu(pos_conv(h)))      # relative positions
    c = transformer_layers(h, padding_mask)    # (B, T', D)
    ```

    Inputs: a dict of `audio` `(B, L)` float32 mono 16 kHz waveforms,
    zero-padded at the end, and `padding_mask` `(B, L)` bool (True on real
    samples). Output: the context frames `(B, T', D)`; padded frames carry
    values that downstream code masks out (`frame_padding_mask`).

    The pre-training model (`keras_ssl.models.Wav2Vec2`) runs the same weights
    in two halves: `latent_frames` (feature encoder, with the raw frames for
    the feature penalty) and `contextualize` (positions and Transformer on
    projected, possibly masked frames).

    Args:
        conv_channels: channels of each feature-encoder block (paper: 512 × 7).
        conv_kernel_sizes: their kernel widths (paper: 10, 3, 3, 3, 3, 2, 2).
        conv_strides: their strides (paper: 5, 2, 2, 2, 2, 2, 2).
        feature_norm: `"group"` (BASE: a per-channel group norm after the
            first block) or `"layer"` (a layer norm after every block).
        hidden_dim: the Transformer's width D (BASE: 768).
        num_layers: Transformer blocks (BASE: 12).
        num_heads: attention heads (BASE: 12).
        intermediate_dim: the blocks' MLP width (BASE: 3072).
        pos_conv_kernel: the positional convolution's kernel (paper: 128).
        pos_conv_groups: its groups (paper: 16).
        pos_conv_weight_norm: weight-normalise the positional convolution's
            kernel, one gain per kernel offset (fairseq's
            `weight_norm(dim=2)`); `False` keeps a plain kernel.
        dropout: dropout in the Transformer blocks and on the projected
            features (BASE: 0.1).
        normalize_audio: standardise each utterance over its real samples.
        layer_norm_first: pre-norm Transformer blocks with the layer norm
            after the last block (fairseq's `layer_norm_first`, the paper's
            LARGE model); `False` is BASE's post-norm, with the layer norm
            before the first block.
        layer_norm_epsilon: ε of the layer norms.
        dtype: dtype policy of the layers.

    Example:

    >>> import numpy as np
    >>> backbone = Wav2Vec2Backbone.small(hidden_dim=32, num_layers=1,
    ...                                   num_heads=2, intermediate_dim=64)
    >>> audio = np.zeros((2, 16000), "float32")
    >>> mask = np.ones((2, 16000), bool)
    >>> tuple(backbone({"audio": audio, "padding_mask": mask}).shape)
    (2, 49, 32)
    """

    def __init__(
        self,
        conv_channels=(512,) * 7,
        conv_kernel_sizes=PAPER_KERNELS,
        conv_strides=PAPER_STRIDES,
        feature_norm="group",
        hidden_dim=768,
        num_layers=12,
        num_heads=12,
        intermediate_dim=3072,
        pos_conv_kernel=128,
        pos_conv_groups=16,
        pos_conv_weight_norm=False,
        dropout=0.1,
        normalize_audio=True,
        layer_norm_first=False,
        layer_norm_epsilon=1e-5,
        dtype=None,
        **kwargs,
    ):
        hidden_dim, num_heads = int(hidden_dim), int(num_heads)
        if num_heads < 1 or hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` {hidden_dim} must be divisible by `num_heads` "
                f"{num_heads}."
            )
        if int(num_layers) < 0:
            raise ValueError(f"`num_layers` must be >= 0; got {num_layers}.")

        # === Layers ===
        # (read by `contextualize` while the functional model is built)
        self.layer_norm_first = bool(layer_norm_first)
        self.waveform_normalization = (
            WaveformNormalization(dtype=dtype, name="waveform_normalization")
            if normalize_audio else None
        )
        self.feature_encoder = ConvFeatureEncoder(
            conv_channels, conv_kernel_sizes, conv_strides, norm=feature_norm,
            dtype=dtype, name="feature_encoder",
        )
        self.frame_padding_mask_layer = FramePaddingMask(
            self.feature_encoder.kernel_sizes, self.feature_encoder.strides,
            dtype=dtype, name="frame_padding_mask",
        )
        self.feature_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="feature_norm")
        self.feature_projection = keras.layers.Dense(
            hidden_dim, dtype=dtype, name="feature_projection")
        self.feature_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="feature_dropout")
        self.pos_conv = PositionalConvEmbedding(
            pos_conv_kernel, pos_conv_groups, weight_norm=pos_conv_weight_norm,
            dtype=dtype, name="pos_conv")
        self.encoder_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="encoder_norm")
        self.transformer_layers = [
            TransformerEncoder(
                intermediate_dim=int(intermediate_dim),
                num_heads=num_heads,
                dropout=dropout,
                activation="gelu",
                layer_norm_epsilon=layer_norm_epsilon,
                normalize_first=bool(layer_norm_first),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(int(num_layers))
        ]

        # === Functional Model ===
        audio = keras.layers.Input(shape=(None,), name="audio")
        padding_mask = keras.layers.Input(
            shape=(None,), dtype="bool", name="padding_mask")
        _, features, frame_mask = self.latent_frames(audio, padding_mask)
        hidden = self.project_features(features)
        outputs = self.contextualize(hidden, frame_mask)
        super().__init__(
            inputs={"audio": audio, "padding_mask": padding_mask},
            outputs=outputs,
            dtype=dtype,
            **kwargs,
        )

        # The learned vector that replaces masked frames (HF's
        # `masked_spec_embed`); unused by the forward pass above.
        self.mask_embedding = self.add_weight(
            shape=(hidden_dim,),
            initializer=keras.initializers.RandomUniform(0.0, 1.0),
            name="mask_embedding",
        )

        # === Config ===
        self.conv_channels = tuple(int(c) for c in conv_channels)
        self.conv_kernel_sizes = self.feature_encoder.kernel_sizes
        self.conv_strides = self.feature_encoder.strides
        self.feature_norm_type = feature_norm
        self.hidden_dim = hidden_dim
        self.num_layers = int(num_layers)
        self.num_heads = num_heads
        self.intermediate_dim = int(intermediate_dim)
        self.pos_conv_kernel = int(pos_conv_kernel)
        self.pos_conv_groups = int(pos_conv_groups)
        self.pos_conv_weight_norm = bool(pos_conv_weight_norm)
        self.dropout = float(dropout)
        self.normalize_audio = bool(normalize_audio)
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    # --- the two halves -----------------------------------------------------
    def latent_frames(self, audio, padding_mask, gradient_scale=1.0):
        """Audio → `(raw, features, frame_mask)`: the feature encoder's raw
        output `(B, T', C)` (for the feature penalty), its layer-normed frames
        `z` (the quantizer's input) and the `(B, T')` mask of real frames.

        `gradient_scale` < 1 shrinks the gradient that reaches the feature
        encoder, not its output (paper, BASE: 0.1).
        """
        x = audio
        if self.waveform_normalization is not None:
            x = self.waveform_normalization(x, padding_mask)
        raw = self.feature_encoder(x, padding_mask=padding_mask)
        if gradient_scale != 1.0:
            raw = gradient_scale * raw + (1.0 - gradient_scale) * (
                keras.ops.stop_gradient(raw))
        frame_mask = self.frame_padding_mask_layer(padding_mask, raw)
        return raw, self.feature_norm(raw), frame_mask

    def project_features(self, features, mask=None, training=False):
        """`z` `(B, T', C)` → `(B, T', D)`, the Transformer's input width.

        With a `(B, T')` bool `mask`, the masked frames are replaced by the
        learned `mask_embedding` (pre-training's span masking, and the time
        masking of fine-tuning, as in the paper's code).
        """
        hidden = self.feature_dropout(
            self.feature_projection(features), training=training)
        if mask is None:
            return hidden
        return keras.ops.where(
            mask[:, :, None], keras.ops.cast(self.mask_embedding, hidden.dtype),
            hidden)

    def contextualize(self, hidden, frame_mask, training=False):
        """Relative positions, layer norm and the Transformer blocks on
        `(B, T', D)` frames, attending to real frames only."""
        x = self.pos_conv(hidden, frame_mask)
        if not self.layer_norm_first:
            x = self.encoder_norm(x)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=frame_mask, training=training)
        if self.layer_norm_first:
            x = self.encoder_norm(x)
        return x

    # --- sizes ----------------------------------------------------------------
    @property
    def receptive_field(self):
        """Samples one frame sees (400 for the paper's encoder)."""
        return self.feature_encoder.receptive_field

    @property
    def frame_stride(self):
        """Samples between frames (320 = 20 ms at 16 kHz in the paper)."""
        return self.feature_encoder.stride

    @property
    def latent_dim(self):
        """C, the feature encoder's output channels."""
        return self.conv_channels[-1]

    def num_frames(self, num_samples):
        """Frames the backbone makes of `num_samples` samples."""
        return frame_lengths(num_samples, self.conv_kernel_sizes, self.conv_strides)

    def frame_padding_mask(self, padding_mask, num_frames):
        """`(B, T')` mask of real frames for a `(B, L)` sample mask."""
        from keras_ssl.layers.wav2vec2 import frames_padding_mask

        return frames_padding_mask(
            padding_mask, num_frames, self.conv_kernel_sizes, self.conv_strides)

    @classmethod
    def base(cls, **overrides):
        """The paper's BASE model (95 M parameters): 512-channel CNN, 12
        blocks of width 768, 12 heads, MLP 3072, group norm, and the
        released code's weight-normalised positional convolution."""
        kwargs = dict(pos_conv_weight_norm=True)
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def small(cls, **overrides):
        """A CPU-sized model with the paper's 7 convolutions (20 ms frames):
        64 channels, layer norm in every block, 4 Transformer blocks of
        width 96, positional conv kernel 32 in 4 groups."""
        kwargs = dict(
            conv_channels=(64,) * 7,
            feature_norm="layer",
            hidden_dim=96,
            num_layers=4,
            num_heads=4,
            intermediate_dim=192,
            pos_conv_kernel=32,
            pos_conv_groups=4,
            dropout=0.0,
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "conv_channels": list(self.conv_channels),
            "conv_kernel_sizes": list(self.conv_kernel_sizes),
            "conv_strides": list(self.conv_strides),
            "feature_norm": self.feature_norm_type,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "pos_conv_kernel": self.pos_conv_kernel,
            "pos_conv_groups": self.pos_conv_groups,
            "pos_conv_weight_norm": self.pos_conv_weight_norm,
            "dropout": self.dropout,
            "normalize_audio": self.normalize_audio,
            "layer_norm_first": self.layer_norm_first,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        })
        return config
