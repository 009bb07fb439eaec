"""Pretraining end to end: data → views → method → `fit` → evaluation.

This is the engine behind `keras-ssl pretrain` and the quality benchmark:
one function, `pretrain`, builds the backbone, the views and the method from
a `PretrainConfig`, fits with an online k-NN monitor, and measures the frozen
representation with k-NN and a linear probe next to the same backbone at
random initialisation.
"""

import dataclasses
import time
from typing import Callable

import keras
import numpy as np

from keras_ssl.backbones import CIFARResNetBackbone, ViTBackbone
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
from keras_ssl.evaluation import (
    KNNMonitor,
    extract_features,
    fine_tune_accuracy,
    knn_accuracy,
    linear_probe_accuracy,
)
from keras_ssl.models import SimCLR
from keras_ssl.optimizers import LARS, warmup_cosine_schedule


def _cifar_resnet(filters, blocks):
    def build(image_shape):
        return CIFARResNetBackbone(filters, blocks, image_shape=image_shape)

    return build


def _keras_hub_resnet(blocks, block_type):
    """keras-hub's ResNet (7×7 stride-2 stem + max-pool), random init."""

    def build(image_shape):
        from keras_hub.models import ResNetBackbone

        return ResNetBackbone(
            input_conv_filters=[64],
            input_conv_kernel_sizes=[7],
            stackwise_num_filters=[64, 128, 256, 512],
            stackwise_num_blocks=list(blocks),
            stackwise_num_strides=[1, 2, 2, 2],
            block_type=block_type,
            image_shape=image_shape,
        )

    return build


def _vit(hidden_dim, num_layers, num_heads, patch_size=None):
    """A `ViTBackbone`; `patch_size=None` cuts any image into an 8×8 grid."""

    def build(image_shape):
        side = min(image_shape[:2])
        patch = patch_size or max(1, side // 8)
        return ViTBackbone(
            image_shape=image_shape,
            patch_size=patch,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_heads=num_heads,
        )

    return build


# Backbone name → builder(image_shape). "cifar_resnet_tiny" is the CPU
# default: the ResNet-18 layout with 3 stages of one basic block (two 3×3
# convolutions) at 16/32/64 filters; measured on 2 cores it trains 4× faster
# than the 32/64/128 "cifar_resnet_small" and, within 10 minutes, learns as
# much (benchmarks/speed.py, benchmarks/quality.py).
BACKBONES = {
    "cifar_resnet_small": _cifar_resnet((32, 64, 128), (1, 1, 1)),
    "cifar_resnet_tiny": _cifar_resnet((16, 32, 64), (1, 1, 1)),
    "cifar_resnet18": _cifar_resnet((64, 128, 256, 512), (2, 2, 2, 2)),
    "resnet18": _keras_hub_resnet((2, 2, 2, 2), "basic_block"),
    "resnet50": _keras_hub_resnet((3, 4, 6, 3), "bottleneck_block"),
    # The masked image models' CPU default: 8×8 patches of any image (2-px
    # patches of the 16×16 digits), 4 blocks of width 64.
    "vit_tiny": _vit(64, 4, 4),
    # ViT-B/16 (Dosovitskiy et al.), the MAE and BEiT papers' encoder.
    "vit_base16": _vit(768, 12, 12, patch_size=16),
    # ViT-B/32, CLIP's ViT-B/32 image encoder.
    "vit_base32": _vit(768, 12, 12, patch_size=32),
}


def build_backbone(name, image_shape):
    """A fresh backbone by name (see `BACKBONES`)."""
    if name not in BACKBONES:
        raise ValueError(
            f"unknown backbone {name!r}: expected one of {sorted(BACKBONES)}"
        )
    return BACKBONES[name](tuple(image_shape))


@dataclasses.dataclass
class PretrainConfig:
    """Everything a pretraining run needs, with defaults for the embedded data.

    The defaults are the small-data recipe measured on the cluttered digits
    rendered at 16×16 (2 CPU cores, under 10 minutes): crops of 20–100%,
    strong colour jitter and grayscale 0.5 (so that colour alone cannot
    solve the task), AdamW with a warmup + cosine schedule, and as many
    epochs as fit (`Recipe.epochs`). The number of optimizer steps mattered
    most: at 32×32 an epoch is 7× slower and 16–20 epochs stayed below the
    raw-pixel k-NN, while crops of 50–100%, a temperature of 0.2 or a wider
    backbone changed little. Paper values for ImageNet are in
    `applications/<method>.py`.
    """

    method: str = "simclr"  # a key of RECIPES
    # None (here and below): the method's recipe default (`Recipe.defaults`,
    # else `DEFAULTS`), sized so that the CLI's run on the embedded digits
    # takes under 10 minutes on 2 cores.
    backbone: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str = "adamw"  # "adamw", "lars" or "sgd"
    learning_rate: float | None = None
    weight_decay: float | None = None
    # AdamW's β2 (MAE: 0.95).
    beta_2: float | None = None
    warmup_epochs: int = 2
    # SimCLR and MoCo only; None takes the method's default (0.5 / 0.2).
    temperature: float | None = None
    projection_dim: int = 128
    crop_scale: tuple = (0.2, 1.0)
    jitter_strength: float = 1.0
    grayscale_p: float = 0.5
    blur_p: float = 0.0
    knn_every: int = 10
    # Epochs of end-to-end fine-tuning in the evaluation (0: none), for the
    # pretrained encoder and for the same backbone at random init.
    fine_tune_epochs: int | None = None
    seed: int = 0
    # Constructor arguments of the method that replace the recipe's
    # small-data defaults (e.g. the paper's queue size for MoCo).
    method_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.method not in RECIPES:
            raise ValueError(
                f"unknown method {self.method!r}: expected one of "
                f"{', '.join(RECIPES)}"
            )
        recipe = RECIPES[self.method]
        for name, default in DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, recipe.defaults.get(name, default))
        if self.temperature is not None:
            if self.method not in ("simclr", "moco"):
                raise ValueError(
                    f"temperature applies to simclr and moco, not {self.method}"
                )
            if not self.temperature > 0:
                raise ValueError(
                    f"temperature must be > 0, got {self.temperature}"
                )
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}: expected one of "
                f"{sorted(BACKBONES)}"
            )
        if self.optimizer not in ("adamw", "lars", "sgd"):
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}: expected 'adamw', "
                "'lars' or 'sgd'"
            )
        for name in ("epochs", "batch_size", "knn_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.fine_tune_epochs) < 0:
            raise ValueError(
                f"fine_tune_epochs must be >= 0, got {self.fine_tune_epochs}"
            )
        if not 0.0 < float(self.beta_2) < 1.0:
            raise ValueError(f"beta_2 must be in (0, 1), got {self.beta_2}")


# The values a `PretrainConfig` field left at None takes when the method's
# recipe names none (`Recipe.defaults`).
DEFAULTS = {
    "backbone": "cifar_resnet_tiny",
    "epochs": 20,
    "batch_size": 256,
    "learning_rate": 2e-3,
    "weight_decay": 1e-4,
    "beta_2": 0.999,
    "fine_tune_epochs": 0,
}


def make_optimizer(config, steps_per_epoch):
    """The optimizer of a config, with linear warmup and cosine decay."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, config.warmup_epochs * steps_per_epoch)
    schedule = warmup_cosine_schedule(config.learning_rate, total, warmup)
    if config.optimizer == "lars":
        return LARS(schedule, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=0.9, weight_decay=config.weight_decay or None
        )
    return keras.optimizers.AdamW(
        schedule, weight_decay=config.weight_decay, beta_2=config.beta_2
    )


def _simclr_augmentation(config, image_size):
    return SimCLRAugmentation(
        image_size,
        crop_scale=tuple(config.crop_scale),
        jitter_strength=config.jitter_strength,
        grayscale_p=config.grayscale_p,
        blur_p=config.blur_p,
    )


def _two_views(config, images, image_size):
    """Two views per image, both from the config's SimCLR augmentation."""
    return multi_view_dataset(
        images,
        _simclr_augmentation(config, image_size),
        batch_size=config.batch_size,
        seed=config.seed,
    )


def _byol_views(config, images, image_size):
    """BYOL's asymmetric pair (solarize 0 / 0.2, and blur 1.0 / 0.1 when
    `config.blur_p > 0`) on top of the config's crops and colour distortion.
    The digits recipe has no blur: the paper's σ of up to 2 px, sized for
    224-px images, erases 16-px digits."""
    from keras_ssl.models.byol import paper_augmentations

    augment = paper_augmentations(
        image_size,
        crop_scale=tuple(config.crop_scale),
        blur_p=(1.0, 0.1) if config.blur_p > 0 else (0.0, 0.0),
        jitter_strength=config.jitter_strength,
        grayscale_p=config.grayscale_p,
    )
    return multi_view_dataset(
        images, augment, batch_size=config.batch_size, seed=config.seed
    )


def _dino_views(config, images, image_size):
    from keras_ssl.models.dino import views_for_digits

    return views_for_digits(
        images, config.batch_size, config.seed, image_size=image_size
    )


def _build_simclr(config, encoder, steps_per_epoch, images=None):
    kwargs = dict(projection_dim=config.projection_dim, temperature=0.5)
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    return SimCLR(encoder, **{**kwargs, **config.method_options})


def _build_moco(config, encoder, steps_per_epoch, images=None):
    from keras_ssl.models import moco

    options = dict(config.method_options)
    if config.temperature is not None:
        options.setdefault("temperature", config.temperature)
    return moco.build_for_digits(encoder, steps_per_epoch, config.epochs, **options)


def _build_byol(config, encoder, steps_per_epoch, images=None):
    from keras_ssl.models import byol

    return byol.build_for_digits(
        encoder, steps_per_epoch, config.epochs, **config.method_options
    )


def _build_dino(config, encoder, steps_per_epoch, images=None):
    from keras_ssl.models import dino

    return dino.build_for_digits(
        encoder, steps_per_epoch, config.epochs, **config.method_options
    )


def _single_crops(config, images, image_size):
    """One view per image: MAE's and BEiT's crop-and-flip augmentation."""
    from keras_ssl.models.mae import paper_augmentation

    return multi_view_dataset(
        images,
        paper_augmentation(image_size, crop_scale=tuple(config.crop_scale)),
        num_views=1,
        batch_size=config.batch_size,
        seed=config.seed,
    )


def _build_mae(config, encoder, steps_per_epoch, images=None):
    from keras_ssl.models import mae

    return mae.build_for_digits(encoder, seed=config.seed, **config.method_options)


def _mae_artifacts(model, data, out):
    from keras_ssl.evaluation import plot_image_rows

    images = np.asarray(data.x_test[:8], "float32")
    masked, reconstructed = model.reconstruct(images)
    plot_image_rows(
        {"original": images, "masked (75%)": masked,
         "reconstruction": reconstructed},
        out / "reconstructions.png",
        title=f"MAE on {data.name}: held-out images",
    )
    return ["reconstructions.png"]


def _build_beit(config, encoder, steps_per_epoch, images=None):
    from keras_ssl.models import beit

    if images is None:
        raise ValueError("BEiT trains its tokenizer first: pass the images")
    return beit.build_for_digits(
        encoder, images, seed=config.seed, **config.method_options
    )


def _beit_artifacts(model, data, out):
    from keras_ssl.evaluation import plot_image_rows

    images = np.asarray(data.x_test[:8], "float32")
    masked, target, predicted = model.visualize(images)
    plot_image_rows(
        {"original": images, "masked (40%)": masked,
         "tokenizer codes": target, "BEiT's codes": predicted},
        out / "reconstructions.png",
        title=f"BEiT on {data.name}: held-out images, decoded visual tokens",
    )
    reconstructions = model.tokenizer.reconstruct(images)
    plot_image_rows(
        {"original": images, "tokenizer": reconstructions},
        out / "tokenizer.png",
        title=f"VQ tokenizer on {data.name} ({model.vocab_size} codes)",
    )
    return ["reconstructions.png", "tokenizer.png"]


def _dino_callbacks():
    from keras_ssl.models.dino import DINOCollapseMonitor

    return [DINOCollapseMonitor()]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the engine builds one method and the views it trains on.

    Attributes:
        build: `(config, encoder, steps_per_epoch, images) → SSLModel`;
            `images` are the unlabelled training images (BEiT trains its
            tokenizer on them first).
        views: `(config, images, image_size) → tf.data.Dataset` of views.
        defaults: values of the `PretrainConfig` fields left at None for
            this method (else `DEFAULTS`). Epochs are sized so that the CLI's
            run on the embedded digits takes at most about 9 minutes of
            training on 2 CPU cores with the default backbone and backend
            (TensorFlow; measured with the online k-NN: SimCLR 5.3 s per
            epoch, MoCo 10.3, BYOL 9 and DINO 10.3 at batch 64). On eager
            torch SimCLR and MoCo epochs take half as long (2.5 and 4.7 s),
            BYOL and DINO epochs at batch 64 twice as long (20.7 and 21 s).
            Methods without negatives (BYOL) learn per optimizer step, not
            per negative: within the same minutes, batches of 64 give them
            4× the steps (measured, README "Measured").
        callbacks: `() → list` of Keras callbacks the method trains with
            (e.g. DINO's collapse monitor, which warns in the log).
        artifacts: optional `(model, data, out_dir) → list of file names`
            the CLI calls after training to write pictures (e.g. MAE's
            reconstructions).
    """

    build: Callable
    views: Callable
    defaults: dict = dataclasses.field(default_factory=dict)
    callbacks: Callable = list
    artifacts: Callable | None = None

    @property
    def epochs(self):
        return self.defaults.get("epochs", DEFAULTS["epochs"])

    @property
    def batch_size(self):
        return self.defaults.get("batch_size", DEFAULTS["batch_size"])


# Method name → recipe, for every method the CLI and the quality benchmark
# run end to end on the embedded data (small-data defaults; paper defaults
# for full-size data are in applications/).
RECIPES = {
    "simclr": Recipe(_build_simclr, _two_views, {"epochs": 100}),
    "moco": Recipe(_build_moco, _two_views, {"epochs": 55}),
    "byol": Recipe(_build_byol, _byol_views, {"epochs": 50, "batch_size": 64}),
    "dino": Recipe(
        _build_dino, _dino_views, {"epochs": 50, "batch_size": 64},
        callbacks=_dino_callbacks,
    ),
    "mae": Recipe(
        _build_mae,
        _single_crops,
        {
            "backbone": "vit_tiny",
            "epochs": 30,
            "batch_size": 128,
            "learning_rate": 1e-3,
            "weight_decay": 0.05,
            "beta_2": 0.95,
            "fine_tune_epochs": 30,
        },
        artifacts=_mae_artifacts,
    ),
    "beit": Recipe(
        _build_beit,
        _single_crops,
        {
            "backbone": "vit_tiny",
            "epochs": 30,
            "batch_size": 128,
            "learning_rate": 1e-3,
            "weight_decay": 0.05,
            "fine_tune_epochs": 30,
        },
        artifacts=_beit_artifacts,
    ),
}


def make_views(config, images, image_size):
    """The tf.data pipeline of augmented views for a config's method."""
    return RECIPES[config.method].views(config, images, image_size)


def make_method(config, encoder, steps_per_epoch=1, images=None):
    """The method of a config around `encoder` (schedules over
    `config.epochs × steps_per_epoch` optimizer steps); `images`, the
    unlabelled images, for methods with a stage before `fit` (BEiT)."""
    return RECIPES[config.method].build(
        config, encoder, int(steps_per_epoch), images
    )


def evaluate_representation(encoder, data, batch_size=256, fine_tune_epochs=0,
                            seed=0):
    """k-NN and linear-probe test accuracy of a frozen encoder's features,
    and with `fine_tune_epochs > 0` the test accuracy of a copy fine-tuned
    end to end on the labelled split (`fine_tune_accuracy`)."""
    train = extract_features(encoder, data.x_train, batch_size=batch_size)
    test = extract_features(encoder, data.x_test, batch_size=batch_size)
    scores = _feature_scores(train, test, data)
    if fine_tune_epochs:
        scores["fine_tune_accuracy"] = fine_tune_accuracy(
            encoder, data.x_train, data.y_train, data.x_test, data.y_test,
            epochs=fine_tune_epochs, seed=seed,
        )
    return scores


def raw_pixel_scores(data):
    """The same k-NN and linear probe on raw pixels: the floor to beat."""
    flat = lambda x: np.asarray(x, "float32").reshape(len(x), -1)  # noqa: E731
    return _feature_scores(flat(data.x_train), flat(data.x_test), data)


def _feature_scores(train, test, data):
    return {
        "knn_accuracy": knn_accuracy(
            train, data.y_train, test, data.y_test, num_classes=data.num_classes
        ),
        "linear_probe_accuracy": linear_probe_accuracy(
            train, data.y_train, test, data.y_test
        ),
    }


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the epoch where `seconds` ran out."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self._start > self.seconds:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True


@dataclasses.dataclass
class PretrainResult:
    """What `pretrain` returns: the trained model and its measurements."""

    model: keras.Model
    history: dict
    # knn_accuracy / linear_probe_accuracy (/ fine_tune_accuracy) of the
    # trained encoder
    scores: dict
    random_init_scores: dict  # the same for the untrained backbone
    train_seconds: float
    knn_epochs: list  # the epochs where history["knn_accuracy"] was measured

    @property
    def encoder(self):
        return self.model.encoder


def pretrain(data, config=None, callbacks=(), time_budget=None, verbose="auto",
             baseline=True, backup_dir=None, backup_freq="epoch"):
    """Pretrains `config.method` on `data` and measures the representation.

    Args:
        data: a `keras_ssl.data.ImageData` (see `load_image_data`).
        config: a `PretrainConfig` (defaults: SimCLR on the embedded data).
        callbacks: extra Keras callbacks for `fit`.
        time_budget: optional seconds after which training stops at the end
            of an epoch (the schedule is not shortened).
        verbose: `fit` verbosity (`"auto"` shows Keras' progress bar).
        baseline: also measure the same backbone at random initialisation.
        backup_dir: a directory for a `keras_ssl.callbacks.ResumableBackup`:
            training backs up there and, when a backup of an interrupted
            run with the same config is there, continues from it exactly
            (weights, target networks, queues, centers, optimizer and
            schedule step, random seed states, data position). It is deleted
            when training ends.
        backup_freq: `"epoch"` or a number of steps between backups.

    Returns:
        A `PretrainResult`.

    Example:

    ```python
    from keras_ssl.data import load_image_data
    from keras_ssl.training import PretrainConfig, pretrain
    result = pretrain(load_image_data("digits"), PretrainConfig(epochs=5))
    print(result.scores, result.random_init_scores)
    ```
    """
    config = config or PretrainConfig()
    keras.utils.set_random_seed(config.seed)
    image_shape = tuple(data.x_unlabeled.shape[1:])
    views = make_views(config, data.x_unlabeled, image_shape[0])
    steps_per_epoch = len(data.x_unlabeled) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch size {config.batch_size} is larger than the "
            f"{len(data.x_unlabeled)} unlabelled images"
        )

    random_init_scores = None
    if baseline:
        random_init_scores = evaluate_representation(
            build_backbone(config.backbone, image_shape), data,
            fine_tune_epochs=config.fine_tune_epochs, seed=config.seed,
        )
        keras.utils.set_random_seed(config.seed)

    model = make_method(
        config, build_backbone(config.backbone, image_shape), steps_per_epoch,
        images=data.x_unlabeled,
    )
    model.compile(optimizer=make_optimizer(config, steps_per_epoch))
    monitor = KNNMonitor(
        data.x_train, data.y_train, data.x_test, data.y_test,
        every_n_epochs=config.knn_every, verbose=0,
    )
    all_callbacks = [monitor, *RECIPES[config.method].callbacks(), *callbacks]
    if time_budget:
        all_callbacks.append(TimeBudget(time_budget))
    if backup_dir:
        from keras_ssl.callbacks import ResumableBackup

        all_callbacks.append(ResumableBackup(backup_dir, save_freq=backup_freq))
        if not model.built:  # BackupAndRestore restores into a built model
            for batch in views.take(1):
                model(batch[0])
    start = time.perf_counter()
    history = model.fit(
        views,
        epochs=config.epochs,
        callbacks=all_callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    train_seconds = time.perf_counter() - start
    return PretrainResult(
        model=model,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        scores=evaluate_representation(
            model.encoder, data, fine_tune_epochs=config.fine_tune_epochs,
            seed=config.seed,
        ),
        random_init_scores=random_init_scores,
        train_seconds=train_seconds,
        knn_epochs=list(monitor.evaluated_epochs),
    )
