# %% [markdown]
# # Language pretraining: BERT, RoBERTa, GPT and T5 on one small corpus
#
# Four ways to learn from raw text without a single label, trained side by side
# on the same corpus, at the same size and the same compute:
#
# | method | objective | tokenizer | keras-hub backbone |
# |---|---|---|---|
# | BERT | masked tokens (15%, 80/10/10) + next-sentence prediction | WordPiece | `BertBackbone` |
# | RoBERTa | masked tokens only, dynamic masks, FULL-SENTENCES rows | byte-level BPE | `RobertaBackbone` |
# | GPT | the next token, left to right | byte-level BPE | `GPT2Backbone` |
# | T5 | span corruption: drop 15% in spans of ~3, write them back | SentencePiece | `T5Backbone` |
#
# Everything runs on the embedded corpus, CPython's language reference (real
# English prose, no download), with tokenizers trained on it here, offline.
# At the end a linear probe on the frozen features of each backbone classifies
# held-out paragraphs by the document they come from, against the same
# architecture at random initialisation: that is what pretraining buys.
#
# The default run is sized for a CPU. Its budget is tiny next to the papers' (BERT-Base: 1 M steps of 256 × 512 tokens),
# so read the scores as a demonstration of the pipeline, not of the papers'
# numbers; `keras-ssl pretrain bert|roberta|gpt|t5` and
# `benchmarks/language_quality.py` run the measured 2,500-step recipes.

# %% [markdown]
# ## Setup
#
# Keras 3 runs the same code on three backends. **The line below is the only one
# to change** to train under JAX or TensorFlow instead of PyTorch.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # or "jax", "tensorflow": the only line to change

import dataclasses
import sys
import textwrap
import time

import matplotlib

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_ssl.datasets import load_python_docs  # noqa: E402
from keras_ssl.language import (  # noqa: E402
    DOWNSTREAM_TEST_FRACTION,
    LanguageConfig,
    build_language_model,
    downstream_scores,
    language_dataset,
    make_language_optimizer,
    objective_scores,
    train_tokenizer,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, split_steps, steps  # noqa: E402

OUT = out_dir("language")
TOTAL_STEPS = steps(320)  # shared by the four methods
STEPS = max(1, TOTAL_STEPS // 4)  # optimizer steps per method
EPOCHS, STEPS_PER_EPOCH = split_steps(STEPS, 10)  # 10 points per loss curve
STEPS = EPOCHS * STEPS_PER_EPOCH  # exactly what `fit` will run
print(f"backend: {keras.backend.backend()}, {STEPS} optimizer steps per method")

# %% [markdown]
# ## The corpus
#
# `load_python_docs` returns the language reference as documents of paragraphs,
# with a quarter of each document's paragraphs held out. Pretraining sees only the
# training paragraphs; the held-out ones score the objectives and are the test
# set of the downstream probe.

# %%
corpus = load_python_docs(test_fraction=DOWNSTREAM_TEST_FRACTION)
# A tiny test run (KERAS_SSL_TUTORIAL_STEPS < 20) keeps a few paragraphs per
# document only, so that tokenizers and scores take seconds.
QUICK = TOTAL_STEPS < 20
if QUICK:
    corpus = dataclasses.replace(
        corpus, train_paragraphs=[p[:5] for p in corpus.train_paragraphs],
        test_paragraphs=[p[:2] for p in corpus.test_paragraphs])
print(f"{len(corpus.documents)} documents, {corpus.num_words:,} words")
print(textwrap.fill(corpus.train_paragraphs[0][1][:300], 88), "...")

# %% [markdown]
# One small configuration for every method (`keras_ssl.language.LanguageConfig`):
# 2 Transformer layers of width 64, a 1,000-entry vocabulary, rows of 64 tokens,
# batches of 16, AdamW with warmup and cosine decay. (The library's recipe uses
# 128-token rows, batches of 32 and a 2,000-entry vocabulary; smaller here so
# that four models train within a short CPU run.)


# %%
def config_for(method):
    return LanguageConfig(
        method=method, vocabulary_size=400 if QUICK else 1000, sequence_length=64,
        batch_size=16,
        steps=STEPS, steps_per_epoch=STEPS_PER_EPOCH, learning_rate=2e-3,
        downstream_classes=4 if QUICK else 8,
    )


def tokens_of(tokenizer, ids):
    """Token strings of `ids`, special tokens included."""
    return [tokenizer.id_to_token(int(i)) for i in ids]


def readable(pieces):
    """Join WordPiece (`##`), byte-level BPE (`Ġ` = space) or SentencePiece
    (`▁` = space) pieces back into text, special tokens kept visible."""
    if any(p.startswith("##") for p in pieces) or "[CLS]" in pieces:
        return " ".join(pieces).replace(" ##", "")
    text = "".join(pieces).replace("Ġ", " ").replace("Ċ", " ").replace("▁", " ")
    return text.strip()


results = {}  # method -> what we plot and print at the end
examples = {}  # method -> text shown in the figure


def pretrain(method):
    """Tokenizer, model, pipeline and `fit`, with the library's recipe pieces."""
    config = config_for(method)
    keras.utils.set_random_seed(config.seed)
    tokenizer = train_tokenizer(config, corpus.documents)
    model = build_language_model(config, tokenizer)
    dataset = language_dataset(config, tokenizer, corpus.documents)
    model.compile(optimizer=make_language_optimizer(config))
    start = time.perf_counter()
    history = model.fit(dataset, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                        verbose=2)
    seconds = time.perf_counter() - start
    scores = objective_scores(model, config, tokenizer, corpus)
    results[method] = dict(model=model, tokenizer=tokenizer, config=config,
                           history=history.history, scores=scores, seconds=seconds)
    return model, tokenizer, dataset


# %% [markdown]
# ## BERT: masked language model + next-sentence prediction
#
# BERT (Devlin et al., 2019) hides 15% of the WordPiece tokens and asks a
# bidirectional Transformer to recover them from both sides. Of the chosen
# tokens 80% become `[MASK]`, 10% a random token and 10% stay as they are, so the
# model cannot assume that only `[MASK]` positions matter. Each input is a pair
# `[CLS] A [SEP] B [SEP]` where B follows A half of the time and is a random
# sentence otherwise: the `[CLS]` feature learns to tell them apart
# (next-sentence prediction, NSP). BERT-Base reached 84.6 on MNLI and 88.5 F1
# on SQuAD v1.1 after fine-tuning, well above every model before it.
#
# Here is one training example as the model sees it:

# %%
bert, bert_tokenizer, bert_data = pretrain("bert")
batch = next(iter(bert_data))
row = batch["token_ids"][0].numpy()[batch["padding_mask"][0].numpy().astype(bool)]
weights = batch["mask_weights"][0].numpy() > 0
positions = batch["mask_positions"][0].numpy()[weights]
originals = tokens_of(bert_tokenizer, batch["mask_ids"][0].numpy()[weights])
bert_input = readable(tokens_of(bert_tokenizer, row))
bert_targets = ", ".join(f"{p}:{t}" for p, t in zip(positions, originals))
is_next = int(batch["next_sentence_labels"][0])
examples["BERT masked input (NSP label: %s)" % ("IsNext" if is_next else "NotNext")] = (
    bert_input + "\n→ predict at position:token  " + bert_targets)
print("input  :", textwrap.fill(bert_input, 100, subsequent_indent="         "))
print("targets:", bert_targets)
print("NSP label:", "IsNext" if is_next else "NotNext")

# %% [markdown]
# ## RoBERTa: the same model, a better recipe
#
# RoBERTa (Liu et al., 2019) keeps BERT's masked LM and changes the training
# around it: no NSP loss, rows packed with FULL-SENTENCES that run across
# document boundaries, a new (*dynamic*) mask every time a row is seen, a
# byte-level BPE vocabulary, bigger batches and longer training. With these
# changes the same architecture reached 90.2 on MNLI and 94.6 F1 on SQuAD v1.1.
# In keras-ssl it is `MaskedLanguageModel(..., next_sentence_prediction=False)`
# fed by `masked_lm_dataset(..., packing="full_sentences")`.

# %%
roberta, roberta_tokenizer, roberta_data = pretrain("roberta")
batch = next(iter(roberta_data))
row = batch["token_ids"][0].numpy()[batch["padding_mask"][0].numpy().astype(bool)]
examples["RoBERTa masked input (no sentence pair, <mask> dynamic)"] = str(
    roberta_tokenizer.detokenize(row.tolist()))
print(textwrap.fill(examples["RoBERTa masked input (no sentence pair, <mask> dynamic)"], 100))

# %% [markdown]
# ## GPT: predict the next token
#
# GPT (Radford et al., 2018, 2019) is a causal Transformer trained to maximise the
# likelihood of each token given the ones before it. The objective needs no
# masking scheme and uses every position as a target, and the trained model
# *generates* text: GPT-2 wrote coherent paragraphs and set the state of the
# art on 7 of 8 language-modelling benchmarks zero-shot. Documents are packed
# into rows separated by `<|endoftext|>`. We score the held-out perplexity against
# a smoothed unigram model (what a model that ignores the context can reach) and
# sample continuations with top-p (nucleus) sampling.

# %%
gpt, gpt_tokenizer, _ = pretrain("gpt")
prompts = ["The if statement", "A class is", "An exception"]
samples = gpt.generate(prompts, max_length=20 if QUICK else 48, sampler="top_p", p=0.9)
for sample in samples:
    print("GPT:", sample.replace("\n", " "))
examples["GPT generated text (top-p 0.9)"] = "\n".join(
    "• " + s.replace("\n", " ") for s in samples)

# %% [markdown]
# ## T5: span corruption, text to text
#
# T5 (Raffel et al., 2020) casts every task as "text in, text out" with an
# encoder-decoder. Its pretraining drops 15% of the tokens in spans of mean length
# 3, replaces each span by a sentinel `<extra_id_k>` in the input, and trains the
# decoder to write the dropped spans after their sentinels. The targets are short
# (about a quarter of the input), which makes it cheaper than predicting the whole
# sequence, and in the paper's comparison it matched or beat the other objectives.
# The same model is then fine-tuned on "prefix: input" → "target" strings
# (`keras_ssl.data.text_to_text_dataset`).

# %%
t5, t5_tokenizer, t5_data = pretrain("t5")
x, y, sample_weight = next(iter(t5_data))
encoder_ids = x["encoder_token_ids"][0].numpy()[x["encoder_padding_mask"][0].numpy().astype(bool)]
target_ids = y[0].numpy()[sample_weight[0].numpy() > 0]
t5_input = readable(tokens_of(t5_tokenizer, encoder_ids))
t5_target = readable(tokens_of(t5_tokenizer, target_ids))
examples["T5 span-corrupted input → target"] = t5_input + "\n→ " + t5_target
print("input :", textwrap.fill(t5_input, 100, subsequent_indent="        "))
print("target:", t5_target)

# %% [markdown]
# ## The examples and the loss curves
#
# The losses are not comparable across methods in absolute terms (different
# vocabularies and targets), but each should fall well below `ln(1000) ≈ 6.9`,
# the loss of a uniform guess over the vocabulary.

# %%
figure = plt.figure(figsize=(11, 6))
for i, (title, text) in enumerate(examples.items()):
    axis = figure.add_subplot(len(examples), 1, i + 1)
    axis.axis("off")
    wrapped = "\n".join(textwrap.fill(line, 110) for line in text.split("\n"))
    lines = wrapped.split("\n")
    if len(lines) > 7:
        wrapped = "\n".join(lines[:7]) + " …"
    axis.set_title(title, loc="left", fontsize=10, fontweight="bold")
    axis.text(0, 1, wrapped, va="top", ha="left", family="monospace", fontsize=8,
              transform=axis.transAxes)
figure.tight_layout()
figure.savefig(os.path.join(OUT, "examples.png"), dpi=90)
plt.close(figure)

figure, axis = plt.subplots(figsize=(6, 4))
for method, result in results.items():
    losses = result["history"]["loss"]
    axis.plot(np.arange(1, len(losses) + 1) * STEPS_PER_EPOCH, losses, marker="o",
              label=method)
axis.axhline(np.log(1000), color="gray", linestyle=":", label="uniform guess")
axis.set_xlabel("optimizer step")
axis.set_ylabel("training loss")
axis.set_title("Pretraining loss of the four objectives")
axis.legend()
figure.tight_layout()
figure.savefig(os.path.join(OUT, "losses.png"), dpi=90)
plt.close(figure)

# %% [markdown]
# ## Does pretraining help? A probe on held-out paragraphs
#
# Each held-out paragraph of the language reference is labelled with the document
# it comes from (the 8 largest documents). A logistic regression on the frozen,
# mean-pooled token features of each pretrained backbone is compared with the
# same probe on the same architecture at random initialisation
# (`keras_ssl.evaluation.pretraining_gain`). At the library's measured budget
# (2,500 steps, `benchmarks/language_quality.py`) GPT gains +0.23 and RoBERTa
# +0.12 over random init; BERT and T5 need three times the steps (+0.13 and
# +0.06 to +0.08 at 7,500); at this tutorial's budget expect small or no gains.

# %%
rows = []
for method, result in results.items():
    gain = downstream_scores(result["model"], result["tokenizer"], result["config"],
                             topics=corpus)
    rows.append((method, gain["pretrained"]["probe"], gain["random_init"]["probe"]))
    result["downstream"] = gain

print(f"\n{'method':8} {'held-out objective':44} {'probe':>6} {'random':>7} {'gain':>7} {'train s':>8}")
for method, pretrained, random in rows:
    scores = results[method]["scores"]
    if method == "gpt":
        objective = (f"perplexity {scores['test_perplexity']:.1f} "
                     f"(unigram {scores['unigram_perplexity']:.1f})")
    else:
        objective = ", ".join(f"{k[5:]} {v:.3f}" for k, v in scores.items()
                              if "accuracy" in k)
    print(f"{method:8} {objective:44} {pretrained:6.3f} {random:7.3f} "
          f"{pretrained - random:+7.3f} {results[method]['seconds']:8.1f}")

figure, axis = plt.subplots(figsize=(6, 3.5))
where = np.arange(len(rows))
axis.bar(where - 0.2, [r[1] for r in rows], 0.4, label="pretrained")
axis.bar(where + 0.2, [r[2] for r in rows], 0.4, label="random init")
axis.set_xticks(where, [r[0] for r in rows])
axis.set_ylabel("probe accuracy (8 documents)")
axis.set_title(f"Downstream probe after {STEPS} steps per method")
axis.legend()
figure.tight_layout()
figure.savefig(os.path.join(OUT, "probe.png"), dpi=90)
plt.close(figure)
print("pictures in", OUT)

# %% [markdown]
# ## Where to go next
#
# - `keras_ssl.language.pretrain_language(config=LanguageConfig("gpt"))` runs a
#   method end to end at the library's measured size.
# - `bert.backbone.save_to_preset(...)`, `gpt.to_keras_hub()`: the trained
#   backbones load in keras-hub like any preset.
# - Your own text: `keras_ssl.datasets.load_text_files(PATH)`.
