"""The shared method harness: every keras-ssl method passes the same checks.

A method joins the harness with one `MethodCase` entry in `CASES` (a builder
of a tiny model, a builder of its tf.data pipeline, fixed inputs for the
cross-backend check and the bad inputs it must reject); the tests in
`tests/models/test_methods.py` then run the checks of docs/design.md on it:

- `fit` on a tf.data pipeline of real images, jit-compiled, and the loss drops;
- evaluate works and the method's extra metrics are in the history;
- `.keras` round trip: identical outputs and weights (targets, queues, ...);
- the encoder exports alone (`.keras`, keras-hub preset) and reloads as a
  backbone that a downstream classifier can train;
- the same weights give the same loss on all three backends (stored numbers
  in tests/data/goldens.json, made by `python tests/make_goldens.py`);
- bad inputs fail with a clear `ValueError`;
- many devices (tests/models/test_distribution.py): one step under JAX
  `DataParallel` (4 devices) and TensorFlow `MirroredStrategy` (2 replicas)
  gives the same loss and weights as one device.
"""

import dataclasses
import json
import pathlib
from typing import Callable

import keras
import numpy as np

from keras_ssl.backbones import CIFARResNetBackbone
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
from keras_ssl.models import SimCLR

IMAGE_SIZE = 16  # views are 16×16 crops of the 32×32 embedded images
GOLDENS = pathlib.Path(__file__).parent / "data" / "goldens.json"


def tiny_encoder(image_size=IMAGE_SIZE):
    return CIFARResNetBackbone(
        stackwise_num_filters=(8, 16),
        stackwise_num_blocks=(1, 1),
        image_shape=(image_size, image_size, 3),
    )


@dataclasses.dataclass
class MethodCase:
    """How the harness builds, feeds and breaks one method."""

    name: str
    # A tiny model on IMAGE_SIZE images, not yet built.
    build_model: Callable[[], keras.Model]
    # images (N, 32, 32, 3) → a repeating tf.data pipeline of `batch_size`.
    make_dataset: Callable[[np.ndarray, int], object]
    # images → fixed model inputs (no tf randomness), for goldens and devices.
    fixed_inputs: Callable[[np.ndarray], object]
    # → list of (bad inputs, regex the ValueError message must match).
    bad_inputs: Callable[[], list]
    # Metrics the method logs beside its loss.
    metrics: tuple = ()
    learning_rate: float = 3e-3
    # Attributes set on the model for the multi-replica (tf.distribute) step
    # check, for options that emulate several devices on one (MoCo's
    # shuffling BN), and so cannot match one device with synchronised BN.
    replica_overrides: dict = dataclasses.field(default_factory=dict)
    # Absolute tolerance of the cross-backend golden check, for a loss near 0
    # at deterministic weights (SimSiam's cosine), where rtol alone is
    # below float32 round-off.
    golden_atol: float = 0.0


def _two_fixed_views(images):
    """Two deterministic views of 16 images: a crop and a flipped crop."""
    x = np.asarray(images[:16, 4 : 4 + IMAGE_SIZE, 4 : 4 + IMAGE_SIZE])
    y = np.asarray(images[:16, 12 : 12 + IMAGE_SIZE, 12 : 12 + IMAGE_SIZE, :])
    return (x.astype("float32"), y[:, :, ::-1].astype("float32").copy())


def _two_view_bad_inputs():
    good = np.random.default_rng(0).random((4, IMAGE_SIZE, IMAGE_SIZE, 3))
    good = good.astype("float32")
    small = good[:, :12, :12]
    return [
        (good, "tuple of views"),
        ((good,), "expects 2 views"),
        ((good[..., 0], good[..., 0]), "rank 4"),
        (((good * 255).astype("uint8"),) * 2, "float images"),
        ((good[:1], good[:1]), "at least 2 images"),
        ((good, small), "same shape"),
    ]


def single_image_bad_inputs(extra=None):
    """The bad inputs every one-view method (MAE, BEiT, VQTokenizer) rejects.

    Args:
        extra: `(key, good (4, N) values, N)` of the dict input a method
            takes beside its images (MAE's "noise", BEiT's "mask"), or None
            for a method that takes no dict.
    """
    good = np.random.default_rng(0).random((4, IMAGE_SIZE, IMAGE_SIZE, 3))
    good = good.astype("float32")
    cases = [
        ((good, good), "one batch of images \\(one view\\)"),
        (good[..., 0], "rank 4"),
        ((good * 255).astype("uint8"), "float images"),
        (good[..., :1], "16×16 images with 3 channels"),
        (good[:, :12, :12], "16×16 images"),  # index 4: fails inside fit
        (good[:0], "at least 1 image"),
    ]
    if extra is None:
        return cases + [({"images": good}, "not a dict")]
    key, values = extra
    return cases + [
        ({"images": good, key: values[:, :-1]}, f"{key} must have shape"),
        ({"pixels": good}, f"keys 'images' and optionally '{key}'"),
    ]


def single_image_dataset(augment):
    """`make_dataset` of a one-view method: `augment`ed single crops."""
    return lambda images, batch_size: multi_view_dataset(
        images, augment, num_views=1, batch_size=batch_size, seed=0,
        repeat=True,
    )


CASES = [
    MethodCase(
        name="simclr",
        build_model=lambda: SimCLR(
            tiny_encoder(), projection_dim=8, projection_hidden_dims=(16,)
        ),
        make_dataset=lambda images, batch_size: multi_view_dataset(
            images,
            SimCLRAugmentation(IMAGE_SIZE, crop_scale=(0.2, 1.0)),
            batch_size=batch_size,
            seed=0,
            repeat=True,
        ),
        fixed_inputs=_two_fixed_views,
        bad_inputs=_two_view_bad_inputs,
        metrics=("positive_similarity", "representation_std"),
    ),
]


def _discover_cases():
    """Methods added later put one `CASE = MethodCase(...)` in a module
    `tests/models/cases_<method>.py`; they join the harness here."""
    import importlib.util

    for path in sorted((pathlib.Path(__file__).parent / "models").glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        CASES.append(module.CASE)


_discover_cases()


def case_by_name(name):
    return next(case for case in CASES if case.name == name)


def set_deterministic_weights(model, seed=0):
    """Gives every variable a value that depends only on its shape and order.

    Constant-initialised variables (biases, batch-norm statistics) keep their
    value; the others get He-scaled normal noise from NumPy, so the same model
    has the same weights under every backend.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        if value.size > 1 and np.all(value == value.flat[0]):
            continue
        fan_in = max(1, int(np.prod(value.shape[:-1])))
        noise = rng.normal(size=value.shape) * np.sqrt(2.0 / fan_in)
        variable.assign(noise.astype(value.dtype))


def deterministic_loss(case, images):
    """The method's loss on fixed inputs with deterministic weights."""
    model = case.build_model()
    inputs = case.fixed_inputs(images)
    model(inputs)  # build
    set_deterministic_weights(model)
    y_pred = model(inputs, training=True)
    loss = model.compute_loss(x=inputs, y_pred=y_pred, training=True)
    return float(keras.ops.convert_to_numpy(loss))


def load_goldens():
    return json.loads(GOLDENS.read_text()) if GOLDENS.exists() else {}


# Per-method matrices too long for every run (each case compiles its own
# steps): the suite runs a representative subset, and all of them with
# KERAS_SSL_FULL_MATRIX=1 (also selectable with `-m slow`).
FULL_MATRIX = bool(__import__("os").environ.get("KERAS_SSL_FULL_MATRIX"))


def matrix_params(default_names):
    """`pytest.param`s of every case: those in `default_names` always run,
    the others only with KERAS_SSL_FULL_MATRIX=1."""
    import pytest

    later = [
        pytest.mark.slow,
        pytest.mark.skipif(
            not FULL_MATRIX,
            reason="full method matrix: set KERAS_SSL_FULL_MATRIX=1",
        ),
    ]
    return [
        pytest.param(case, id=case.name,
                     marks=() if case.name in default_names else later)
        for case in CASES
    ]
