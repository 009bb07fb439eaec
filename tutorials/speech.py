# %% [markdown]
# # Speech: wav2vec 2.0 pretraining, then CTC fine-tuning
#
# wav2vec 2.0 (Baevski et al., 2020) learns from raw, unlabelled audio. A stack of
# 7 convolutions turns the 16 kHz waveform into latent frames *z*, one every
# 20 ms. Spans of these frames are masked (each frame starts a span of M = 10
# with probability p = 0.065, so about half the frames are hidden) and a
# Transformer reads the masked sequence. A quantizer (G codebooks of V entries,
# picked with a Gumbel softmax) turns the *unmasked* latents into discrete
# targets *q*. The loss is contrastive: at each masked frame the Transformer's
# output must be closer (cosine, temperature κ = 0.1) to that frame's quantized
# latent than to K = 100 distractors sampled from other masked frames of the same
# utterance. A diversity loss keeps all codebook entries in use.
#
# After pretraining, a linear layer over the characters is added on top and the
# model is fine-tuned with CTC (connectionist temporal classification) on a few
# transcribed minutes. The paper's headline: with only 10 minutes of labelled
# LibriSpeech, a model pretrained on 53 k hours reaches 4.8 / 8.2 WER on
# test-clean / test-other; with 1 hour, it beats the previous state of the art
# trained on 100 hours.
#
# Here: the embedded spoken corpus, real speech synthesised by eSpeak NG from the
# embedded text (60 unlabelled minutes, 10 labelled minutes, 5 minutes of unseen
# voices and sentences; synthesised once and cached), nothing downloaded.
#
# **Be warned: at this tutorial's budget pretraining is not shown to beat random
# initialisation.** Both fine-tuned models output mostly blanks and spaces after a
# few hundred steps; the paper pretrains for 400 k updates on 64 GPUs. What this
# tutorial shows is the paper's objective working end to end on every backend:
# the masks, the losses, the codebook usage, CTC and decoding. The library's
# small default (`SpeechConfig()`: continuous targets, spans of 3, the feature
# encoder trained in CTC) is the setting that does beat random initialisation at
# its full budget, with 1, 2 and 10 labelled minutes (docs/results/speech.md;
# `keras-ssl pretrain wav2vec2`). The default budget of this tutorial is sized
# for a CPU.

# %% [markdown]
# ## Setup
#
# **The line below is the only one to change** to run under JAX or TensorFlow.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # or "jax", "tensorflow": the only line to change

import sys

import matplotlib

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_ssl.datasets import load_spoken_corpus  # noqa: E402
from keras_ssl.speech import (  # noqa: E402
    SpeechConfig,
    compare_with_random_init,
    paper_objective,
    pretrain_wav2vec2,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, steps  # noqa: E402

OUT = out_dir("speech")
TOTAL_STEPS = steps(600)
# Half of the budget pretrains; each of the two fine-tunings (from the
# pretrained encoder, from random init) gets a quarter.
EPOCHS = min(max(1, TOTAL_STEPS // 2), 10)
STEPS_PER_EPOCH = max(1, TOTAL_STEPS // 2 // EPOCHS)
PRETRAIN_STEPS = EPOCHS * STEPS_PER_EPOCH
FINETUNE_STEPS = max(1, PRETRAIN_STEPS // 2 // STEPS_PER_EPOCH) * STEPS_PER_EPOCH
print(f"backend: {keras.backend.backend()}, {PRETRAIN_STEPS} pretraining steps, "
      f"{FINETUNE_STEPS} fine-tuning steps per initialisation")

# %% [markdown]
# ## The spoken corpus
#
# `load_spoken_corpus` synthesises the corpus on the first call and
# caches it (`$KERAS_SSL_CACHE/speech` or `~/.cache/keras_ssl/speech`). The
# durations are arguments: another size is another cache entry, made anew. The
# tiny test run (`KERAS_SSL_TUTORIAL_STEPS` < 20) asks for well under a minute of
# audio.

# %%
if TOTAL_STEPS < 20:
    minutes = dict(pretrain_minutes=0.3, labelled_minutes=0.2, test_minutes=0.1)
else:
    minutes = dict(pretrain_minutes=60.0, labelled_minutes=10.0, test_minutes=5.0)
corpus = load_spoken_corpus(**minutes)
for name in ("pretrain", "labelled", "test"):
    print(f"{name:9}", getattr(corpus, name))
print("a test utterance says:", repr(corpus.test.transcripts[0]))

# %% [markdown]
# ## Pretraining
#
# `keras_ssl.speech.SpeechConfig` holds the small model: 7 convolutions of 64
# channels, 4 Transformer blocks of width 96, G = 2 codebooks of V = 64 entries,
# batches of 8 utterances padded per 0.5 s length bucket, AdamW with warmup and
# cosine decay, and BASE's feature normalisation (a per-channel group norm after
# the first convolution, over each utterance's real frames).
#
# From random initialisation the paper's objective does not leave chance on this
# corpus: the randomly initialised convolutions turn the waveform into frames
# that follow its phase, so nothing in the context predicts a hidden frame (the
# docs/results/speech.md measures it). This run therefore opens with a curriculum: the first
# `curriculum_steps` train an easier task on the same backbone (continuous
# targets, the projected latents instead of quantized ones, and spans of 3 frames
# instead of 10: the library's small default objective), after which the paper's
# objective (`paper_objective`: quantized targets, spans of 10, Gumbel noise)
# learns. Half of this tutorial's pretraining budget goes to each stage.

# %%
config = paper_objective(SpeechConfig(
    curriculum_steps=PRETRAIN_STEPS // 2,
    steps=PRETRAIN_STEPS - PRETRAIN_STEPS // 2, steps_per_epoch=STEPS_PER_EPOCH,
    finetune_steps=FINETUNE_STEPS,
))
pretraining = pretrain_wav2vec2(corpus, config, verbose=2)
wav2vec2 = pretraining.model
print(f"pretrained in {pretraining.seconds:.0f} s; held-out: " + ", ".join(
    f"{k} {float(v):.3f}" for k, v in pretraining.scores.items()
    if k in ("contrastive_loss", "accuracy", "code_perplexity")))
print(f"chance contrastive loss: ln(K + 1) = ln {config.num_negatives + 1} = "
      f"{np.log(config.num_negatives + 1):.3f}")

# %% [markdown]
# ## What the model is asked to predict
#
# The waveform of a held-out utterance, its log-spectrogram, and (shaded) the
# frames the span mask hides in one forward pass. The model sees the
# Transformer input with these frames replaced by a learned mask embedding, and
# must pick out each one's quantized latent among 100 distractors.

# %%
audio = np.asarray(corpus.test.audio[0], "float32")
outputs = wav2vec2(audio[None], training=False)
mask = keras.ops.convert_to_numpy(outputs["mask"])[0].astype(bool)
stride = wav2vec2.encoder.frame_stride / corpus.test.sample_rate  # seconds per frame
seconds = np.arange(len(audio)) / corpus.test.sample_rate
print(f"{mask.sum()} of {mask.size} frames masked ({mask.mean():.0%})")

figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
top.plot(seconds, audio, linewidth=0.4)
top.set_ylabel("amplitude")
top.set_title(f"\"{corpus.test.transcripts[0][:90]}\" ({corpus.test.voices[0]})",
              fontsize=9)
bottom.specgram(audio + 1e-6, NFFT=400, Fs=corpus.test.sample_rate, noverlap=240,
                cmap="magma")
bottom.set_ylabel("frequency (Hz)")
bottom.set_xlabel("time (s)")
for axis in (top, bottom):
    for t in np.flatnonzero(mask):
        axis.axvspan(t * stride, (t + 1) * stride, color="cyan", alpha=0.25, lw=0)
bottom.set_xlim(0, seconds[-1])
bottom.text(0.01, 0.9, f"shaded: masked frames ({mask.mean():.0%})", color="white",
            transform=bottom.transAxes, fontsize=9,
            bbox=dict(facecolor="black", alpha=0.6, linewidth=0))
figure.tight_layout()
figure.savefig(os.path.join(OUT, "masked_input.png"), dpi=90)
plt.close(figure)

# %% [markdown]
# ## Fine-tuning with CTC, from the pretrained encoder and from random init
#
# `compare_with_random_init` fine-tunes with `Wav2Vec2CTC` a copy of the
# pretrained encoder and a randomly initialised one of the same architecture,
# on the same labelled minutes for the same number of steps (the Transformer is frozen
# for the first steps, and SpecAugment-style masks regularise, as in the paper),
# then decodes the test split greedily and scores the character error rate.

# %%
finetuned = compare_with_random_init(corpus, wav2vec2.encoder, config, verbose=2)
print(f"\n{'init':12} {'CER':>6} {'WER':>6}")
for name, result in finetuned.items():
    print(f"{name:12} {result.scores['cer']:6.3f} {result.scores['wer']:6.3f}")
print("(at this budget neither is expected to recognise speech yet: "
      "see docs/results/speech.md)")
for name, result in finetuned.items():
    print(f"\n{name}:")
    for truth, hypothesis in result.scores["examples"]:
        print(f"  truth: {truth}\n  heard: {hypothesis!r}")

# %% [markdown]
# ## The curves
#
# The contrastive loss starts near chance, ln 101 ≈ 4.6. The diversity loss is
# low when all codebook entries are used evenly; the code perplexity counts how
# many of the G × V = 128 codes are in use (a collapse shows as a drop to a few).

# %%
history = pretraining.history
figure, axes = plt.subplots(1, 4, figsize=(15, 3.4))
x = np.arange(1, len(history["loss"]) + 1) * STEPS_PER_EPOCH
for axis, key, label in zip(
        axes[:3], ("contrastive_loss", "diversity_loss", "code_perplexity"),
        ("contrastive loss", "diversity loss", "code perplexity (of 128)")):
    axis.plot(x, history[key], marker="o")
    axis.set_title(label)
    axis.set_xlabel("pretraining step (after the curriculum)")
axes[0].axhline(np.log(config.num_negatives + 1), color="gray", linestyle=":",
                label="chance")
axes[0].legend()
for name, result in finetuned.items():
    losses = result.history["loss"]
    axes[3].plot(np.arange(1, len(losses) + 1) * min(FINETUNE_STEPS, STEPS_PER_EPOCH),
                 losses, marker="o", label=f"{name} (CER {result.scores['cer']:.2f})")
axes[3].set_title("CTC loss (fine-tuning)")
axes[3].set_xlabel("fine-tuning step")
axes[3].legend()
figure.tight_layout()
figure.savefig(os.path.join(OUT, "curves.png"), dpi=90)
plt.close(figure)
print("pictures in", OUT)

# %% [markdown]
# ## Where to go next
#
# - `keras-ssl pretrain wav2vec2` then `keras-ssl finetune ctc` run the library's
#   small default at its full budget (`--preset paper_objective --curriculum-steps
#   1500`: this tutorial's two stages); `benchmarks/speech_quality.py` measures it.
# - Your own audio: `keras_ssl.data.load_audio_folder(PATH)` (wav files with
#   transcripts), then `keras_ssl.data.speech_dataset`.
# - `keras-ssl presets wav2vec2` shows the paper's BASE sizes (`--preset paper`).
