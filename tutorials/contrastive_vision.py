# %% [markdown]
# # Contrastive learning of visual representations: SimCLR and MoCo
#
# **What you will do:** pretrain a small ResNet on unlabelled images with SimCLR
# and with MoCo v2, then check with a k-NN classifier that the features it learned
# are better than those of the same network at random initialisation; then train
# VICReg, one of four methods that need no negatives (SimSiam, Barlow Twins, VICReg,
# SwAV).
#
# The data is keras-ssl's embedded *cluttered digits*: 16×16 colour images
# rendered from scikit-learn's bundled digit scans, with coloured clutter in the
# background. Nothing is downloaded. The default budget (200 steps per method) is
# sized for a CPU.
#
# **Choose the backend.** keras-ssl is written in `keras.ops`, so the same code
# trains under PyTorch, JAX or TensorFlow. The next cell is the only line to change.

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
from keras_ssl.data import SimCLRAugmentation, load_image_data, multi_view_dataset  # noqa: E402
from keras_ssl.evaluation import (  # noqa: E402
    evaluate_knn,
    extract_features,
    knn_accuracy,
    plot_image_rows,
)
from keras_ssl.optimizers import warmup_cosine_schedule  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, split_steps, steps  # noqa: E402

OUT = out_dir("contrastive_vision")
keras.utils.set_random_seed(0)
print("Keras", keras.__version__, "backend:", keras.backend.backend())

# %% [markdown]
# ## The data
#
# `load_image_data("digits")` returns float32 images in [0, 1]: a large
# *unlabelled* pool for pretraining (several fresh renderings of the training
# digits) and small labelled `train` / `test` splits that we only use to *measure*
# the representation afterwards.

# %%
data = load_image_data("digits")
print(data)

# %% [markdown]
# ## Two views of every image
#
# Both methods learn by *instance discrimination*: two random augmentations of the
# same image (a "positive pair") should map to nearby embeddings, augmentations of
# different images to distant ones. What the network learns to ignore is exactly
# what the augmentations change, so they define the task. SimCLR's ablations
# (Chen et al., 2020, figure 5) found random crops plus colour distortion to be the
# crucial pair: with crops alone the network can match two views by their colour
# histogram. `SimCLRAugmentation` applies random resized crops, flips, colour
# jitter and random grayscale to whole batches inside `tf.data`; on these tiny
# images we keep the blur off. `multi_view_dataset` yields `((view_1, view_2),)`
# batches that `model.fit` consumes directly.

# %%
BATCH = 128
augment = SimCLRAugmentation(16, crop_scale=(0.2, 1.0), jitter_strength=1.0,
                             grayscale_p=0.5)
views = multi_view_dataset(data.x_unlabeled, augment, batch_size=BATCH, seed=0,
                           repeat=True)

(view_1, view_2), = next(iter(views))
plot_image_rows(
    {"view 1": keras.ops.convert_to_numpy(view_1)[:8],
     "view 2": keras.ops.convert_to_numpy(view_2)[:8]},
    os.path.join(OUT, "views.png"),
    title="Positive pairs: two augmentations of the same image, per column",
)

# %% [markdown]
# ## The training budget
#
# Every method here trains for the same number of optimizer steps. The datasets
# repeat forever, so an "epoch" is just a logging interval of `STEPS_PER_EPOCH`
# steps (the tests set `KERAS_SSL_TUTORIAL_STEPS` to a tiny number).

# %%
TOTAL_STEPS = steps(200)
EPOCHS, STEPS_PER_EPOCH = split_steps(TOTAL_STEPS, 20)
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH  # exactly what `fit` runs
print(f"{TOTAL_STEPS} steps per method = {EPOCHS} epochs x {STEPS_PER_EPOCH} steps")


def new_encoder():
    """The backbone every method trains: a CIFAR-stem ResNet, 16/32/64 filters."""
    return keras_ssl.CIFARResNetBackbone((16, 32, 64), (1, 1, 1),
                                         image_shape=data.image_shape)


def adamw(learning_rate=2e-3, weight_decay=1e-4):
    """AdamW with a linear warmup over 10% of the steps, then cosine decay."""
    schedule = warmup_cosine_schedule(learning_rate, TOTAL_STEPS,
                                      max(0, TOTAL_STEPS // 10 - 1))
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


# %% [markdown]
# ## SimCLR
#
# SimCLR (Chen, Kornblith, Norouzi & Hinton, 2020) encodes both views with the same
# encoder *f* and a small MLP projection head *g*, and trains with the **NT-Xent**
# loss: for each of the 2N projections in a batch, a softmax over cosine
# similarities divided by a temperature τ must pick out its partner among the
# other 2N − 1. The other images of the batch are the negatives, so SimCLR wants
# big batches (4096 in the paper). Under linear evaluation on ImageNet a ResNet-50
# reached 69.3% top-1, and a 4× wider ResNet-50 76.5%, matching a supervised
# ResNet-50. Two findings
# carry over to any use: the representation *before* the projection head is the
# better one (`model.encoder` is what you keep), and a temperature around 0.1–0.5
# matters a lot (0.5 suits our small batches).

# %%
keras.utils.set_random_seed(0)
random_encoder = new_encoder()  # kept untouched: the random-init baseline

keras.utils.set_random_seed(0)
simclr = keras_ssl.SimCLR(new_encoder(), projection_dim=128, temperature=0.5)
simclr.compile(optimizer=adamw())
simclr_history = simclr.fit(views, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                            shuffle=False, verbose=2)

# %% [markdown]
# ## MoCo v2
#
# MoCo (He et al., 2020) decouples the number of negatives from the batch size. The
# negatives are a **queue** of keys from earlier batches (65,536 in the paper; 4,096
# here), and the keys are encoded by a **momentum encoder**: a copy of the query
# encoder whose weights follow it as an exponential moving average,
# θ_k ← m θ_k + (1 − m) θ_q. Because the key encoder changes slowly, keys computed
# a few hundred steps ago are still comparable with today's queries. The loss is
# InfoNCE: one positive logit and K negative logits, divided by τ = 0.2. MoCo v2
# (Chen, Fan, Girshick & He, 2020) added SimCLR's MLP head and stronger
# augmentations and reached 71.1% ImageNet linear accuracy with batches of only 256.
# We use small-data settings: m = 0.99 (over a few thousand steps the paper's 0.999
# would leave the key encoder almost at its random initialisation), a 4,096-key
# queue (the digits' pool is much smaller than ImageNet, so 65,536 keys would be
# many epochs old; the batch size must divide it) and a 256-wide head with 64-d
# projections. `MoCo` also emulates the paper's shuffled batch norm, which stops
# the queries and keys from "cheating" through batch statistics.

# %%
keras.utils.set_random_seed(0)
moco = keras_ssl.MoCo(new_encoder(), projection_dim=64, projection_hidden_dims=(256,),
                      queue_size=4096, temperature=0.2, momentum=0.99)
moco.compile(optimizer=adamw())
moco_history = moco.fit(views, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                        shuffle=False, verbose=2)

# %% [markdown]
# ## Loss curves
#
# The two losses are on different scales: NT-Xent's chance level is
# log(2N − 1) ≈ 5.5 for N = 128, InfoNCE's is log(K + 1) ≈ 8.3 for K = 4096.
# SimCLR also logs `positive_similarity`, the mean cosine similarity of the two
# views' projections, which rises as the views are pulled together.

# %%
figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for axis, (name, history) in zip(
        axes, [("SimCLR (NT-Xent)", simclr_history), ("MoCo v2 (InfoNCE)", moco_history)]):
    loss = history.history["loss"]
    axis.plot(np.arange(1, len(loss) + 1) * STEPS_PER_EPOCH, loss, marker="o", ms=3)
    axis.set_title(name)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
figure.tight_layout()
figure.savefig(os.path.join(OUT, "loss_curves.png"), dpi=90)
plt.close(figure)

# %% [markdown]
# ## Does pretraining matter? k-NN accuracy
#
# The standard check of a self-supervised representation is to freeze the encoder
# and classify the labelled test images from its features: here with a weighted
# k-NN (the 20 most cosine-similar labelled training images vote, with weights
# exp(similarity / 0.07), the evaluation of Wu et al., 2018 and of DINO). The same architecture at random initialisation and the raw
# pixels are the baselines to beat. (With the tests' tiny step budget these numbers
# mean nothing. The default 200 steps per method are a short run; the CLI's SimCLR
# recipe, `keras-ssl pretrain simclr`, trains 4,200 steps at batch 128 with tau 0.2
# and reaches 0.63 against 0.15 at random init.)

# %%
scores = {
    "raw pixels": knn_accuracy(data.x_train.reshape(len(data.x_train), -1), data.y_train,
                               data.x_test.reshape(len(data.x_test), -1), data.y_test),
    "random init": evaluate_knn(random_encoder, data.x_train, data.y_train,
                                data.x_test, data.y_test),
    "SimCLR": evaluate_knn(simclr.encoder, data.x_train, data.y_train,
                           data.x_test, data.y_test),
    "MoCo v2": evaluate_knn(moco.encoder, data.x_train, data.y_train,
                            data.x_test, data.y_test),
}
for name, accuracy in scores.items():
    print(f"k-NN accuracy, {name:>11}: {accuracy:.3f}")
print(f"pretraining gain (SimCLR - random init): "
      f"{scores['SimCLR'] - scores['random init']:+.3f}")

# %% [markdown]
# ## Without negatives: VICReg, and SimSiam, Barlow Twins, SwAV
#
# SimCLR and MoCo need negatives so that the two views' projections do not all
# collapse to one point. Four methods avoid the collapse without them, and keras-ssl
# has each on the same base, taking the same views and encoder:
#
# - **SimSiam** (Chen & He, 2021): a predictor MLP maps one view's projection to the
#   other's, whose gradient is stopped. No negatives, no momentum encoder: the
#   stop-gradient alone prevents collapse.
# - **Barlow Twins** (Zbontar et al., 2021): the cross-correlation matrix of the two
#   views' embeddings, standardised over the batch, is pushed to the identity: each
#   dimension agrees across views (diagonal 1) and carries information the others do
#   not (off-diagonal 0).
# - **VICReg** (Bardes, Ponce & LeCun, 2022): three explicit terms, *invariance* (mean
#   squared distance between the views), *variance* (a hinge keeping every
#   dimension's standard deviation at 1 over the batch) and *covariance* (off-diagonal
#   covariances to 0), weighted 25 / 25 / 1.
# - **SwAV** (Caron et al., 2020): the views are assigned to learned prototypes
#   (clusters) with an equal-partition constraint solved by Sinkhorn-Knopp, and each
#   view predicts the other's assignment; it trains on multi-crop views like DINO
#   (`keras_ssl.SwAV`, and `distillation.py` for the views).
#
# Barlow Twins' and VICReg's losses are statistics of the whole batch: on many
# devices keras-ssl computes them over the global batch. Their recipes:
# `keras-ssl pretrain simsiam`, `barlow_twins`, `vicreg`, `swav`; the scores of each
# within 10 minutes on 2 CPU cores are in docs/results/vision.md. Here VICReg trains
# on the same views and budget as SimCLR above.

# %%
keras.utils.set_random_seed(0)
vicreg = keras_ssl.VICReg(new_encoder(), projection_dim=512,
                          projection_hidden_dims=(512, 512))
vicreg.compile(optimizer=adamw())
vicreg_history = vicreg.fit(views, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                            shuffle=False, verbose=2)
scores["VICReg"] = evaluate_knn(vicreg.encoder, data.x_train, data.y_train,
                                data.x_test, data.y_test)
print(f"k-NN accuracy, VICReg: {scores['VICReg']:.3f} (SimCLR: {scores['SimCLR']:.3f})")
print("VICReg's last terms:", {k: round(v[-1], 3) for k, v in vicreg_history.history.items()
                               if k in ("invariance", "variance", "covariance")})

# %% [markdown]
# ## Nearest neighbours
#
# What does "similar" mean to the encoder? For a few test images we look up the
# training images with the most similar SimCLR features (cosine similarity). A
# good representation returns the same digit despite different clutter and colour.

# %%
def nearest(encoder, queries, gallery, k=3):
    """Indices of the k gallery images with the most similar features."""
    q = extract_features(encoder, queries)
    g = extract_features(encoder, gallery)
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    g /= np.linalg.norm(g, axis=1, keepdims=True) + 1e-12
    return np.argsort(-(q @ g.T), axis=1)[:, :k]


queries = data.x_test[:8]
rows = {"query": queries}
for name, encoder in [("SimCLR", simclr.encoder), ("random", random_encoder)]:
    neighbours = nearest(encoder, queries, data.x_train)
    for rank in range(2):
        rows[f"{name} #{rank + 1}"] = data.x_train[neighbours[:, rank]]
plot_image_rows(rows, os.path.join(OUT, "neighbours.png"),
                title="Nearest training images by feature similarity")
print("labels of the queries:      ", data.y_test[:8])
print("labels of SimCLR's 1st hits:",
      data.y_train[nearest(simclr.encoder, queries, data.x_train, k=1)[:, 0]])

# %% [markdown]
# ## Keep the encoder
#
# `model.encoder` is a plain Keras model (a keras-hub `Backbone`): save it with
# `encoder.save("encoder.keras")` or `encoder.save_to_preset("preset/")` and load it
# in any process with `keras_ssl.load_model`, to drop into a classifier.

# %%
print("pictures written to", OUT, ":", sorted(os.listdir(OUT)))
