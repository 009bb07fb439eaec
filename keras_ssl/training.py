"""The vision family of the recipe engine: data → views → method → `fit` →
evaluation.

`pretrain(data, config)` builds the backbone, the views and the method from
a `PretrainConfig` (its values from the method's preset,
`keras_ssl.recipes.presets`), fits with an online k-NN monitor, and measures
the frozen representation with k-NN and a linear probe next to the same
backbone at random initialisation. `keras_ssl.recipes.run` calls it for
`keras-ssl pretrain simclr|moco|byol|dino|simsiam|barlow_twins|vicreg|swav|mae|beit`.
"""

import dataclasses
import time
from typing import Callable

import keras
import numpy as np

from keras_ssl.backbones import CIFARResNetBackbone, ViTBackbone
from keras_ssl.callbacks import DINOCollapseMonitor, TimeBudget, fit_schedule
from keras_ssl.data import (
    SimCLRAugmentation,
    byol_augmentations,
    dino_multicrop,
    mae_augmentation,
    multi_crop_dataset,
    multi_view_dataset,
)
from keras_ssl.data.image_files import is_streamed
from keras_ssl.evaluation import (
    KNNMonitor,
    extract_features,
    extract_features_and_labels,
    feature_scores,
    fine_tune_accuracy,
    probe_layers,
    transformer_blocks,
)
from keras_ssl.models import SimCLR
from keras_ssl.optimizers import make_optimizer
from keras_ssl.recipes.configs import VISION_BACKBONES, PretrainConfig
from keras_ssl.recipes.methods import METHODS, methods_of

__all__ = ["BACKBONES", "PretrainConfig", "PretrainResult", "RECIPES",
           "TimeBudget", "build_backbone", "evaluate_representation",
           "make_method", "make_views", "make_vision_optimizer", "pretrain",
           "raw_pixel_scores", "total_steps"]


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
    """A `ViTBackbone`; `patch_size=None` cuts any image into an 8×8 grid.

    Its builder takes further `ViTBackbone` options (`position_embedding`).
    """

    def build(image_shape, **options):
        side = min(image_shape[:2])
        patch = patch_size or max(1, side // 8)
        return ViTBackbone(
            image_shape=image_shape,
            patch_size=patch,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            **options,
        )

    return build


# Backbone name → builder(image_shape). "cifar_resnet_tiny" is the CPU
# default: the ResNet-18 layout with 3 stages of one basic block (two 3×3
# convolutions) at 16/32/64 filters, which within the same minutes learns as
# much as the 32/64/128 "cifar_resnet_small" (benchmarks/speed.py,
# benchmarks/quality.py).
BACKBONES = {
    "cifar_resnet_small": _cifar_resnet((32, 64, 128), (1, 1, 1)),
    "cifar_resnet_tiny": _cifar_resnet((16, 32, 64), (1, 1, 1)),
    "cifar_resnet18": _cifar_resnet((64, 128, 256, 512), (2, 2, 2, 2)),
    "resnet18": _keras_hub_resnet((2, 2, 2, 2), "basic_block"),
    "resnet50": _keras_hub_resnet((3, 4, 6, 3), "bottleneck_block"),
    # The masked image models' CPU default: 8×8 patches of any image (2-px
    # patches of the 16×16 digits), 4 blocks of width 64.
    "vit_tiny": _vit(64, 4, 4),
    # ViT-S/16, DINO's encoder.
    "vit_small16": _vit(384, 12, 6, patch_size=16),
    # ViT-B/16 (Dosovitskiy et al.), the MAE and BEiT papers' encoder.
    "vit_base16": _vit(768, 12, 12, patch_size=16),
    # ViT-B/32, CLIP's ViT-B/32 image encoder.
    "vit_base32": _vit(768, 12, 12, patch_size=32),
}


def build_backbone(name, image_shape, init_preset=None, verbose=False):
    """A backbone by name (see `BACKBONES`): random, or initialised from
    `init_preset`, a keras-hub preset directory on disk of the same
    architecture (`keras_ssl.backbones.initialize_from_preset`; a "vit_*"
    backbone is then built with learned positions, as keras-hub's ViT has,
    so that it starts as exactly the preset's network). `verbose` prints
    what was copied."""
    if name not in BACKBONES:
        raise ValueError(
            f"unknown backbone {name!r}: expected one of {sorted(BACKBONES)}"
        )
    if init_preset is None:
        return BACKBONES[name](tuple(image_shape))
    from keras_ssl.backbones.from_keras_hub import (
        backbone_options_for_preset,
        initialize_from_preset,
    )

    options = {}
    if name.startswith("vit_"):
        options = backbone_options_for_preset(init_preset)
    backbone = BACKBONES[name](tuple(image_shape), **options)
    report = initialize_from_preset(backbone, init_preset)
    if verbose:
        print(report)
    return backbone


assert set(BACKBONES) == set(VISION_BACKBONES), "configs.VISION_BACKBONES names them"


def total_steps(config, steps_per_epoch):
    """Optimizer steps of a run: `config.steps`, else epochs × steps/epoch."""
    return int(config.steps or config.epochs * steps_per_epoch)


def make_vision_optimizer(config, steps_per_epoch):
    """The config's optimizer, with linear warmup and cosine decay over the
    run (`total_steps`)."""
    return make_optimizer(
        config.optimizer, config.learning_rate,
        total_steps(config, steps_per_epoch),
        warmup_steps=config.warmup_epochs * steps_per_epoch,
        weight_decay=config.weight_decay, beta_2=config.beta_2,
    )


# --- views: the tf.data pipeline of each method, from the config -------------
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
        images, _simclr_augmentation(config, image_size),
        batch_size=config.batch_size, seed=config.seed, repeat=True,
    )


def _byol_views(config, images, image_size):
    """BYOL's asymmetric pair (solarize 0 / 0.2, and blur 1.0 / 0.1 when
    `config.blur_p > 0`) on the config's crops and colour distortion. The
    paper's blur sigma, sized for 224-px images, erases 16-px digits."""
    augment = byol_augmentations(
        image_size,
        crop_scale=tuple(config.crop_scale),
        blur_p=(1.0, 0.1) if config.blur_p > 0 else (0.0, 0.0),
        jitter_strength=config.jitter_strength,
        grayscale_p=config.grayscale_p,
    )
    return multi_view_dataset(
        images, augment, batch_size=config.batch_size, seed=config.seed, repeat=True
    )


def _multi_crop_views(config, images, image_size):
    """DINO's global and local crops (sizes, scales and count from the
    config; blur and solarization as the paper)."""
    augmentation = dino_multicrop(
        global_size=int(image_size),
        local_size=int(config.local_crop_size or max(1, int(image_size) // 2)),
        num_local_crops=int(config.num_local_crops),
        global_scale=tuple(config.crop_scale),
        local_scale=tuple(config.local_crop_scale),
        jitter_strength=config.jitter_strength,
        grayscale_p=config.grayscale_p,
    )
    return multi_crop_dataset(
        images, augmentation, batch_size=config.batch_size, seed=config.seed, repeat=True
    )


def _single_crops(config, images, image_size):
    """One view per image: MAE's and BEiT's crop-and-flip augmentation."""
    return multi_view_dataset(
        images,
        mae_augmentation(image_size, crop_scale=tuple(config.crop_scale)),
        num_views=1, batch_size=config.batch_size, seed=config.seed, repeat=True,
    )


# --- methods: the class, with the options the preset names --------------------
def _build_simclr(config, encoder, steps_per_epoch, images):
    return SimCLR(encoder, temperature=config.temperature, **config.method_options)


def _build_moco(config, encoder, steps_per_epoch, images):
    from keras_ssl.models import MoCo

    return MoCo(encoder, temperature=config.temperature, **config.method_options)


def _build_byol(config, encoder, steps_per_epoch, images):
    from keras_ssl.models import BYOL

    return BYOL(encoder, total_steps=total_steps(config, steps_per_epoch),
                **config.method_options)


def _build_dino(config, encoder, steps_per_epoch, images):
    """DINO on a free-size copy of `encoder` when it takes local crops (they
    are smaller than the global ones); the teacher-temperature warmup given
    in epochs becomes steps."""
    from keras_ssl.models import DINO

    encoder, options = _multi_crop_setup(
        config, encoder, steps_per_epoch,
        {"warmup_teacher_temp_epochs": "warmup_teacher_temp_steps"},
    )
    return DINO(
        encoder, num_local_crops=int(config.num_local_crops),
        total_steps=total_steps(config, steps_per_epoch), **options,
    )


def _build_from_options(config, encoder, steps_per_epoch, images):
    """The config's method class (`METHODS[method].model`) on `encoder`
    with the preset's options alone (SimSiam, Barlow Twins, VICReg)."""
    from keras_ssl import models

    return getattr(models, METHODS[config.method].model)(
        encoder, **config.method_options)


def _multi_crop_setup(config, encoder, steps_per_epoch, epochs_to_steps):
    """`(encoder, options)` of a multi-crop method: a free-size copy of
    `encoder` when there are local crops (smaller than the global ones), and
    the method options with each option given in epochs (a key of
    `epochs_to_steps`) replaced by its option in steps."""
    from keras_ssl.models.ssl_model import with_free_image_size

    options = dict(config.method_options)
    for epochs, steps in epochs_to_steps.items():
        options.setdefault(steps, int(options.pop(epochs, 0) * steps_per_epoch))
    if config.num_local_crops:
        encoder = with_free_image_size(encoder)
    return encoder, options


def _build_swav(config, encoder, steps_per_epoch, images):
    """SwAV; the queue's start and the prototypes' freeze given in epochs
    become steps."""
    from keras_ssl.models.swav import SwAV

    encoder, options = _multi_crop_setup(
        config, encoder, steps_per_epoch,
        {"queue_start_epochs": "queue_start_step",
         "freeze_prototypes_epochs": "freeze_prototypes_steps"},
    )
    return SwAV(encoder, num_local_crops=int(config.num_local_crops),
                temperature=config.temperature, **options)


def _build_mae(config, encoder, steps_per_epoch, images):
    from keras_ssl.models import MAE

    return MAE(encoder, seed=config.seed, **config.method_options)


def _build_beit(config, encoder, steps_per_epoch, images):
    """BEiT: trains its VQ tokenizer on `images` first (stage 1)."""
    from keras_ssl.models import BEiT
    from keras_ssl.models.vq_tokenizer import train_vq_tokenizer

    if images is None:
        raise ValueError("BEiT trains its tokenizer first: pass the images")
    options = dict(config.method_options)
    tokenizer = train_vq_tokenizer(
        images, encoder.patch_size, epochs=options.pop("tokenizer_epochs"),
        image_size=encoder.input_shape[1],
        seed=config.seed, **(options.pop("tokenizer_options", None) or {}),
    )
    return BEiT(encoder, tokenizer, seed=config.seed, **options)


def preview_images(data, count=8):
    """The first `count` held-out images of `data` (unlabelled ones for an
    unlabelled stream), float32 in [0, 1], for pictures."""
    if not is_streamed(data):
        return np.asarray(data.x_test[:count], "float32")
    source = data.test if data.test is not None else data.unlabeled
    source = source.resized(data.image_size)
    return source.sample(count).astype("float32") / 255.0


def _mae_artifacts(model, data, out):
    from keras_ssl.evaluation import plot_image_rows

    images = preview_images(data)
    masked, reconstructed = model.reconstruct(images)
    plot_image_rows(
        {"original": images, "masked (75%)": masked,
         "reconstruction": reconstructed},
        out / "reconstructions.png",
        title=f"MAE on {data.name}: held-out images",
    )
    return ["reconstructions.png"]


def _beit_artifacts(model, data, out):
    from keras_ssl.evaluation import plot_image_rows

    images = preview_images(data)
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
    return [DINOCollapseMonitor()]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the engine builds one vision method and the views it trains on.

    Attributes:
        build: `(config, encoder, steps_per_epoch, images) → SSLModel`;
            `images` are the unlabelled training images (BEiT trains its
            tokenizer on them first).
        views: `(config, images, image_size) → tf.data.Dataset` of views.
        callbacks: `() → list` of Keras callbacks the method trains with
            (e.g. DINO's collapse monitor, which warns in the log).
        artifacts: optional `(model, data, out_dir) → list of file names`
            written after training (e.g. MAE's reconstructions).
    """

    build: Callable
    views: Callable
    callbacks: Callable = list
    artifacts: Callable | None = None


# Vision method → how to build it and its views. The settings are the
# config's, from the method's presets (`keras_ssl.recipes.presets`).
RECIPES = {
    "simclr": Recipe(_build_simclr, _two_views),
    "moco": Recipe(_build_moco, _two_views),
    "byol": Recipe(_build_byol, _byol_views),
    "dino": Recipe(_build_dino, _multi_crop_views, callbacks=_dino_callbacks),
    "simsiam": Recipe(_build_from_options, _two_views),
    "barlow_twins": Recipe(_build_from_options, _byol_views),
    "vicreg": Recipe(_build_from_options, _byol_views),
    "swav": Recipe(_build_swav, _multi_crop_views),
    "mae": Recipe(_build_mae, _single_crops, artifacts=_mae_artifacts),
    "beit": Recipe(_build_beit, _single_crops, artifacts=_beit_artifacts),
}
assert tuple(RECIPES) == methods_of("vision"), "one recipe per vision method"


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
    end to end on the labelled split (`fine_tune_accuracy`, in-memory data
    only). Streamed data is read in batches; unlabelled streams give `{}`.

    With `fine_tune_epochs > 0` (the masked image models' recipes) and a
    ViT encoder (one with Transformer blocks,
    `keras_ssl.evaluation.transformer_blocks`), in-memory data also gets the
    layer probe (`keras_ssl.evaluation.probe_layers`): the same k-NN and
    linear probe of each block's token-averaged output, reported for the
    block with the best linear probe as `best_layer_probe_accuracy`,
    `best_layer_knn_accuracy` and `best_layer` (its 1-based index: block 1
    is the first after the patch embedding; the last block's output is taken
    before the encoder's final layer norm)."""
    if is_streamed(data):
        if not data.labelled:
            return {}
        train, y_train = extract_features_and_labels(encoder, data.train.batches(batch_size))
        test, y_test = extract_features_and_labels(encoder, data.test.batches(batch_size))
        return feature_scores(train, y_train, test, y_test, data.num_classes)
    train = extract_features(encoder, data.x_train, batch_size=batch_size)
    test = extract_features(encoder, data.x_test, batch_size=batch_size)
    scores = feature_scores(train, data.y_train, test, data.y_test, data.num_classes)
    if fine_tune_epochs and transformer_blocks(encoder):
        scores.update(probe_layers(
            encoder, data.x_train, data.y_train, data.x_test, data.y_test,
            num_classes=data.num_classes, batch_size=batch_size,
        ).scores())
    if fine_tune_epochs:
        scores["fine_tune_accuracy"] = fine_tune_accuracy(
            encoder, data.x_train, data.y_train, data.x_test, data.y_test,
            epochs=fine_tune_epochs, seed=seed,
        )
    return scores


def raw_pixel_scores(data):
    """The same k-NN and linear probe on raw pixels: the floor to beat."""
    flat = lambda x: np.asarray(x, "float32").reshape(len(x), -1)  # noqa: E731
    return feature_scores(flat(data.x_train), data.y_train, flat(data.x_test),
                           data.y_test, data.num_classes)


@dataclasses.dataclass
class PretrainResult:
    """What `pretrain` returns: the trained model and its measurements."""

    model: keras.Model
    history: dict
    # knn_accuracy / linear_probe_accuracy (/ fine_tune_accuracy, and for a
    # ViT best_layer_probe_accuracy / best_layer_knn_accuracy / best_layer)
    # of the trained encoder: see evaluate_representation
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
        data: a `keras_ssl.data.ImageData` (see `load_image_data`), or
            streamed images, `keras_ssl.data.image_files.ImageStreamData`
            (see `stream_image_data`): read, decoded and augmented batch by
            batch, scored on its labelled splits if it has them.
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
    image_shape = tuple(data.image_shape)
    unlabeled = data.unlabeled if is_streamed(data) else data.x_unlabeled
    views = make_views(config, unlabeled, image_shape[0])
    steps_per_epoch = len(unlabeled) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch size {config.batch_size} is larger than the "
            f"{len(unlabeled)} unlabelled images"
        )
    epochs, fit_steps, stop = fit_schedule(
        total_steps(config, steps_per_epoch), steps_per_epoch)

    random_init_scores = None
    if baseline and (not is_streamed(data) or data.labelled):
        random_init_scores = evaluate_representation(
            build_backbone(config.backbone, image_shape), data,
            fine_tune_epochs=config.fine_tune_epochs, seed=config.seed,
        )
        keras.utils.set_random_seed(config.seed)

    backbone = build_backbone(
        config.backbone, image_shape, config.init_preset, verbose=bool(verbose)
    )
    model = make_method(config, backbone, steps_per_epoch, images=unlabeled)
    model.compile(optimizer=make_vision_optimizer(config, steps_per_epoch))
    monitor = None
    if not is_streamed(data):
        monitor = KNNMonitor(
            data.x_train, data.y_train, data.x_test, data.y_test,
            every_n_epochs=config.knn_every, verbose=0,
        )
    elif data.labelled:  # features of the labelled splits, batch by batch
        monitor = KNNMonitor(
            data.train.batches(256), data.test.batches(256),
            every_n_epochs=config.knn_every, num_classes=data.num_classes,
            verbose=0,
        )
    # StopAtStep after a ResumableBackup among `callbacks`: it counts from the
    # restored step.
    all_callbacks = [*([monitor] if monitor else []),
                     *RECIPES[config.method].callbacks(), *callbacks, *stop]
    if time_budget:
        all_callbacks.append(TimeBudget(time_budget))
    from keras_ssl.callbacks import ResumableBackup

    if backup_dir:
        all_callbacks.append(ResumableBackup(backup_dir, save_freq=backup_freq))
    if not model.built:
        # Built before fit: a backup restores into a built model, and an
        # unbuilt one would make the TensorFlow trainer take its first batch
        # from the training stream to build it (a resumed run, built, would
        # then read other batches than an uninterrupted one).
        for batch in views.take(1):
            model(batch[0])
    start = time.perf_counter()
    history = model.fit(
        views,  # endless: the same stream from every iterator (exact resume)
        epochs=epochs,
        steps_per_epoch=fit_steps,
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
        knn_epochs=list(monitor.evaluated_epochs) if monitor else [],
    )
