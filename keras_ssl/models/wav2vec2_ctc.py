"""Fine-tuning wav2vec 2.0 for speech recognition with CTC."""

import keras
from keras import ops

from keras_ssl.losses.wav2vec2 import span_mask
from keras_ssl.models.ssl_model import SSLModel
from keras_ssl.models.wav2vec2 import (
    check_audio_length,
    pad_waveforms,
    split_audio_inputs,
)

_LABEL_KEYS = ("labels", "label_length")


@keras.saving.register_keras_serializable(package="keras_ssl")
class Wav2Vec2CTC(SSLModel):
    """A character recogniser on a (pre-trained) wav2vec 2.0 backbone.

    "Pre-trained models are fine-tuned for speech recognition by adding a
    randomly initialized linear projection on top of the context network
    into C classes representing the vocabulary of the task [...]. Models
    are optimized by minimizing a CTC loss and we apply a modified version
    of SpecAugment by masking to time-steps and channels during training
    [...]. The feature encoder is not trained during fine-tuning [...] for
    the first 10k updates only the output classifier is trained, after which
    the Transformer is also updated."

    - The head is a `Dense` over the context frames to the vocabulary;
      index 0 is CTC's blank (`keras.ops.ctc_loss(mask_index=0)`).
    - `freeze_feature_encoder=True` sets the CNN's `trainable = False`.
    - For the first `freeze_transformer_steps` optimizer steps the backbone's
      output carries no gradient, so only the head learns (a step counter,
      moved by `after_step`, decides inside the jitted step).
    - Time masking replaces spans of frames by the backbone's learned mask
      embedding (`mask_prob`, `mask_length`); channel masking zeroes spans
      of the projected features' channels (`channel_mask_prob`,
      `channel_mask_length`); training only.
    - Batches are dicts `{"audio", "padding_mask", "labels", "label_length"}`
      (`keras_ssl.data.speech_dataset(..., transcripts=..., vocabulary=...)`);
      labels are padded with 0.
    - `transcribe(audio)` decodes greedily or with beam search
      (`keras.ops.ctc_decode`) and maps the ids back to text.

    Args:
        encoder: a `Wav2Vec2Backbone`, pre-trained or not.
        vocabulary: the output symbols, index 0 the blank (e.g.
            `CharacterVocabulary().tokens`).
        freeze_feature_encoder: keep the CNN fixed (paper: yes).
        freeze_transformer_steps: updates during which only the head trains
            (paper: 10,000).
        mask_prob, mask_length: time masking (paper, 10 min of labels:
            0.075 of frames start a span of 10).
        channel_mask_prob, channel_mask_length: channel masking (paper,
            10 min: 0.008 start a span of 64 channels, of 768).
        final_dropout: dropout before the head.
        seed: seed of the masks' `SeedGenerator`.

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.models import Wav2Vec2CTC
    corpus = keras_ssl.datasets.load_spoken_corpus()
    vocab = keras_ssl.data.CharacterVocabulary()
    data = keras_ssl.data.speech_dataset(
        corpus.labelled.audio, corpus.labelled.transcripts, vocabulary=vocab,
        batch_size=8, repeat=True)
    encoder = keras_ssl.load_model("wav2vec2_encoder.keras")
    model = Wav2Vec2CTC(encoder, vocab.tokens, freeze_transformer_steps=100)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(data, steps_per_epoch=500, epochs=1)
    print(model.transcribe(corpus.test.audio[:3]))
    ```
    """

    def __init__(
        self,
        encoder,
        vocabulary,
        freeze_feature_encoder=True,
        freeze_transformer_steps=0,
        mask_prob=0.075,
        mask_length=10,
        channel_mask_prob=0.008,
        channel_mask_length=64,
        final_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        vocabulary = [str(t) for t in vocabulary]
        if len(vocabulary) < 2:
            raise ValueError(
                "The CTC vocabulary needs the blank (index 0) and at least one "
                f"symbol; got {vocabulary}."
            )
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The CTC vocabulary has repeated symbols.")
        self.encoder = encoder
        self.vocabulary = vocabulary
        self.freeze_feature_encoder = bool(freeze_feature_encoder)
        self.freeze_transformer_steps = int(freeze_transformer_steps)
        self.mask_prob = float(mask_prob)
        self.mask_length = int(mask_length)
        self.channel_mask_prob = float(channel_mask_prob)
        self.channel_mask_length = int(channel_mask_length)
        self.final_dropout = float(final_dropout)
        self.seed = seed
        if self.freeze_feature_encoder:
            encoder.feature_encoder.trainable = False
        self.dropout = keras.layers.Dropout(self.final_dropout, name="final_dropout")
        self.head = keras.layers.Dense(len(vocabulary), name="ctc_head")
        self.head.build((None, None, int(encoder.hidden_dim)))
        self.updates = self.add_weight(
            shape=(), initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="updates",
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="specaugment_seed")
        self.build(None)

    def build(self, input_shape=None):
        self.built = True

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def call(self, inputs, training=False):
        audio, padding_mask, _ = split_audio_inputs(
            inputs, type(self).__name__, _LABEL_KEYS)
        check_audio_length(audio.shape[1], self.encoder, type(self).__name__)
        _, z, frame_mask = self.encoder.latent_frames(audio, padding_mask)
        batch, num_frames = ops.shape(z)[0], ops.shape(z)[1]
        time_mask = None
        if training and self.mask_prob > 0:
            time_mask = span_mask(
                self.uniform_noise(batch, (num_frames,)), self.uniform_noise(batch),
                frame_mask, self.mask_prob, self.mask_length, min_spans=0)
        hidden = self.encoder.project_features(z, time_mask, training=training)
        if training and self.channel_mask_prob > 0:
            width = int(self.encoder.hidden_dim)
            channels = span_mask(
                self.uniform_noise(batch, (width,)), self.uniform_noise(batch),
                ops.ones((batch, width), "bool"), self.channel_mask_prob,
                min(self.channel_mask_length, width), min_spans=0)
            hidden = hidden * ops.cast(
                ops.logical_not(channels), hidden.dtype)[:, None, :]
        context = self.encoder.contextualize(hidden, frame_mask, training=training)
        if self.freeze_transformer_steps > 0:
            frozen = ops.less(ops.convert_to_tensor(self.updates),
                              float(self.freeze_transformer_steps))
            context = ops.where(frozen, ops.stop_gradient(context), context)
        logits = self.head(self.dropout(context, training=training))
        return {"logits": logits, "frame_mask": frame_mask}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if not isinstance(x, dict) or "labels" not in x:
            raise ValueError(
                "Wav2Vec2CTC trains on batches with 'labels' and "
                "'label_length' (make them with keras_ssl.data.speech_dataset("
                "audio, transcripts, vocabulary=...))."
            )
        logits = ops.cast(y_pred["logits"], "float32")
        logit_length = ops.sum(ops.cast(y_pred["frame_mask"], "int32"), axis=1)
        label_length = ops.cast(ops.reshape(x["label_length"], (-1,)), "int32")
        losses = ops.ctc_loss(
            ops.cast(x["labels"], "int32"), logits, label_length, logit_length,
            mask_index=0)
        return ops.mean(losses)

    def after_step(self):
        self.updates.assign(ops.cast(self.optimizer.iterations, "float32"))

    def transcribe(self, audio, strategy="greedy", beam_width=16, batch_size=16):
        """Text for each waveform: a list of 1-D arrays (any lengths) or a
        dict batch `{"audio", "padding_mask"}`.

        Args:
            audio: waveforms at the backbone's sample rate (16 kHz).
            strategy: `"greedy"` or `"beam_search"` (`keras.ops.ctc_decode`).
            beam_width: beams for beam search.
            batch_size: utterances per forward pass (lists only).
        """
        import numpy as np

        if isinstance(audio, dict):
            batches = [audio]
        else:
            audio = list(audio)
            batches = [pad_waveforms(audio[i : i + batch_size])
                       for i in range(0, len(audio), batch_size)]
        texts = []
        for batch in batches:
            out = self(batch, training=False)
            lengths = ops.sum(ops.cast(out["frame_mask"], "int32"), axis=1)
            decoded, _ = ops.ctc_decode(
                ops.cast(out["logits"], "float32"), lengths, strategy=strategy,
                beam_width=beam_width, top_paths=1, mask_index=0)
            for row in ops.convert_to_numpy(decoded[0]):
                ids = [int(i) for i in np.asarray(row) if 0 < i < len(self.vocabulary)]
                texts.append("".join(self.vocabulary[i] for i in ids))
        return texts

    def get_config(self):
        config = super().get_config()
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "vocabulary": list(self.vocabulary),
            "freeze_feature_encoder": self.freeze_feature_encoder,
            "freeze_transformer_steps": self.freeze_transformer_steps,
            "mask_prob": self.mask_prob,
            "mask_length": self.mask_length,
            "channel_mask_prob": self.channel_mask_prob,
            "channel_mask_length": self.channel_mask_length,
            "final_dropout": self.final_dropout,
            "seed": self.seed,
        })
        return config
