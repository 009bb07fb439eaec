# %% [markdown]
# # Many devices, mixed precision and gradient accumulation
#
# **What you will do:** train the same SimCLR model on one device and data-parallel
# over four devices and check that the two runs take the *same* steps; then train
# it in mixed precision (bfloat16) and compare with float32; then accumulate
# gradients over micro-batches. No GPU is needed: JAX can pretend that the CPU is
# four devices.
#
# **Choose the backend.** Data parallelism through `keras.distribution` needs JAX,
# so this notebook defaults to `"jax"`. Under `"tensorflow"` or `"torch"` it says so,
# skips the multi-device part and runs the rest. The first cell is the only line
# to change. It also asks XLA for 4 host CPU devices, which must happen before JAX
# is imported (on a machine with several GPUs you would leave that flag out).

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # or "tensorflow", "torch": the only line to change
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

# %%
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow (tf.data)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402

import keras_ssl  # noqa: E402
from keras_ssl.data import SimCLRAugmentation, load_image_data, multi_view_dataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, steps  # noqa: E402

OUT = out_dir("multi_device")
BACKEND = keras.backend.backend()
print("Keras", keras.__version__, "backend:", BACKEND)
if BACKEND == "jax":
    import jax

    DEVICES = jax.devices()
    print(f"{len(DEVICES)} JAX devices:", DEVICES)
else:
    DEVICES = None
    print(f"The {BACKEND} backend: keras.distribution (data parallel) needs "
          "KERAS_BACKEND=jax; this run skips the multi-device part and does the "
          "single-device, mixed-precision and accumulation parts.")

data = load_image_data("digits")

# %% [markdown]
# ## One training run, reproducibly
#
# Every run below trains a SimCLR on the embedded digits for the same number of
# steps from the same initial weights and the same stream of augmented batches
# (`multi_view_dataset(..., seed=0)` built afresh for each run). We fit with
# `steps_per_epoch=1` so that `history["loss"]` holds the loss of every single
# step, which lets us compare runs step by step.

# %%
TOTAL_STEPS = steps(60)
BATCH = 128


def make_views(batch_size=BATCH):
    return multi_view_dataset(data.x_unlabeled, SimCLRAugmentation(16, grayscale_p=0.5),
                              batch_size=batch_size, seed=0, repeat=True)


def make_model():
    keras.utils.set_random_seed(0)  # the same initial weights in every run
    encoder = keras_ssl.CIFARResNetBackbone((16, 32, 64), (1, 1, 1),
                                            image_shape=data.image_shape)
    return keras_ssl.SimCLR(encoder, projection_dim=64, temperature=0.5)


def train(model, optimizer=None, micro_batches=1, batch_size=BATCH):
    """Fits `model` for TOTAL_STEPS optimizer steps of `micro_batches` batches each.

    Returns the per-step losses and the median seconds per batch (the first
    batch, which compiles the step, left out)."""
    model.compile(optimizer=optimizer or keras.optimizers.AdamW(1e-3))
    ends = [time.perf_counter()]
    clock = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    history = model.fit(make_views(batch_size), epochs=TOTAL_STEPS * micro_batches,
                        steps_per_epoch=1, shuffle=False, verbose=0, callbacks=[clock])
    seconds = float(np.median(np.diff(ends)[1:])) if len(ends) > 2 else float("nan")
    return np.array(history.history["loss"]), seconds


one_device, one_device_seconds = train(make_model())
print(f"1 device: final loss {one_device[-1]:.4f}, {one_device_seconds:.3f} s/step")

# %% [markdown]
# ## Data parallel over N devices (JAX)
#
# `keras.distribution.DataParallel` replicates every weight on each device and
# splits each batch along its first axis: with 4 devices and a global batch of 128,
# each device computes on 32 images. JAX's compiler (XLA with GSPMD) inserts the
# communication: the gradients are all-reduced, and wherever the model computes
# something across the batch, it computes it across the *global* batch. For
# keras-ssl that means SimCLR's negatives, batch norm's statistics, MoCo's enqueued
# keys and DINO's center are all those of the whole batch, so one step on N devices
# is the same step as on one device with the same global batch (the library tests
# this for every method, `tests/models/test_distribution.py`). Nothing in the model
# changes: build, compile and fit inside the distribution's scope (or call
# `keras.distribution.set_distribution(...)` once at the top of a script).
#
# For ViTs (MAE, BEiT, CLIP) `keras_ssl.distribution.model_parallel(mesh)` also
# shards the Transformer blocks' weights over a 2-D device mesh (batch × model).

# %%
if BACKEND == "jax":
    distribution = keras.distribution.DataParallel(devices=DEVICES)
    with distribution.scope():
        n_devices, n_devices_seconds = train(make_model())
    print(f"{len(DEVICES)} devices: final loss {n_devices[-1]:.4f}, "
          f"{n_devices_seconds:.3f} s/step")
    difference = np.abs(n_devices - one_device)
    print(f"loss difference, 1 vs {len(DEVICES)} devices: first step {difference[0]:.1e}, "
          f"largest over the run {difference.max():.1e}")
else:
    n_devices = None
    print(f"skipped: keras.distribution.DataParallel needs JAX, not {BACKEND}")

# %% [markdown]
# The first step agrees to float round-off (about 1e-7): the sums are merely
# split differently across devices. Training amplifies such round-off step by step,
# so after tens of steps the two curves differ in the second or third decimal, as two
# runs on different hardware would. (On this machine the four "devices" share two
# CPU cores, so the timing says little; on N real accelerators each step costs
# about 1/N of the compute per device plus the all-reduce.)
#
# ### TensorFlow: `tf.distribute.MirroredStrategy`
#
# Under `KERAS_BACKEND=tensorflow` the same model trains on several GPUs, or on
# logical CPU devices for a test, inside a `tf.distribute` strategy. The logical
# devices must be configured before TensorFlow first touches the CPU:
#
# ```python
# import tensorflow as tf
# cpu = tf.config.list_physical_devices("CPU")[0]
# tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
# with tf.distribute.MirroredStrategy().scope():  # one replica per device
#     model = keras_ssl.SimCLR(encoder, synchronized_batch_norm=True)
#     model.compile(optimizer="adamw")
# model.fit(views, epochs=10)
# ```
#
# Here each replica runs its own copy of the step, so keras-ssl does the global
# parts explicitly: contrastive losses all-gather the embeddings across replicas
# with gradient (`SSLModel.gather_across_replicas`), queues, centers and codebooks
# are updated from the global batch, and `synchronized_batch_norm=True` makes batch
# norm global. A 2-replica step equals a 1-device step (tested per method).
#
# ### PyTorch: one device
#
# Keras 3 has no distribution support for the torch backend, so keras-ssl trains on
# one device there. Rather than silently ignoring a multi-device request it fails,
# naming the JAX and TensorFlow ways. Under torch this cell shows that error
# (requesting a `tf.distribute` strategy around a torch model):

# %%
if BACKEND == "torch":
    import tensorflow as tf

    model = make_model()
    model.compile(optimizer="adamw")
    (views,) = next(iter(make_views()))
    try:
        with tf.distribute.MirroredStrategy().scope():
            model.train_on_batch(views)
    except RuntimeError as error:
        print("RuntimeError:", error)
else:
    print("(the torch backend's error is shown when this notebook runs under torch)")

# %% [markdown]
# ## Mixed precision
#
# `keras.mixed_precision.set_dtype_policy("mixed_bfloat16")` makes every layer
# created afterwards compute in bfloat16 while keeping its weights in float32. On
# GPUs and TPUs with bfloat16 units that roughly halves memory traffic and speeds
# up matrix multiplications; bfloat16 has float32's exponent range, so no loss
# scaling is needed (`"mixed_float16"` would add a `LossScaleOptimizer`). keras-ssl
# keeps the numerically delicate parts in float32 whatever the policy: cosine
# similarities, softmax and log-sum-exp, normalisation, EMA targets, queues, centers
# and codebooks (`tests/models/test_precision.py`). The loss curve should follow
# the float32 one closely. (On a CPU bfloat16 is emulated and usually *slower*;
# the timing printed here says nothing about accelerators.)

# %%
keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
try:
    mixed_model = make_model()
    mixed, mixed_seconds = train(mixed_model)
    print("compute dtype:", mixed_model.encoder.compute_dtype,
          "| weights:", mixed_model.encoder.weights[0].dtype)
finally:
    keras.mixed_precision.set_dtype_policy("float32")  # later models: float32 again
print(f"float32: final loss {one_device[-1]:.4f} ({one_device_seconds:.3f} s/step); "
      f"mixed_bfloat16: final loss {mixed[-1]:.4f} ({mixed_seconds:.3f} s/step)")
print(f"largest per-step loss difference, bfloat16 vs float32: "
      f"{np.max(np.abs(mixed - one_device)):.3f}")

# %% [markdown]
# ## Gradient accumulation
#
# When a batch does not fit in memory, `gradient_accumulation_steps=k` on any Keras
# optimizer sums the gradients of k micro-batches and applies one update. keras-ssl
# moves its post-step state (EMA targets, momentum schedules, DINO's center) once
# per *optimizer* step, not per micro-batch (`tests/models/test_accumulation.py`).
# One caveat for contrastive methods: the gradient averages over k micro-batches,
# but each micro-batch's loss only contrasts against its own negatives, so
# accumulation is not the same as a k-times larger SimCLR batch (MoCo's queue is
# unaffected: it keeps every micro-batch's keys).

# %%
ACCUMULATE = 4
accumulating = make_model()
accumulated, _ = train(
    accumulating,
    keras.optimizers.AdamW(1e-3, gradient_accumulation_steps=ACCUMULATE),
    micro_batches=ACCUMULATE, batch_size=BATCH // ACCUMULATE,
)
print(f"{TOTAL_STEPS * ACCUMULATE} micro-batches of {BATCH // ACCUMULATE} -> "
      f"{int(accumulating.optimizer.iterations)} optimizer steps")

# %% [markdown]
# ## The picture
#
# Left: the per-step loss on one device and on N devices (the curves coincide up
# to round-off).
# Right: float32 against mixed bfloat16.

# %%
figure, axes = plt.subplots(1, 2, figsize=(10, 3.4))
x = np.arange(1, TOTAL_STEPS + 1)
axes[0].plot(x, one_device, label="1 device", lw=3, alpha=0.5)
if n_devices is not None:
    axes[0].plot(x, n_devices, "--", label=f"{len(DEVICES)} devices (DataParallel)")
    axes[0].set_title(f"Same global batch ({BATCH}): 1 vs {len(DEVICES)} devices")
else:
    axes[0].set_title(f"1 device ({BACKEND}: no DataParallel)")
axes[1].plot(x, one_device, label="float32", lw=3, alpha=0.5)
axes[1].plot(x, mixed, "--", label="mixed_bfloat16")
axes[1].set_title("float32 vs mixed precision")
for axis in axes:
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("SimCLR loss")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
figure.tight_layout()
figure.savefig(os.path.join(OUT, "loss_curves.png"), dpi=90)
plt.close(figure)
print("pictures written to", OUT, ":", sorted(os.listdir(OUT)))
