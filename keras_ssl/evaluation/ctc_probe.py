"""A linear CTC probe of a frozen speech encoder (SUPERB's frozen-upstream
ASR, with a linear head): how much of the characters its frames carry.

The encoder runs once over each split; a `Dense` layer from its context
frames to the characters (index 0 CTC's blank) is then trained with the CTC
loss on the frozen frames and decoded greedily. Fine-tuning the whole network
(`keras_ssl.speech.finetune_ctc`) measures more, and costs minutes; this
costs seconds, so a test can compare a pretrained encoder with its random
initialisation.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_ssl.data.audio import CharacterVocabulary
from keras_ssl.evaluation.error_rate import character_error_rate, word_error_rate


def context_frames(encoder, waveforms, batch_size=16):
    """The frozen encoder's context frames of each waveform: a list of
    `(frames, D)` float32 arrays, padding frames removed."""
    from keras_ssl.models.wav2vec2 import pad_waveforms

    waveforms = list(waveforms)
    frames = []
    for start in range(0, len(waveforms), batch_size):
        batch = pad_waveforms(waveforms[start : start + batch_size])
        context = ops.convert_to_numpy(encoder(batch, training=False))
        lengths = ops.convert_to_numpy(ops.sum(ops.cast(encoder.frame_padding_mask(
            batch["padding_mask"], context.shape[1]), "int32"), axis=1))
        frames.extend(c[:n].astype("float32") for c, n in zip(context, lengths))
    return frames


def _pad(frames, labels=None):
    """All of a split as one batch: frames `(N, T, D)` and their mask,
    labels `(N, L)` padded with 0 (CTC's blank)."""
    longest = max(len(f) for f in frames)
    x = np.zeros((len(frames), longest, frames[0].shape[1]), "float32")
    mask = np.zeros((len(frames), longest), bool)
    for i, f in enumerate(frames):
        x[i, : len(f)], mask[i, : len(f)] = f, True
    batch = {"frames": x, "frame_mask": mask}
    if labels is not None:
        y = np.zeros((len(labels), max(1, max(len(l) for l in labels))), "int32")
        for i, l in enumerate(labels):
            y[i, : len(l)] = l
        batch["labels"] = y
    return batch


class _LinearCTC(keras.Model):
    """Frames → characters (one `Dense`), trained with the CTC loss."""

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.head = keras.layers.Dense(vocabulary_size)

    def call(self, inputs):
        return self.head(inputs["frames"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        labels = ops.cast(x["labels"], "int32")
        return ops.mean(ops.ctc_loss(
            labels, ops.cast(y_pred, "float32"),
            ops.sum(ops.cast(labels > 0, "int32"), axis=1),
            ops.sum(ops.cast(x["frame_mask"], "int32"), axis=1), mask_index=0))


def ctc_probe_error_rates(encoder, train, test, vocabulary=None, epochs=60,
                          batch_size=16, learning_rate=1e-2, seed=0):
    """CER and WER of a linear CTC head trained on `encoder`'s frozen frames.

    Args:
        encoder: a `Wav2Vec2Backbone` (any model mapping `{"audio",
            "padding_mask"}` to `(B, T', D)` frames with a
            `frame_padding_mask(padding_mask, T')` method).
        train, test: splits with `.audio` (waveforms) and `.transcripts`
            (e.g. `load_spoken_corpus().labelled` and `.test`).
        vocabulary: a `CharacterVocabulary` (default: space, apostrophe, a-z).
        epochs, batch_size, learning_rate: the head's Adam training.
        seed: seed of the head's initialisation and of the batch order.

    Returns:
        `{"cer": float, "wer": float}` on `test`.

    Example:

    ```python
    from keras_ssl import applications, datasets
    from keras_ssl.evaluation import ctc_probe_error_rates
    corpus = datasets.load_spoken_corpus()
    encoder = applications.get("wav2vec2_speech").load()
    print(ctc_probe_error_rates(encoder, corpus.labelled, corpus.test))
    ```
    """
    vocabulary = vocabulary or CharacterVocabulary()
    train_set = _pad(context_frames(encoder, train.audio, batch_size),
                     [vocabulary.encode(t) for t in train.transcripts])
    # Standardised with the training frames' statistics (padding stays 0).
    real = train_set["frames"][train_set["frame_mask"]]
    mean, std = real.mean(axis=0), real.std(axis=0) + 1e-6

    def standardise(batch):
        batch["frames"] = (batch["frames"] - mean) / std * batch["frame_mask"][..., None]
        return batch

    train_set = standardise(train_set)
    keras.utils.set_random_seed(seed)
    model = _LinearCTC(vocabulary.size)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    # Every batch has the same shape (the longest utterance), so a jitted
    # step compiles once; each epoch is a new permutation of the split.
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, len(train.audio))
    for _ in range(epochs):
        order = rng.permutation(len(train.audio))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            rows = order[start : start + batch_size]
            model.train_on_batch({k: v[rows] for k, v in train_set.items()})
    test_frames = context_frames(encoder, test.audio, batch_size)
    logits = ops.convert_to_numpy(model(standardise(_pad(test_frames))))
    hypotheses = [vocabulary.ctc_decode(np.argmax(l[: len(f)], axis=-1))
                  for l, f in zip(logits, test_frames)]
    return {"cer": character_error_rate(test.transcripts, hypotheses),
            "wer": word_error_rate(test.transcripts, hypotheses)}
