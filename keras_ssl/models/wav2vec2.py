"""wav2vec 2.0: self-supervised learning of speech representations."""

import keras
from keras import ops

from keras_ssl.layers.wav2vec2 import GumbelVectorQuantizer
from keras_ssl.losses.wav2vec2 import (
    codebook_perplexity,
    contrastive_accuracy,
    diversity_loss,
    feature_penalty,
    sample_negative_indices,
    span_mask,
    wav2vec2_contrastive_loss,
)
from keras_ssl.models.ssl_model import SSLModel

_ENCODER_API = ("latent_frames", "project_features", "contextualize",
                "mask_embedding",
                "hidden_dim", "latent_dim", "receptive_field", "num_frames")
_NOISE_KEYS = ("mask_noise", "mask_rounding", "negative_noise", "gumbel_noise")
_FLOATS = ("float16", "bfloat16", "float32", "float64")


def split_audio_inputs(inputs, owner, extra_keys=()):
    """`(audio, padding_mask, extras)` from a `(B, L)` tensor (every sample
    real) or a dict `{"audio", "padding_mask", *extra_keys}`, checked.

    Raises:
        ValueError: for unknown keys, stereo or otherwise non-2-D audio, a
            non-float dtype, an empty batch, or a mask of another shape.
    """
    if isinstance(inputs, (tuple, list)) and len(inputs) == 1:
        inputs = inputs[0]
    extras = {}
    if isinstance(inputs, dict):
        allowed = {"audio", "padding_mask", *extra_keys}
        unknown = sorted(set(inputs) - allowed)
        if "audio" not in inputs or unknown:
            raise ValueError(
                f"{owner} takes a dict with keys 'audio' and 'padding_mask' "
                f"(optionally {sorted(extra_keys)}); got keys {sorted(inputs)}."
                " `keras_ssl.data.speech_dataset` yields such batches."
            )
        audio = inputs["audio"]
        padding_mask = inputs.get("padding_mask")
        extras = {k: inputs[k] for k in extra_keys if k in inputs}
    else:
        audio, padding_mask = inputs, None
    shape = tuple(audio.shape)
    if len(shape) == 3 and shape[-1] in (1, 2):
        raise ValueError(
            f"{owner} takes mono audio (B, samples); got shape {shape}, which "
            "looks like (B, samples, channels). Mix the channels down (e.g. "
            "average them) or take one."
        )
    if len(shape) != 2:
        raise ValueError(
            f"{owner} takes a batch of mono waveforms (B, samples); got shape "
            f"{shape}."
        )
    dtype = keras.backend.standardize_dtype(audio.dtype)
    if dtype not in _FLOATS:
        raise ValueError(
            f"{owner} takes float waveforms in [-1, 1]; got dtype {dtype}. "
            "Divide 16-bit PCM by 32768."
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{owner} got an empty batch of audio, shape {shape}.")
    if padding_mask is None:
        padding_mask = ops.ones(ops.shape(audio), dtype="bool")
    elif tuple(padding_mask.shape) != shape:
        raise ValueError(
            f"{owner}: `padding_mask` must have the audio's shape {shape}; got "
            f"{tuple(padding_mask.shape)}."
        )
    return ops.convert_to_tensor(audio), ops.cast(padding_mask, "bool"), extras


def pad_waveforms(waveforms, multiple=1600):
    """A dict batch `{"audio", "padding_mask"}` of 1-D waveforms, zero-padded
    at the end to the longest one rounded up to `multiple` samples (0.1 s at
    16 kHz), so that few distinct shapes reach a jitted model."""
    import numpy as np

    waveforms = [np.asarray(w, "float32") for w in waveforms]
    if not waveforms:
        raise ValueError("No waveforms to pad.")
    for w in waveforms:
        if w.ndim != 1 or w.size == 0:
            raise ValueError(
                "Each waveform must be a non-empty 1-D (mono) array; got shape "
                f"{w.shape}."
            )
    longest = max(w.size for w in waveforms)
    length = -(-longest // multiple) * multiple
    audio = np.zeros((len(waveforms), length), "float32")
    mask = np.zeros((len(waveforms), length), bool)
    for i, w in enumerate(waveforms):
        audio[i, : w.size], mask[i, : w.size] = w, True
    return {"audio": audio, "padding_mask": mask}


def check_audio_length(num_samples, encoder, owner, min_frames=1):
    """Fails clearly when a batch is too short for the feature encoder."""
    if num_samples is None:
        return
    frames = encoder.num_frames(int(num_samples))
    if frames < min_frames:
        raise ValueError(
            f"{owner}: audio of {num_samples} samples is too short: the feature "
            f"encoder sees {encoder.receptive_field} samples per frame (and "
            f"moves {encoder.frame_stride} between frames), so this makes "
            f"{frames} frames and at least {min_frames} are needed."
        )


@keras.saving.register_keras_serializable(package="keras_ssl")
class Wav2Vec2(SSLModel):
    """wav2vec 2.0 pre-training (Baevski et al., 2020).

    "wav2vec 2.0 masks the speech input in the latent space and solves a
    contrastive task defined over a quantization of the latent
    representations which are jointly learned." The step, as `call` and
    `compute_loss` write it:

    ```
    for batch of audio:
        z = feature_encoder(audio)                   # (B, T, C), 20 ms frames
        q = quantizer(z, gumbel τ)                   # targets (B, T, F)
        mask = span_mask(p=0.065, M=10)              # ~49% of frames
        h = where(mask, mask_embedding, project(z))
        c = final_proj(transformer(h))               # (B, T, F)
        negatives = K=100 other masked frames of the same utterance
        L = contrastive(c, q, negatives, κ=0.1) on masked frames
            + α · diversity(mean codebook usage) + β · mean(z²)
    after each step: τ = max(τ_max · decay^step, τ_min)
    ```

    Details:

    - All randomness (span starts, distractors, Gumbel noise) comes from a
      `keras.random.SeedGenerator` on the model: fresh at every step,
      jit-compiled on every backend. For fixed draws pass them in the input
      dict (`mask_noise` `(B, T)`, `mask_rounding` `(B,)`, `negative_noise`
      `(B, T, K)`, `gumbel_noise` `(B, T, G, V)`, uniform in [0, 1)).
    - Shapes are static: masks are weights over all frames, and distractors
      are indices into the utterance's frames, so padding and variable
      numbers of masked frames need no dynamic shapes. Batches are padded
      per length bucket (`keras_ssl.data.speech_dataset`).
    - The feature encoder's gradient is scaled by `feature_grad_mult`
      (BASE: 0.1), as in the paper's code.
    - The diversity loss averages the quantizer's softmax over the masked
      frames (those fairseq quantises); the Gumbel temperature is a
      variable moved by `after_step`, so it is saved and resumed.
    - Logged beside the loss: `contrastive_loss`, `feature_penalty`,
      `accuracy` (true latent ranked first among the candidates) and
      `masked_fraction`; with quantised targets also `diversity_loss`,
      `code_perplexity` (of the codes chosen) and `temperature`.

    Inputs: a `(B, L)` float waveform batch (16 kHz mono) or a dict with
    `audio` and `padding_mask` (and optionally the fixed noise above).

    Args:
        encoder: a `keras_ssl.backbones.Wav2Vec2Backbone`.
        num_codebooks: G (paper: 2).
        codebook_size: V entries per codebook (paper: 320).
        codevector_dim: d, the concatenated entries' width (paper: 256).
        final_dim: F, the width in which context and targets are compared
            (paper: 256).
        mask_prob: p, the proportion of frames that start a span (0.065).
        mask_length: M, the span length (10).
        num_negatives: K distractors per masked frame (100).
        contrastive_temperature: κ (0.1).
        gumbel_temperature: `(start, end, decay)` (paper: 2, 0.5, 0.999995
            per update).
        diversity_weight: α (0.1).
        feature_penalty_weight: the weight of `mean(z²)` (fairseq: 10).
        feature_grad_mult: gradient scale into the feature encoder (0.1).
        drop_identical_distractors: score a distractor whose quantised
            latent equals the truth as −∞ (fairseq, the default) or keep it
            as a candidate (`False`: a collapsed codebook then scores
            chance instead of perfectly; see `contrastive_logits`).
        gumbel_noise: add Gumbel noise to the quantizer's logits in
            training (the paper); `False` picks the argmax of the logits,
            which keeps the targets a deterministic function of the audio.
        quantize_targets: the paper's targets, `q = quantizer(z)` (`True`),
            or its "continuous targets" ablation (`False`, Table 4: a linear
            map of the unquantised `z`, no diversity loss). With few data
            the quantizer collapses to one entry per codebook (measured on
            the embedded corpus: code perplexity 2.0 of 128 within 200
            steps at lr 1e-3), which `drop_identical_distractors` scores as
            perfect; continuous targets cannot collapse that way.
        seed: seed of the model's `SeedGenerator`.

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.backbones import Wav2Vec2Backbone
    from keras_ssl.models import Wav2Vec2
    corpus = keras_ssl.datasets.load_spoken_corpus()
    data = keras_ssl.data.speech_dataset(corpus.pretrain.audio, batch_size=8,
                                         repeat=True)
    model = Wav2Vec2(Wav2Vec2Backbone.small(), codebook_size=64,
                     codevector_dim=64, final_dim=64)
    model.compile(optimizer=keras.optimizers.AdamW(5e-4))
    model.fit(data, steps_per_epoch=200, epochs=1)
    model.encoder.save("wav2vec2_encoder.keras")
    ```
    """

    def __init__(
        self,
        encoder,
        num_codebooks=2,
        codebook_size=320,
        codevector_dim=256,
        final_dim=256,
        mask_prob=0.065,
        mask_length=10,
        num_negatives=100,
        contrastive_temperature=0.1,
        gumbel_temperature=(2.0, 0.5, 0.999995),
        diversity_weight=0.1,
        feature_penalty_weight=10.0,
        feature_grad_mult=0.1,
        drop_identical_distractors=True,
        gumbel_noise=True,
        quantize_targets=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.require_api(
            encoder, _ENCODER_API, "wav2vec 2.0's encoder",
            "`keras_ssl.backbones.Wav2Vec2Backbone`, which exposes the feature "
            "encoder and the context network separately",
        )
        if not 0.0 < float(mask_prob) < 1.0:
            raise ValueError(
                f"`mask_prob` must be in (0, 1); got {mask_prob} (paper: 0.065)."
            )
        if int(mask_length) < 1 or int(num_negatives) < 1:
            raise ValueError(
                "`mask_length` and `num_negatives` must be >= 1; got "
                f"{mask_length} and {num_negatives}."
            )
        gumbel_temperature = tuple(float(t) for t in gumbel_temperature)
        if len(gumbel_temperature) != 3 or min(gumbel_temperature[:2]) <= 0:
            raise ValueError(
                "`gumbel_temperature` is (start, end, decay) with positive "
                f"temperatures; got {gumbel_temperature}."
            )
        self.encoder = encoder
        self.num_codebooks = int(num_codebooks)
        self.codebook_size = int(codebook_size)
        self.codevector_dim = int(codevector_dim)
        self.final_dim = int(final_dim)
        self.mask_prob = float(mask_prob)
        self.mask_length = int(mask_length)
        self.num_negatives = int(num_negatives)
        self.contrastive_temperature = float(contrastive_temperature)
        self.gumbel_temperature_schedule = gumbel_temperature
        self.diversity_weight = float(diversity_weight)
        self.feature_penalty_weight = float(feature_penalty_weight)
        self.feature_grad_mult = float(feature_grad_mult)
        self.drop_identical_distractors = bool(drop_identical_distractors)
        self.gumbel_noise = bool(gumbel_noise)
        self.quantize_targets = bool(quantize_targets)
        self.seed = seed

        latent_shape = (None, None, int(encoder.latent_dim))
        if self.quantize_targets:
            self.quantizer = GumbelVectorQuantizer(
                self.num_codebooks, self.codebook_size, self.codevector_dim,
                self.final_dim, name="quantizer",
            )
            self.quantizer.build(latent_shape)
        else:
            self.target_projection = keras.layers.Dense(
                self.final_dim, name="target_projection")
            self.target_projection.build(latent_shape)
        self.final_projection = keras.layers.Dense(
            self.final_dim, name="final_projection")
        self.final_projection.build((None, None, int(encoder.hidden_dim)))
        self.temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(gumbel_temperature[0]),
            trainable=False,
            aggregation="only_first_replica",
            name="gumbel_temperature",
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="wav2vec2_seed")
        self.add_metric_trackers(
            "contrastive_loss", "feature_penalty", "accuracy", "masked_fraction",
            *(("diversity_loss", "code_perplexity", "temperature")
              if self.quantize_targets else ()),
        )
        self.build(None)

    def build(self, input_shape=None):
        self.built = True

    # --- the method -----------------------------------------------------------
    def call(self, inputs, training=False):
        audio, padding_mask, noise = split_audio_inputs(
            inputs, type(self).__name__, _NOISE_KEYS)
        check_audio_length(audio.shape[1], self.encoder, type(self).__name__,
                           min_frames=2)
        raw, z, frame_mask = self.encoder.latent_frames(
            audio, padding_mask, gradient_scale=self.feature_grad_mult)
        batch, num_frames = ops.shape(z)[0], ops.shape(z)[1]

        mask_noise = noise.get("mask_noise")
        if mask_noise is None:
            mask_noise = self.uniform_noise(batch, (num_frames,))
        rounding = noise.get("mask_rounding")
        if rounding is None:
            rounding = self.uniform_noise(batch)
        mask = span_mask(mask_noise, rounding, frame_mask, self.mask_prob,
                         self.mask_length)

        hidden = self.encoder.project_features(z, mask, training=training)
        context = self.encoder.contextualize(hidden, frame_mask, training=training)
        context = self.final_projection(context)

        if self.quantize_targets:
            targets = self.quantizer(
                z,
                temperature=ops.convert_to_tensor(self.temperature),
                seed=self.seed_generator,
                noise=noise.get("gumbel_noise"),
                add_noise=self.gumbel_noise,
            )
            targets = {"quantized": targets["quantized"],
                       "probs": targets["probs"], "codes": targets["codes"]}
        else:
            targets = {"quantized": self.target_projection(z)}
        negative_noise = noise.get("negative_noise")
        if negative_noise is None:
            negative_noise = self.uniform_noise(
                batch, (num_frames, self.num_negatives))
        negatives = sample_negative_indices(negative_noise, mask)
        return {
            "context": context,
            **targets,
            "negative_indices": negatives,
            "mask": mask,
            "frame_mask": frame_mask,
            "raw_features": raw,
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        out = y_pred
        mask = out["mask"]
        terms = dict(
            context=out["context"], quantized=out["quantized"],
            negative_indices=out["negative_indices"], mask=mask,
            temperature=self.contrastive_temperature,
            drop_identical=self.drop_identical_distractors,
        )
        contrastive = wav2vec2_contrastive_loss(**terms)
        penalty = feature_penalty(out["raw_features"], out["frame_mask"])
        self.track(
            contrastive_loss=contrastive,
            feature_penalty=penalty,
            accuracy=contrastive_accuracy(**terms),
            masked_fraction=ops.sum(ops.cast(mask, "float32"))
            / ops.maximum(ops.sum(ops.cast(out["frame_mask"], "float32")), 1.0),
        )
        loss = contrastive + self.feature_penalty_weight * penalty
        if not self.quantize_targets:
            return loss
        diversity = diversity_loss(out["probs"], mask)
        codes = ops.one_hot(out["codes"], self.codebook_size, dtype="float32")
        self.track(
            diversity_loss=diversity,
            code_perplexity=codebook_perplexity(codes, mask),
            temperature=ops.convert_to_tensor(self.temperature),
        )
        return loss + self.diversity_weight * diversity

    def after_step(self):
        if not self.quantize_targets:
            return  # no quantizer: the Gumbel temperature is not used
        # The optimizer has counted this step: `iterations` = step + 1.
        start, end, decay = self.gumbel_temperature_schedule
        step = ops.cast(self.optimizer.iterations, "float32")
        self.temperature.assign(ops.maximum(start * ops.power(decay, step), end))

    def encode(self, inputs, training=False):
        """Mean of the context frames over each utterance's real frames:
        `(B, D)` features for probes and k-NN."""
        audio, padding_mask, _ = split_audio_inputs(inputs, type(self).__name__)
        return masked_frame_mean(self.encoder, audio, padding_mask, training)

    def get_config(self):
        config = super().get_config()
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "codevector_dim": self.codevector_dim,
            "final_dim": self.final_dim,
            "mask_prob": self.mask_prob,
            "mask_length": self.mask_length,
            "num_negatives": self.num_negatives,
            "contrastive_temperature": self.contrastive_temperature,
            "gumbel_temperature": list(self.gumbel_temperature_schedule),
            "diversity_weight": self.diversity_weight,
            "feature_penalty_weight": self.feature_penalty_weight,
            "feature_grad_mult": self.feature_grad_mult,
            "drop_identical_distractors": self.drop_identical_distractors,
            "gumbel_noise": self.gumbel_noise,
            "quantize_targets": self.quantize_targets,
            "seed": self.seed,
        })
        return config


def masked_frame_mean(encoder, audio, padding_mask, training=False):
    """The backbone's context frames averaged over each utterance's real
    frames, `(B, D)`."""
    from keras_ssl.evaluation.text import masked_mean

    frames = encoder({"audio": audio, "padding_mask": padding_mask},
                     training=training)
    return masked_mean(
        frames, encoder.frame_padding_mask(padding_mask, ops.shape(frames)[1]))
