# %% [markdown]
# # Masked image modelling: MAE and BEiT
#
# **What you will do:** hide most of each image and train a small Vision
# Transformer (ViT) to fill in what is missing, first by predicting the hidden
# *pixels* (MAE), then by predicting discrete *visual tokens* of the hidden patches
# (BEiT). Then look at the reconstructions, and fine-tune both encoders to see what
# the pretraining bought over the same ViT at random initialisation.
#
# The data is keras-ssl's embedded *cluttered digits* (16×16 colour images rendered
# from scikit-learn's bundled digit scans; nothing is downloaded). The default
# budget is sized for a CPU; JAX and TensorFlow compile the training step, PyTorch
# runs it eagerly and is the slowest of the three here.
#
# **Choose the backend.** The same code trains under PyTorch, JAX or TensorFlow;
# the next cell is the only line to change.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # or "jax", "tensorflow": the only line to change

# %%
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow (tf.data)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402

import keras_ssl  # noqa: E402
from keras_ssl.data import load_image_data, mae_augmentation, multi_view_dataset  # noqa: E402
from keras_ssl.evaluation import evaluate_knn, fine_tune_accuracy, plot_image_rows  # noqa: E402
from keras_ssl.models import MAE, BEiT  # noqa: E402
from keras_ssl.models.vq_tokenizer import train_vq_tokenizer  # noqa: E402
from keras_ssl.optimizers import warmup_cosine_schedule  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, split_steps, steps  # noqa: E402

OUT = out_dir("masked_image_modelling")
keras.utils.set_random_seed(0)
print("Keras", keras.__version__, "backend:", keras.backend.backend())

data = load_image_data("digits")
print(data)

# %% [markdown]
# ## The budget, the encoder and the views
#
# Both methods train the same ViT: 2×2-pixel patches (an 8×8 grid of 64 patches),
# 4 Transformer blocks of width 64 with 4 heads. Masked image models need no
# colour distortion: MAE's paper finds that random crops and flips alone work
# best, which is `keras_ssl.data.mae_augmentation`. One view per image
# (`num_views=1`).

# %%
TOTAL_STEPS = steps(140)
EPOCHS, STEPS_PER_EPOCH = split_steps(TOTAL_STEPS, 20)
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH  # exactly what `fit` runs
BATCH = 128
# Fine-tuning for the evaluation: a few epochs over the 1,346 labelled images
# (the tests' tiny budget fine-tunes on a few batches of them).
FINE_TUNE_EPOCHS = max(1, min(2, TOTAL_STEPS // 60))
FINE_TUNE_IMAGES = min(len(data.x_train), 64 * TOTAL_STEPS)
print(f"{TOTAL_STEPS} steps per method = {EPOCHS} epochs x {STEPS_PER_EPOCH} steps")


def new_vit():
    return keras_ssl.ViTBackbone(image_shape=data.image_shape, patch_size=2,
                                 hidden_dim=64, num_layers=4, num_heads=4)


def adamw(learning_rate=1e-3, weight_decay=0.05, beta_2=0.95):
    """MAE's optimizer: AdamW (β2 = 0.95), warmup over 10% of the steps, cosine."""
    schedule = warmup_cosine_schedule(learning_rate, TOTAL_STEPS,
                                      max(0, TOTAL_STEPS // 10 - 1))
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay, beta_2=beta_2)


crops = multi_view_dataset(data.x_unlabeled, mae_augmentation(16),
                           num_views=1, batch_size=BATCH, seed=0, repeat=True)

# %% [markdown]
# ## MAE: masked autoencoders
#
# MAE (He et al., 2021) cuts the image into patches, **removes 75% of them at
# random**, and runs the encoder on the visible 25% only: no mask tokens enter the
# encoder, which makes pretraining 3× or more faster. A small, separate decoder
# receives the encoded visible patches plus a learned mask token at every hidden
# position and regresses the hidden patches' pixels; the loss is the mean squared
# error *on the masked patches only*. The very high masking ratio is the key
# finding: with little redundancy left, the task cannot be solved by interpolating
# neighbouring pixels and requires a holistic understanding of the image. MAE's
# ViT-H reached 87.8% on ImageNet-1k after fine-tuning, the best result then among
# methods using ImageNet-1k data only. After pretraining the decoder is thrown away
# and the encoder is fine-tuned. Our decoder is small (64 wide, 4 blocks) and
# regresses plain pixels: the digits' 2-px patches hold too few values for the
# paper's per-patch normalised targets to help.

# %%
keras.utils.set_random_seed(0)
random_vit = new_vit()  # kept untouched: the random-init baseline

keras.utils.set_random_seed(0)
mae = MAE(new_vit(), mask_ratio=0.75, decoder_dim=64, decoder_depth=4,
          decoder_num_heads=4, norm_pix_loss=False, seed=0)
mae.compile(optimizer=adamw())
mae_history = mae.fit(crops, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                      shuffle=False, verbose=2)

# %% [markdown]
# What the pretext task looks like on held-out images: each column shows an image
# with 75% of its patches hidden (grey), MAE's reconstruction (the visible patches
# pasted back in), and the original.

# %%
images = np.asarray(data.x_test[:8], "float32")
masked, reconstructed = mae.reconstruct(images)
plot_image_rows(
    {"masked (75%)": masked, "MAE output": reconstructed, "original": images},
    os.path.join(OUT, "mae_reconstructions.png"),
    title=f"MAE after {TOTAL_STEPS} steps: held-out images",
)

# %% [markdown]
# ## BEiT: BERT pre-training of image transformers
#
# BEiT (Bao et al., 2021) carries BERT's masked language modelling over to images
# in two stages. **Stage 1** trains an image *tokenizer*, a discrete VAE that maps
# every patch to one of a few hundred "visual words" (keras-ssl's `VQTokenizer`, a
# VQ-VAE, plays the part of DALL·E's dVAE). **Stage 2** masks about 40% of the
# patches in *blocks* (so that the network cannot just copy a neighbour), replaces
# them by a learned `[MASK]` embedding, runs the whole sequence through the ViT, and
# trains it with cross-entropy to predict the tokenizer's code at each masked
# position. Predicting a code instead of raw pixels spares the model from modelling
# high-frequency detail. BEiT-Base reached 83.2% on ImageNet after fine-tuning
# (against 81.8% for DeiT-Base trained from scratch).
#
# `train_vq_tokenizer` runs stage 1 on the unlabelled images (6 epochs of the
# tokenizer; the tests' tiny budget trains it on a few batches), then `BEiT` is the
# stage-2 model with the frozen tokenizer inside.

# %%
TOKENIZER_EPOCHS = max(1, min(6, TOTAL_STEPS // 50))
tokenizer_images = data.x_unlabeled[: max(512, min(len(data.x_unlabeled), 128 * TOTAL_STEPS))]
keras.utils.set_random_seed(0)
vit = new_vit()
tokenizer = train_vq_tokenizer(tokenizer_images, vit.patch_size, epochs=TOKENIZER_EPOCHS,
                               seed=0)
beit = BEiT(vit, tokenizer, mask_ratio=0.4, seed=0)
print(f"tokenizer: {beit.vocab_size} codes, trained {TOKENIZER_EPOCHS} epoch(s) on "
      f"{len(tokenizer_images)} images")
beit.compile(optimizer=adamw(beta_2=0.999))
beit_history = beit.fit(crops, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                        shuffle=False, verbose=2)

# %% [markdown]
# Three pictures of BEiT's task: the blockwise-masked input, the image the
# tokenizer's codes decode to (the *target*: what a perfect BEiT would predict),
# and the decoding of the codes with BEiT's predictions at the masked patches.
# The tokenizer's own reconstructions show how much of the image its codes keep.

# %%
masked, target, predicted = beit.visualize(images)
plot_image_rows(
    {"masked (40%)": masked, "tokenizer codes": target, "BEiT's codes": predicted,
     "original": images},
    os.path.join(OUT, "beit_tokens.png"),
    title=f"BEiT after {TOTAL_STEPS} steps: decoded visual tokens",
)
plot_image_rows(
    {"original": images, "tokenizer": beit.tokenizer.reconstruct(images)},
    os.path.join(OUT, "beit_tokenizer.png"),
    title=f"Stage 1: the VQ tokenizer ({beit.vocab_size} codes), one code per patch",
)

# %% [markdown]
# ## Loss curves
#
# MAE's loss is a pixel MSE on the masked patches; BEiT's is a cross-entropy over
# the tokenizer's codes (chance level log(vocabulary size)), and BEiT also logs the
# accuracy of its code predictions at the masked positions.

# %%
figure, axes = plt.subplots(1, 3, figsize=(11, 3.2))
x = np.arange(1, EPOCHS + 1) * STEPS_PER_EPOCH
axes[0].plot(x, mae_history.history["loss"], marker="o", ms=3)
axes[0].set_title("MAE: masked-pixel MSE")
axes[1].plot(x, beit_history.history["loss"], marker="o", ms=3, color="C1")
axes[1].set_title("BEiT: masked-token cross-entropy")
axes[2].plot(x, beit_history.history["masked_accuracy"], marker="o", ms=3, color="C1")
axes[2].set_title("BEiT: masked-token accuracy")
for axis in axes:
    axis.set_xlabel("optimizer step")
    axis.grid(alpha=0.3)
figure.tight_layout()
figure.savefig(os.path.join(OUT, "loss_curves.png"), dpi=90)
plt.close(figure)

# %% [markdown]
# ## Does pretraining matter? Fine-tuning accuracy
#
# Masked image models are judged by **fine-tuning**, not by frozen features: their
# features are less linearly separable than contrastive ones, but they are an
# excellent starting point. `fine_tune_accuracy` trains a copy of the encoder with
# a linear head on the labelled training split (AdamW, warmup + cosine, label
# smoothing: MAE's recipe without its extras) and scores the test split. The same
# call on the untrained ViT is the baseline. k-NN accuracy of the frozen features
# is printed as well. (With the tests' tiny step budget these numbers mean nothing;
# a short fine-tuning of a few epochs keeps the notebook fast.)

# %%
scores = {}
for name, encoder in [("random init", random_vit), ("MAE", mae.encoder),
                      ("BEiT", beit.encoder)]:
    scores[name] = (
        fine_tune_accuracy(encoder, data.x_train[:FINE_TUNE_IMAGES],
                           data.y_train[:FINE_TUNE_IMAGES], data.x_test, data.y_test,
                           epochs=FINE_TUNE_EPOCHS, seed=0),
        evaluate_knn(encoder, data.x_train, data.y_train, data.x_test, data.y_test),
    )
    print(f"{name:>11}: fine-tuned ({FINE_TUNE_EPOCHS} epochs on {FINE_TUNE_IMAGES} "
          f"images) {scores[name][0]:.3f}, "
          f"frozen k-NN {scores[name][1]:.3f}")
for name in ("MAE", "BEiT"):
    print(f"pretraining gain in fine-tuning accuracy ({name} - random init): "
          f"{scores[name][0] - scores['random init'][0]:+.3f}")

# %%
print("pictures written to", OUT, ":", sorted(os.listdir(OUT)))
