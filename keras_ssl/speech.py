"""The speech recipe: wav2vec 2.0 pre-training, then CTC fine-tuning.

`pretrain_wav2vec2(corpus, SpeechConfig())` fits `keras_ssl.models.Wav2Vec2`
on the corpus' unlabelled pool; `finetune_ctc(encoder, corpus, config)` fits
`Wav2Vec2CTC` on its labelled subset (the "10 minutes") and measures the
character and word error rates on the held-out test split (unseen voices and
sentences). `compare_with_random_init` runs the fine-tuning twice, from the
pre-trained encoder and from the same architecture at random
initialisation, with the same labelled audio and the same number of steps:
the claim of the paper at our scale.

The defaults are the small recipe for the embedded spoken corpus on 2 CPU
cores (`keras_ssl.datasets.load_spoken_corpus`). Its pre-training task is
the paper's with continuous targets (the projected latents, no quantizer;
an ablation of the paper) and spans of 3 frames, and CTC fine-tuning also
trains the feature encoder: measured on that corpus (docs/results/speech.md), this is the
setting in which pre-training beats random initialisation with 1, 2 and 10
labelled minutes. `paper_objective(config)` switches to the paper's
quantized targets and masks (spans of 10), which from random init stay at
chance here unless a curriculum stage (`curriculum_steps`,
`curriculum_config`) opens the run. The paper's BASE recipe is the
`paper` preset of `keras_ssl.recipes.presets`.

Example (a few steps):

```python
from keras_ssl.datasets import load_spoken_corpus
from keras_ssl.speech import SpeechConfig, compare_with_random_init, pretrain_wav2vec2

corpus = load_spoken_corpus()
config = SpeechConfig(steps=20, finetune_steps=20, steps_per_epoch=10)
pretrained = pretrain_wav2vec2(corpus, config)
runs = compare_with_random_init(corpus, pretrained.model.encoder, config)
print({name: run.scores["cer"] for name, run in runs.items()})
```
"""

from __future__ import annotations

import dataclasses
import time

import keras


from keras_ssl.recipes.configs import SpeechConfig


def build_backbone(config):
    """The small `Wav2Vec2Backbone` of the config (random init)."""
    from keras_ssl.backbones import Wav2Vec2Backbone

    return Wav2Vec2Backbone(
        conv_channels=(config.conv_channels,) * 7,
        feature_norm=config.feature_norm,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        intermediate_dim=config.intermediate_dim,
        pos_conv_kernel=config.pos_conv_kernel,
        pos_conv_groups=config.pos_conv_groups,
        pos_conv_weight_norm=config.pos_conv_weight_norm,
        dropout=config.dropout,
        layer_norm_first=config.layer_norm_first,
    )


def build_wav2vec2(config, encoder=None):
    """`Wav2Vec2` around `encoder` (default: a fresh `build_backbone`)."""
    from keras_ssl.models import Wav2Vec2

    return Wav2Vec2(
        encoder if encoder is not None else build_backbone(config),
        num_codebooks=config.num_codebooks,
        codebook_size=config.codebook_size,
        codevector_dim=config.codevector_dim,
        final_dim=config.final_dim,
        mask_prob=config.mask_prob,
        mask_length=config.mask_length,
        num_negatives=config.num_negatives,
        gumbel_temperature=(2.0, 0.5, config.gumbel_decay),
        diversity_weight=config.diversity_weight,
        feature_grad_mult=config.feature_grad_mult,
        feature_penalty_weight=config.feature_penalty_weight,
        drop_identical_distractors=config.drop_identical_distractors,
        gumbel_noise=config.gumbel_noise,
        quantize_targets=config.quantize_targets,
        seed=config.seed,
    )


def _optimizer(learning_rate, steps, warmup_fraction, weight_decay):
    from keras_ssl.optimizers import make_optimizer

    return make_optimizer(
        "adamw", learning_rate, steps, warmup_steps=int(warmup_fraction * steps),
        weight_decay=weight_decay, beta_2=0.98, epsilon=1e-6, clipnorm=5.0)


def _jit():
    # Jit-compile where the backend allows it (torch runs eagerly).
    return keras.backend.backend() != "torch"


@dataclasses.dataclass
class SpeechResult:
    """What a pre-training or fine-tuning run produced."""

    model: keras.Model
    history: dict
    seconds: float
    scores: dict = dataclasses.field(default_factory=dict)


def paper_objective(config):
    """`config` with the paper's pre-training objective: quantized targets
    (`num_codebooks` × `codebook_size`, Gumbel softmax, diversity loss) and
    spans of M = 10 frames started with p = 0.065."""
    from keras_ssl.recipes.presets import PAPER_OBJECTIVE

    return dataclasses.replace(config, **PAPER_OBJECTIVE)


def curriculum_config(config):
    """The config of the curriculum stage that opens pre-training when
    `config.curriculum_steps` > 0: that many steps with continuous targets
    (the projected latents, no quantizer) and short spans
    (`curriculum_mask_length`, `curriculum_mask_prob`)."""
    return dataclasses.replace(
        config, steps=config.curriculum_steps, curriculum_steps=0,
        quantize_targets=False, mask_length=config.curriculum_mask_length,
        mask_prob=config.curriculum_mask_prob)


def _is_stream(corpus):
    from keras_ssl.data.audio_stream import AudioStream

    return isinstance(corpus, AudioStream)


def _stream_batches(stream, config, split, labels=False, batch_size=None):
    """Batches of an `AudioStream`: the endless, shuffled training stream,
    or its bounded test part once."""
    from keras_ssl.data.audio_stream import speech_stream_dataset

    train = split == "train"
    return speech_stream_dataset(
        stream, split, labels=labels,
        batch_size=batch_size or config.batch_size, shuffle=train,
        seed=config.seed, repeat=train, bucket_seconds=config.bucket_seconds)


def _fit_wav2vec2(corpus, config, callbacks, verbose, encoder):
    from keras_ssl.data import speech_dataset

    keras.utils.set_random_seed(config.seed)
    if _is_stream(corpus):
        data = _stream_batches(corpus, config, "train")
    else:
        data = speech_dataset(corpus.pretrain.audio, batch_size=config.batch_size,
                              shuffle=True, seed=config.seed, repeat=True,
                              bucket_seconds=config.bucket_seconds)
    model = build_wav2vec2(config, encoder)
    model.compile(
        optimizer=_optimizer(config.learning_rate, config.steps,
                             config.warmup_fraction, config.weight_decay),
        jit_compile=_jit(),
    )
    from keras_ssl.callbacks import fit_schedule

    epochs, steps_per_epoch, stop = fit_schedule(config.steps, config.steps_per_epoch)
    start = time.perf_counter()
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=[*callbacks, *stop], verbose=verbose)
    return model, history.history, time.perf_counter() - start


def pretrain_wav2vec2(corpus, config=None, callbacks=(), verbose="auto",
                      encoder=None):
    """Fits wav2vec 2.0 on `corpus.pretrain.audio`, from a fresh backbone or
    from `encoder` (to continue pre-training).

    `corpus` is a `SpeechCorpus` (in memory: the embedded spoken corpus) or
    a `keras_ssl.data.audio_stream.AudioStream` (a folder of .wav/.flac
    files or TFDS speech, decoded from disk in `tf.data`:
    `stream_audio_folder`, `stream_tfds_speech`); a stream trains on its
    endless, seeded training part (utterances cropped to 15.6 s) and is
    scored on its held-out part.

    With `config.curriculum_steps` > 0 it first trains that many steps on
    the easier curriculum task (`curriculum_config`: continuous targets,
    spans of 3), then `config.steps` steps of the configured objective on
    the same backbone: for the paper's (`paper_objective`), which from
    random init does not leave chance on the embedded corpus
    (`benchmarks/speech_diagnostics.py`) and after the curriculum does.
    `callbacks` (e.g. a `ResumableBackup`) see the main stage only.

    Returns a `SpeechResult` whose `model` is the `Wav2Vec2` of the main
    stage (its `encoder` is the pre-trained backbone), whose `history` also
    holds the curriculum's metrics as `curriculum_<name>`, and whose `scores`
    hold the objective on the held-out test audio (contrastive accuracy;
    code perplexity with quantized targets).
    """
    from keras_ssl.data import speech_dataset

    config = config or SpeechConfig()
    history, seconds = {}, 0.0
    if config.curriculum_steps > 0:
        first, first_history, seconds = _fit_wav2vec2(
            corpus, curriculum_config(config), (), verbose, encoder)
        encoder = first.encoder
        history = {f"curriculum_{k}": v for k, v in first_history.items()}
    model, main_history, main_seconds = _fit_wav2vec2(
        corpus, config, callbacks, verbose, encoder)
    if _is_stream(corpus):
        test = _stream_batches(corpus, config, "test")
    else:
        test = speech_dataset(corpus.test.audio, batch_size=config.batch_size,
                              shuffle=False, bucket_seconds=config.bucket_seconds)
    scores = model.evaluate(test, return_dict=True, verbose=0)
    return SpeechResult(model, {**main_history, **history},
                        seconds + main_seconds, scores)


def build_ctc(encoder, config, vocabulary, from_scratch=False):
    """`Wav2Vec2CTC` on `encoder` with the config's fine-tuning options.

    `from_scratch=True` (a randomly initialised encoder) trains the whole
    network from the first step: freezing a random feature encoder, or a
    random Transformer for the first updates, would only handicap the
    baseline the pre-trained model is compared with.
    """
    from keras_ssl.models import Wav2Vec2CTC

    return Wav2Vec2CTC(
        encoder,
        vocabulary.tokens,
        freeze_feature_encoder=not (from_scratch
                                    or config.finetune_feature_encoder),
        freeze_transformer_steps=0 if from_scratch else int(
            config.freeze_transformer_fraction * config.finetune_steps),
        mask_prob=config.finetune_mask_prob,
        channel_mask_prob=config.finetune_channel_mask_prob,
        channel_mask_length=config.finetune_channel_mask_length,
        seed=config.seed,
    )


def error_rates(model, split, strategy="greedy", examples=0):
    """CER and WER of `model.transcribe` on a split, and the first
    `examples` (truth, hypothesis) pairs."""
    from keras_ssl.evaluation import character_error_rate, word_error_rate

    hypotheses = model.transcribe(split.audio, strategy=strategy)
    return {
        "cer": character_error_rate(split.transcripts, hypotheses),
        "wer": word_error_rate(split.transcripts, hypotheses),
        "examples": list(zip(split.transcripts, hypotheses))[:examples],
    }


def finetune_ctc(encoder, corpus, config=None, callbacks=(), verbose="auto",
                 examples=3, from_scratch=False):
    """CTC fine-tuning of `encoder` on `corpus.labelled`, scored on
    `corpus.test` (greedy decoding): a `SpeechResult` with `cer`, `wer`,
    `labelled_minutes` and a few decoded `examples` in its scores.

    `corpus` may also be an `AudioStream` with transcripts: it fine-tunes
    on the endless stream of its training part (utterances of at most
    15.6 s) and is scored on its held-out part (at most
    `max_test_utterances`, loaded into memory); `labelled_minutes` is then
    not known and left out."""
    from keras_ssl.data import CharacterVocabulary, speech_dataset

    config = config or SpeechConfig()
    keras.utils.set_random_seed(config.seed + 1)
    vocabulary = CharacterVocabulary()
    streamed = _is_stream(corpus)
    if streamed:
        data = _stream_batches(corpus, config, "train", labels=True,
                               batch_size=config.finetune_batch_size)
    else:
        data = speech_dataset(
            corpus.labelled.audio, corpus.labelled.transcripts,
            vocabulary=vocabulary, batch_size=config.finetune_batch_size,
            shuffle=True, seed=config.seed, repeat=True,
            bucket_seconds=config.bucket_seconds)
    model = build_ctc(encoder, config, vocabulary, from_scratch=from_scratch)
    model.compile(
        optimizer=_optimizer(config.finetune_learning_rate, config.finetune_steps,
                             config.warmup_fraction, 0.0),
        jit_compile=_jit(),
    )
    from keras_ssl.callbacks import fit_schedule

    epochs, steps_per_epoch, stop = fit_schedule(config.finetune_steps,
                                                 config.steps_per_epoch)
    start = time.perf_counter()
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=[*callbacks, *stop], verbose=verbose)
    seconds = time.perf_counter() - start
    if streamed:
        scores = error_rates(model, corpus.load("test"), examples=examples)
    else:
        scores = error_rates(model, corpus.test, examples=examples)
        scores["labelled_minutes"] = corpus.labelled.minutes
    return SpeechResult(model, history.history, seconds, scores)


# The two fine-tunings that `compare_with_random_init` can run.
ARMS = ("pretrained", "random_init")


def compare_with_random_init(corpus, pretrained_encoder, config=None,
                             verbose="auto", arms=ARMS):
    """Fine-tunes a copy of the pre-trained encoder and a randomly
    initialised one of the same architecture, with the same labels and
    steps: `{"pretrained": SpeechResult, "random_init": SpeechResult}`.

    The pre-trained encoder follows the paper's fine-tuning (feature encoder
    frozen unless `config.finetune_feature_encoder`, Transformer frozen for
    the first updates); the random one trains everything from the first
    step (`finetune_ctc(..., from_scratch=True)`), its strongest setting.
    `arms` picks which of the two to run (the random-init one does not
    depend on the pre-trained encoder, so one run of it serves many)."""
    if not arms or set(arms) - set(ARMS):
        raise ValueError(f"`arms` must be a non-empty subset of {ARMS}; got {arms!r}.")
    config = config or SpeechConfig()
    runs = {}
    if "pretrained" in arms:
        copy = type(pretrained_encoder).from_config(pretrained_encoder.get_config())
        copy.set_weights(pretrained_encoder.get_weights())
        runs["pretrained"] = finetune_ctc(copy, corpus, config, verbose=verbose)
    if "random_init" in arms:
        keras.utils.set_random_seed(config.seed + 2)
        random_encoder = build_backbone(config)
        runs["random_init"] = finetune_ctc(random_encoder, corpus, config,
                                           verbose=verbose, from_scratch=True)
    return runs
