"""The layers of wav2vec 2.0 (Baevski et al., 2020), in keras-hub style.

- `ConvFeatureEncoder`: raw 16 kHz waveform → latent frames `z` (the CNN).
- `PositionalConvEmbedding`: the relative positions of the context network,
  a large-kernel grouped convolution instead of absolute embeddings.
- `GumbelVectorQuantizer`: the product quantizer of the training targets.
- `frame_lengths` / `frames_padding_mask`: which frames of a padded batch
  are real, from the samples' padding mask and the convolutions' sizes.

Each serialises (`get_config`) and runs under TensorFlow, JAX and PyTorch.
"""

import math

import keras
from keras import ops

# The paper's feature encoder: "seven blocks and the temporal convolutions in
# each block have 512 channels with strides (5,2,2,2,2,2,2) and kernel
# widths (10,3,3,3,3,2,2). This results in an encoder output frequency of
# 49 hz with a stride of about 20ms between each sample, and a receptive
# field of 400 input samples or 25ms of audio."
PAPER_KERNELS = (10, 3, 3, 3, 3, 2, 2)
PAPER_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def frame_lengths(num_samples, kernel_sizes, strides):
    """Number of frames the (unpadded) convolutions make of `num_samples`.

    Each layer maps `L` samples to `floor((L − k) / s) + 1` (0 when `L < k`).
    Works on Python ints and on integer tensors (per-utterance lengths).

    >>> frame_lengths(16000, PAPER_KERNELS, PAPER_STRIDES)
    49
    """
    length = num_samples
    for k, s in zip(kernel_sizes, strides):
        if isinstance(length, int):
            length = max((length - k) // s + 1, 0)
        else:
            length = ops.maximum((length - k) // s + 1, 0)
    return length


def masked_moments(x, weights):
    """Mean and variance of `x` over axis 1 (time), counting the steps where
    `weights` (1 on real steps, 0 on padding; broadcast to `x`) is 1."""
    count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
    mean = ops.sum(x * weights, axis=1, keepdims=True) / count
    var = ops.sum(ops.square(x - mean) * weights, axis=1, keepdims=True) / count
    return mean, var


def receptive_field(kernel_sizes, strides):
    """Samples seen by one output frame (400 for the paper's encoder)."""
    field, jump = 1, 1
    for k, s in zip(kernel_sizes, strides):
        field += (k - 1) * jump
        jump *= s
    return field


def frames_padding_mask(padding_mask, num_frames, kernel_sizes, strides):
    """`(B, T')` bool mask of the real frames, from a `(B, L)` sample mask.

    A frame is real when it lies inside the utterance's own frame count,
    `frame_lengths(real samples)`: padding is at the end of each row.
    """
    lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=1)
    lengths = frame_lengths(lengths, kernel_sizes, strides)
    positions = ops.arange(num_frames, dtype="int32")
    return ops.less(positions[None, :], lengths[:, None])


@keras.saving.register_keras_serializable(package="keras_ssl")
class ConvFeatureEncoder(keras.layers.Layer):
    """wav2vec 2.0's feature encoder: temporal conv blocks over the waveform.

    Each block is a `Conv1D` without bias (unpadded, "valid"), a norm and a
    GELU. `norm="group"` is the BASE model's: a group norm with one group per
    channel (a per-channel normalisation over time) after the first block
    only, whose statistics are taken over the real frames of each utterance
    when a `padding_mask` is given (zero padding would otherwise shrink the
    mean and variance by the padded fraction); `norm="layer"` normalises every
    block's output over its channels at each frame (the LARGE models'
    "layer_norm" mode), which padding cannot disturb.

    Input: `(B, L)` waveform and optionally its `(B, L)` bool `padding_mask`.
    Output: `(B, T', channels[-1])` latent frames.

    Args:
        channels: output channels per block (paper: 512 each).
        kernel_sizes: kernel widths (paper: 10, 3, 3, 3, 3, 2, 2).
        strides: strides (paper: 5, 2, 2, 2, 2, 2, 2).
        norm: `"group"` (BASE) or `"layer"`.
    """

    def __init__(self, channels=(512,) * 7, kernel_sizes=PAPER_KERNELS,
                 strides=PAPER_STRIDES, norm="group", **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.strides = tuple(int(s) for s in strides)
        if not (len(self.channels) == len(self.kernel_sizes) == len(self.strides)):
            raise ValueError(
                "The feature encoder needs one channel count, kernel width and "
                f"stride per block; got {len(self.channels)} channels, "
                f"{len(self.kernel_sizes)} kernels and {len(self.strides)} "
                "strides."
            )
        if not self.channels:
            raise ValueError("The feature encoder needs at least one block.")
        if norm not in ("group", "layer"):
            raise ValueError(f"`norm` must be 'group' or 'layer'; got {norm!r}.")
        self.norm = norm
        self.convs, self.norms = [], []
        for i, (c, k, s) in enumerate(
            zip(self.channels, self.kernel_sizes, self.strides)
        ):
            self.convs.append(keras.layers.Conv1D(
                c, k, strides=s, use_bias=False,
                kernel_initializer="he_normal", dtype=self.dtype_policy,
                name=f"conv_{i}",
            ))
            if norm == "layer":
                self.norms.append(keras.layers.LayerNormalization(
                    epsilon=1e-5, dtype=self.dtype_policy, name=f"norm_{i}"))
            elif i == 0:
                self.norms.append(keras.layers.GroupNormalization(
                    groups=c, epsilon=1e-5, dtype=self.dtype_policy,
                    name="norm_0"))
            else:
                self.norms.append(None)

    @property
    def receptive_field(self):
        return receptive_field(self.kernel_sizes, self.strides)

    @property
    def stride(self):
        return math.prod(self.strides)

    def build(self, input_shape):
        shape = (input_shape[0], input_shape[1], 1)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)
        self.built = True

    def call(self, audio, padding_mask=None):
        x = ops.expand_dims(audio, -1)
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            if norm is None:
                pass
            elif self.norm == "group" and padding_mask is not None:
                x = self._masked_group_norm(x, norm, padding_mask)
            else:
                x = norm(x)
            x = keras.activations.gelu(x, approximate=False)
        return x

    def _masked_group_norm(self, x, norm, padding_mask):
        """The first block's per-channel norm over the real frames only."""
        mask = frames_padding_mask(padding_mask, ops.shape(x)[1],
                                   self.kernel_sizes[:1], self.strides[:1])
        x32 = ops.cast(x, "float32")
        mean, var = masked_moments(x32, ops.cast(mask, "float32")[:, :, None])
        y = (x32 - mean) * ops.rsqrt(var + norm.epsilon)
        y = y * ops.cast(norm.gamma, "float32") + ops.cast(norm.beta, "float32")
        return ops.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        if length is not None:
            length = frame_lengths(int(length), self.kernel_sizes, self.strides)
        return (input_shape[0], length, self.channels[-1])

    def get_config(self):
        config = super().get_config()
        config.update({
            "channels": list(self.channels),
            "kernel_sizes": list(self.kernel_sizes),
            "strides": list(self.strides),
            "norm": self.norm,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class PositionalConvEmbedding(keras.layers.Layer):
    """Relative positions by convolution: `x + GELU(GroupedConv(x))`.

    "Instead of fixed positional embeddings which encode absolute positional
    information, we use a convolutional layer [...] which acts as relative
    positional embedding": kernel 128, 16 groups in the paper, "same"
    padding (fairseq drops the extra frame an even kernel makes; Keras'
    "same" padding keeps the length). Padded frames are zeroed first, so
    they do not leak into the real ones.

    With `weight_norm=True` the kernel is weight-normalised as in fairseq
    (`weight_norm(conv, dim=2)`): `kernel = g · v / ‖v‖`, with one gain `g`
    per kernel offset and the norm taken over the channels of that offset.
    `g` starts at `‖v‖`, so the layer computes the same function at init;
    what changes is the training: one scalar per offset can make the
    context network read a particular neighbouring frame. Without it the
    kernel is a plain `Conv1D` kernel.

    Inputs: `(B, T, D)` frames and an optional `(B, T)` bool mask.
    """

    def __init__(self, kernel_size=128, groups=16, weight_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.groups = int(groups)
        self.weight_norm = bool(weight_norm)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        if dim % self.groups:
            raise ValueError(
                f"The context network's width {dim} must be divisible by the "
                f"positional convolution's `groups` {self.groups}."
            )
        # fairseq: normal init with std sqrt(4 / (k · D)).
        std = math.sqrt(4.0 / (self.kernel_size * dim))
        initializer = keras.initializers.RandomNormal(stddev=std)
        if not self.weight_norm:
            self.conv = keras.layers.Conv1D(
                dim, self.kernel_size, padding="same", groups=self.groups,
                kernel_initializer=initializer, dtype=self.dtype_policy,
                name="conv",
            )
            self.conv.build(input_shape)
            self.built = True
            return
        self.kernel_direction = self.add_weight(
            shape=(self.kernel_size, dim // self.groups, dim),
            initializer=initializer, name="kernel_direction",
        )
        self.kernel_gain = self.add_weight(
            shape=(self.kernel_size, 1, 1), initializer="ones",
            name="kernel_gain",
        )
        self.kernel_gain.assign(self._offset_norms())
        self.bias = self.add_weight(shape=(dim,), initializer="zeros", name="bias")
        self.built = True

    def _offset_norms(self):
        v = ops.cast(self.kernel_direction, "float32")
        return ops.sqrt(ops.sum(ops.square(v), axis=(1, 2), keepdims=True))

    def kernel(self):
        """The convolution kernel `(kernel_size, D / groups, D)`."""
        if not self.weight_norm:
            return self.conv.kernel
        v = ops.cast(self.kernel_direction, "float32")
        scale = ops.cast(self.kernel_gain, "float32") / ops.maximum(
            self._offset_norms(), 1e-12)
        return v * scale

    def call(self, x, mask=None):
        if mask is not None:
            x = x * ops.cast(mask, x.dtype)[:, :, None]
        if self.weight_norm:
            kernel = ops.cast(self.kernel(), x.dtype)
            y = ops.conv(x, kernel, strides=1, padding="same") + ops.cast(
                self.bias, x.dtype)
        else:
            y = self.conv(x)
        return x + keras.activations.gelu(y, approximate=False)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "groups": self.groups,
                       "weight_norm": self.weight_norm})
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class GumbelVectorQuantizer(keras.layers.Layer):
    """Product quantisation with a Gumbel softmax (wav2vec 2.0, section 2).

    "Given G codebooks, or groups, with V entries e ∈ R^{V×d/G}, we choose
    one entry from each codebook and concatenate the resulting vectors
    e1, ..., eG and apply a linear transformation R^d → R^f to obtain q."
    The choice is a Gumbel softmax: logits `l ∈ R^{G×V}` from a linear map
    of the latent frame, `p_{g,v} = softmax((l + n) / τ)` with Gumbel noise
    `n = −log(−log(u))`; the forward pass takes the hard argmax and the
    backward pass the soft probabilities (straight-through). At inference
    (no temperature given) the entry is the argmax of the logits, no noise.

    `call(z, temperature=None, seed=None, noise=None)` returns a dict
    (`noise`: optional `(B, T, G, V)` uniform noise for the Gumbel draw,
    instead of drawing it from the `seed` generator; `add_noise=False`: the
    argmax of the logits with the tempered softmax's straight-through
    gradient, no noise):
    `quantized` `(B, T, output_dim)`, `probs` `(B, T, G, V)` (the softmax of
    the logits without noise, for the diversity loss), `codes` `(B, T, G)`
    int32 and `logits` `(B, T, G, V)`.

    Args:
        num_groups: G (paper: 2).
        num_entries: V per codebook (paper: 320).
        codevector_dim: d, the concatenated entries' width (paper: 256;
            divisible by G).
        output_dim: f, the width of q after the linear map (paper: 256).
    """

    def __init__(self, num_groups=2, num_entries=320, codevector_dim=256,
                 output_dim=256, **kwargs):
        super().__init__(**kwargs)
        self.num_groups = int(num_groups)
        self.num_entries = int(num_entries)
        self.codevector_dim = int(codevector_dim)
        self.output_dim = int(output_dim)
        if self.num_groups < 1 or self.num_entries < 2:
            raise ValueError(
                "The quantizer needs at least 1 codebook of at least 2 "
                f"entries; got G={self.num_groups}, V={self.num_entries}."
            )
        if self.codevector_dim % self.num_groups:
            raise ValueError(
                f"`codevector_dim` {self.codevector_dim} must be divisible by "
                f"the number of codebooks {self.num_groups}."
            )

    def build(self, input_shape):
        g, v = self.num_groups, self.num_entries
        # fairseq: logits' weights N(0, 1), bias 0; entries U(0, 1).
        self.weight_proj = keras.layers.Dense(
            g * v, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
            dtype=self.dtype_policy, name="weight_proj",
        )
        self.weight_proj.build(input_shape)
        self.codevectors = self.add_weight(
            shape=(g, v, self.codevector_dim // g),
            initializer=keras.initializers.RandomUniform(0.0, 1.0),
            name="codevectors",
        )
        self.project_q = keras.layers.Dense(
            self.output_dim, dtype=self.dtype_policy, name="project_q")
        self.project_q.build(tuple(input_shape[:-1]) + (self.codevector_dim,))
        self.built = True

    @property
    def num_codes(self):
        """G · V, the number of codebook entries in all."""
        return self.num_groups * self.num_entries

    def call(self, z, temperature=None, seed=None, noise=None, add_noise=True):
        g, v = self.num_groups, self.num_entries
        logits = self.weight_proj(z)
        logits = ops.reshape(logits, tuple(ops.shape(logits)[:-1]) + (g, v))
        logits = ops.cast(logits, "float32")
        probs = ops.softmax(logits, axis=-1)
        if temperature is None:
            codes = ops.argmax(logits, axis=-1)
            choice = ops.one_hot(codes, v, dtype="float32")
        else:
            if add_noise:
                if noise is None:
                    noise = keras.random.uniform(ops.shape(logits), seed=seed)
                u = ops.clip(ops.cast(noise, "float32"), 1e-6, 1.0 - 1e-6)
                logits_in = logits - ops.log(-ops.log(u))
            else:
                logits_in = logits
            soft = ops.softmax(logits_in / temperature, axis=-1)
            codes = ops.argmax(soft, axis=-1)
            hard = ops.one_hot(codes, v, dtype="float32")
            choice = hard + soft - ops.stop_gradient(soft)
        entries = ops.einsum(
            "...gv,gvd->...gd", choice, ops.cast(self.codevectors, "float32"))
        shape = ops.shape(entries)
        entries = ops.reshape(
            entries, tuple(shape[:-2]) + (self.codevector_dim,))
        quantized = self.project_q(ops.cast(entries, self.compute_dtype))
        return {
            "quantized": quantized,
            "probs": probs,
            "codes": ops.cast(codes, "int32"),
            "logits": logits,
        }

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_groups": self.num_groups,
            "num_entries": self.num_entries,
            "codevector_dim": self.codevector_dim,
            "output_dim": self.output_dim,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class WaveformNormalization(keras.layers.Layer):
    """Zero mean, unit variance per utterance, over its real samples only.

    fairseq's `normalize=True` (the LARGE models' audio preprocessing), done
    inside the model so that any loudness the data has is seen the same
    way. Padding stays zero. Inputs: `(B, L)` audio and `(B, L)` bool mask.
    """

    def call(self, audio, padding_mask):
        weights = ops.cast(padding_mask, audio.dtype)
        mean, var = masked_moments(audio, weights)
        return (audio - mean) * weights / ops.sqrt(var + 1e-5)

    def compute_output_shape(self, audio_shape, padding_mask_shape=None):
        return audio_shape


@keras.saving.register_keras_serializable(package="keras_ssl")
class FramePaddingMask(keras.layers.Layer):
    """`(B, T')` bool mask of the real frames (`frames_padding_mask`), from
    the `(B, L)` sample mask and the `(B, T', C)` frames themselves."""

    def __init__(self, kernel_sizes, strides, **kwargs):
        super().__init__(**kwargs)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.strides = tuple(int(s) for s in strides)

    def call(self, padding_mask, frames):
        return frames_padding_mask(
            padding_mask, ops.shape(frames)[1], self.kernel_sizes, self.strides)

    def compute_output_shape(self, padding_mask_shape, frames_shape):
        return (frames_shape[0], frames_shape[1])

    def compute_output_spec(self, padding_mask, frames):
        return keras.KerasTensor(
            (frames.shape[0], frames.shape[1]), dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_sizes": list(self.kernel_sizes),
                       "strides": list(self.strides)})
        return config
