# %% [markdown]
# # CLIP: learning from images and their captions, then zero-shot classification
#
# CLIP (Radford et al., 2021) trains an image encoder and a text encoder together
# so that an image and its own caption land close in a shared embedding space,
# and far from the other captions of the batch. For a batch of N pairs it
# computes the N × N matrix of cosine similarities, scaled by a learned
# temperature, and applies a cross-entropy in both directions: each image must
# pick its caption among the N captions, and each caption its image. The labels
# of that classification are free: they are the pairing itself.
#
# Once trained, the text encoder turns *class names* into classifiers: embed
# "a photo of a {name}." for every class and give each image the class whose
# prompt is most similar. No labelled example is needed. Trained on 400 M
# web pairs, CLIP's ViT-L/14 reached 76.2% zero-shot top-1 on ImageNet, matching
# a ResNet-50 trained on ImageNet's 1.28 M labels.
#
# Here: the embedded *captioned digits* (scikit-learn's digit scans rendered in
# colour, at a size and position, with captions such as "a small red seven in
# the top left"), nothing downloaded. We train CLIP, classify held-out digits
# zero-shot from the ten names "zero" ... "nine", retrieve captions from images
# and images from captions, and look at the similarity matrix. The default budget
# is sized for a CPU.

# %% [markdown]
# ## Setup
#
# **The line below is the only one to change** to run under JAX or TensorFlow.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # or "jax", "tensorflow": the only line to change

import sys
import time

import matplotlib

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_ssl.data import load_image_text_data  # noqa: E402
from keras_ssl.evaluation import ZeroShotClassifier, retrieval_recall  # noqa: E402
from keras_ssl.image_text import (  # noqa: E402
    ClipConfig,
    build_clip,
    evaluate_clip,
    image_text_dataset,
    make_clip_optimizer,
    plot_top_captions,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, steps  # noqa: E402

OUT = out_dir("image_text")
STEPS = steps(400)  # optimizer steps
STEPS_PER_EPOCH = min(STEPS, 40)
EPOCHS = max(1, STEPS // STEPS_PER_EPOCH)
STEPS = EPOCHS * STEPS_PER_EPOCH  # exactly what `fit` runs
print(f"backend: {keras.backend.backend()}, {STEPS} optimizer steps")

# %% [markdown]
# ## The data
#
# Four captioned renders of each training digit (5,384 pairs), one render of each
# held-out digit scan (451 pairs) with its label, for scoring. We keep the
# images at 16 × 16 pixels so that training is quick on a CPU.

# %%
data = load_image_text_data("digits", image_size=16)
print(f"{len(data.x_train)} training pairs, {len(data.x_test)} held-out pairs, "
      f"images {data.image_shape}")
for caption in data.captions_train[:4]:
    print("  caption:", caption)

# %% [markdown]
# ## The model
#
# `keras_ssl.image_text.build_clip` puts together what CLIP needs: a WordPiece
# tokenizer trained on the training captions (saved with the model), a small
# CIFAR-style ResNet for the images, keras-hub's causal `CLIPTextEncoder` (2
# layers of width 64; the feature is the end-of-text token's), linear
# projections into a shared 64-d space and the learnable temperature, stored as
# `t = log(1/0.07)` and clipped at exp(t) = 100 as in the paper.
# `keras_ssl.models.CLIP` takes any image and text encoders; the paper's ViT-B/32
# recipe is the `paper` preset (`keras-ssl presets clip`).

# %%
config = ClipConfig(epochs=EPOCHS, batch_size=128, warmup_epochs=1 if EPOCHS > 1 else 0)
keras.utils.set_random_seed(config.seed)
clip = build_clip(config, list(data.captions_train), data.image_shape)
token_ids = clip.tokenize(list(data.captions_train), truncate=True)
print("a caption as token ids:", token_ids[0][:12], "...")
clip({"images": data.x_train[:2], "token_ids": token_ids[:2]})  # build
untrained = evaluate_clip(clip, data, config.templates)  # the same model, before training

# %% [markdown]
# ## Training
#
# AdamW (β2 = 0.98, weight decay 0.1), warmup then cosine decay, batches of
# 128 pairs: every step is a 128-way classification in each direction.
# The logs show the loss and `logit_scale`, the learned inverse temperature.

# %%
dataset = image_text_dataset(data.x_train, token_ids, config.batch_size,
                             seed=config.seed, repeat=True)
clip.compile(optimizer=make_clip_optimizer(config, STEPS_PER_EPOCH))
start = time.perf_counter()
history = clip.fit(dataset, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, verbose=2)
print(f"trained in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# ## Zero-shot classification and retrieval
#
# `ZeroShotClassifier` embeds each class name through five prompt templates
# ("a {}.", "the digit {}.", ...) and averages them per class (the paper's
# prompt ensembling). `evaluate_clip` scores it on held-out digits no label of
# which was seen, next to chance, a linear probe trained *with* labels, and the
# retrieval Recall@k over the 451 held-out pairs. The library's measured run
# (`benchmarks/clip_quality.py`, 30 epochs at 32 × 32) reaches 0.442 zero-shot
# against chance 0.100.

# %%
scores = evaluate_clip(clip, data, config.templates)
print(f"\n{'held-out score':32} {'CLIP':>7} {'untrained':>10}")
for key in ("zero_shot_accuracy", "linear_probe_accuracy", "image_to_text_R@1",
            "image_to_text_R@5", "text_to_image_R@1", "text_to_image_R@5"):
    print(f"{key:32} {scores[key]:7.3f} {untrained[key]:10.3f}")
print(f"{'chance (zero-shot)':32} {scores['chance']:7.3f}")

# %% [markdown]
# ## What the model sees
#
# First the zero-shot predictions: held-out images with their three most likely
# class names (CLIP's softmax over the prompts) and the true one.

# %%
classifier = ZeroShotClassifier(clip, data.class_names, config.templates)
shown = np.arange(12)
top, probabilities = classifier.top_k(data.x_test[shown], k=3)
figure, axes = plt.subplots(2, 6, figsize=(12, 6))
for axis, i, classes, probs in zip(axes.flat, shown, top, probabilities):
    axis.imshow(np.clip(data.x_test[i], 0, 1))
    axis.axis("off")
    truth = data.class_names[data.y_test[i]]
    lines = [f"{data.class_names[c]} {p:.2f}" for c, p in zip(classes, probs)]
    color = "green" if data.class_names[classes[0]] == truth else "red"
    axis.set_title("\n".join(lines) + f"\n(true: {truth})", fontsize=9, color=color)
figure.suptitle(f"Zero-shot predictions on held-out digits "
                f"(accuracy {scores['zero_shot_accuracy']:.2f}, chance {scores['chance']:.2f})")
figure.tight_layout()
figure.savefig(os.path.join(OUT, "zero_shot.png"), dpi=90)
plt.close(figure)

# %% [markdown]
# Then image → text retrieval: each held-out image with the three held-out
# captions most similar to it (`keras_ssl.image_text.plot_top_captions`).

# %%
plot_top_captions(clip, data.x_test, list(data.captions_test),
                  os.path.join(OUT, "top_captions.png"), num_images=8,
                  true_captions=list(data.captions_test))

# %% [markdown]
# And the cosine-similarity matrix of 12 held-out images against their own 12
# captions. Training pushes the diagonal (the true pairs) above the rest of
# each row and column; captions that differ from the truth by one attribute
# word ("red" for "blue") light up too.

# %%
images = clip.encode_images(data.x_test[shown])
texts = clip.encode_texts([data.captions_test[i] for i in shown], truncate=True)
similarity = images @ texts.T
print("diagonal recall over these 12:", retrieval_recall(images, texts, ks=(1,)))
figure, axis = plt.subplots(figsize=(9, 7))
picture = axis.imshow(similarity, cmap="viridis")
axis.set_yticks(range(len(shown)))
axis.set_yticklabels([f"image {i}" for i in shown], fontsize=8)
axis.set_xticks(range(len(shown)))
axis.set_xticklabels([data.captions_test[i] for i in shown], rotation=60, ha="right",
                     fontsize=7)
for row in range(len(shown)):
    axis.add_patch(plt.Rectangle((row - 0.5, row - 0.5), 1, 1, fill=False,
                                 edgecolor="white", linewidth=1.5))
figure.colorbar(picture, label="cosine similarity")
axis.set_title("Image-text similarity (white: the true pairs)")
figure.tight_layout()
figure.savefig(os.path.join(OUT, "similarity.png"), dpi=90)
plt.close(figure)

figure, axis = plt.subplots(figsize=(5, 3.5))
axis.plot(np.arange(1, EPOCHS + 1) * STEPS_PER_EPOCH, history.history["loss"], marker="o")
axis.set_xlabel("optimizer step")
axis.set_ylabel("symmetric contrastive loss")
axis.axhline(np.log(config.batch_size), color="gray", linestyle=":",
             label=f"chance ln {config.batch_size}")
axis.legend()
figure.tight_layout()
figure.savefig(os.path.join(OUT, "loss.png"), dpi=90)
plt.close(figure)
print("pictures in", OUT)

# %% [markdown]
# ## Where to go next
#
# - `keras_ssl.image_text.pretrain_clip(data, ClipConfig())` runs the measured
#   recipe (30 epochs, 32 × 32) end to end; `keras-ssl pretrain clip` and
#   `keras-ssl zero-shot` do it from the command line.
# - Your own pairs: `load_image_text_data("folder:PATH")` (images with `.txt`
#   captions beside them) or `"tfds:coco_captions"` from a local `data_dir`.
# - `clip.image_encoder` is a pretrained backbone for any image task.
