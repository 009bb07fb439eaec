"""The configs of the four recipe families, free of any framework import.

One dataclass per family names every setting of a run: `PretrainConfig`
(the vision methods), `ClipConfig` (image-text), `LanguageConfig` and
`SpeechConfig`. Each field carries its help text in its metadata, from which
the CLI makes its flags (`--batch-size`, ...). Presets
(`keras_ssl.recipes.presets`) are values of these fields.

This module imports nothing of Keras, TensorFlow, JAX or PyTorch, so the CLI
validates a whole config before a backend is chosen.
"""

from __future__ import annotations

import dataclasses
import os

# Names of the vision backbones (`keras_ssl.training.BACKBONES` builds them;
# a test keeps the two equal).
VISION_BACKBONES = (
    "cifar_resnet_tiny",
    "cifar_resnet_small",
    "cifar_resnet18",
    "resnet18",
    "resnet50",
    "vit_tiny",
    "vit_small16",
    "vit_base16",
    "vit_base32",
)
OPTIMIZERS = ("adamw", "lars", "sgd", "adafactor")
# Zero-shot prompts for the embedded captioned digits (CLIP's prompt
# ensembling; keras_ssl.evaluation.DIGIT_TEMPLATES).
DIGIT_TEMPLATES = (
    "a {}.",
    "the digit {}.",
    "a picture of the number {}.",
    "a handwritten {}.",
    "an image showing a {}.",
)


def _f(default, help, **kwargs):  # noqa: A002  (argparse's word)
    """A dataclass field with its CLI help text."""
    if isinstance(default, dict):
        return dataclasses.field(
            default_factory=lambda: dict(default), metadata={"help": help}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def help_of(config_class, name):
    """The help text of a config field."""
    return config_class.__dataclass_fields__[name].metadata.get("help", "")


def _at_least(config, minimum, *names):
    for name in names:
        value = getattr(config, name)
        if value is not None and int(value) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _fraction(config, *names, closed=False):
    for name in names:
        value = float(getattr(config, name))
        ok = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
        if not ok:
            interval = "[0, 1]" if closed else "(0, 1)"
            raise ValueError(f"{name} must be in {interval}, got {value}")


def _scale(config, name):
    value = getattr(config, name)
    if value is None:
        return
    low, high = (float(v) for v in value)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(
            f"{name} must be (low, high) with 0 < low <= high <= 1, got {value}"
        )


def _preset_directory(config, name):
    """A keras-hub preset directory on disk, or None (nothing is downloaded)."""
    value = getattr(config, name)
    if value is None:
        return
    value = os.fspath(value)
    setattr(config, name, value)
    missing = [f for f in ("config.json", "model.weights.h5")
               if not os.path.isfile(os.path.join(value, f))]
    if missing:
        raise ValueError(
            f"{name} must be a keras-hub preset directory on disk (with "
            f"config.json and model.weights.h5, e.g. written by "
            f"save_to_preset); {value!r} "
            + ("lacks " + ", ".join(missing) if os.path.isdir(value)
               else "is not a directory")
        )


def _steps_or_epochs(config):
    """Epochs and optimizer steps: `steps`, when set, wins."""
    _at_least(config, 1, "epochs", "steps")


# --- vision -----------------------------------------------------------------
@dataclasses.dataclass
class PretrainConfig:
    """A vision method's run: backbone, views, optimisation, evaluation.

    Fields left at None take the method's `embedded` preset
    (`keras_ssl.recipes.presets`), so `PretrainConfig(method="byol")` is the
    recipe `keras-ssl pretrain byol` runs. `method_options` are the method
    class's constructor arguments (e.g. MoCo's `queue_size`); the embedded
    preset's fill in those not given.
    """

    method: str = _f("simclr", "the vision method")
    backbone: str | None = _f(None, "the encoder: " + ", ".join(VISION_BACKBONES))
    image_size: int | None = _f(None, "resize images to this side (default: as stored)")
    epochs: int | None = _f(None, "passes over the unlabelled images")
    steps: int | None = _f(None, "optimizer steps; replaces epochs when set")
    batch_size: int | None = _f(None, "images per optimizer step")
    optimizer: str | None = _f(None, "adamw, lars or sgd")
    learning_rate: float | None = _f(None, "peak learning rate, after warmup")
    weight_decay: float | None = _f(None, "weight decay")
    beta_2: float | None = _f(None, "AdamW's beta_2")
    warmup_epochs: int | None = _f(None, "epochs of linear warmup before the cosine decay")
    temperature: float | None = _f(None, "simclr, moco and swav: the softmax temperature")
    crop_scale: tuple | None = _f(None, "area fraction (low, high) of the random resized crops (DINO: the global crops)")
    jitter_strength: float | None = _f(None, "colour jitter strength s (brightness 0.8s, ..., hue 0.2s)")
    grayscale_p: float | None = _f(None, "probability of turning a view to grayscale")
    blur_p: float | None = _f(None, "probability of Gaussian blur (BYOL: > 0 turns on its 1.0 / 0.1 pair)")
    num_local_crops: int | None = _f(None, "dino and swav: small local crops per image")
    local_crop_size: int | None = _f(None, "dino and swav: side of the local crops (default: half the image)")
    local_crop_scale: tuple | None = _f(None, "dino and swav: area fraction (low, high) of the local crops")
    knn_every: int | None = _f(None, "online k-NN accuracy every N epochs")
    fine_tune_epochs: int | None = _f(None, "epochs of end-to-end fine-tuning in the evaluation (0: none)")
    init_preset: str | None = _f(None, "a keras-hub preset directory on disk whose weights initialise the backbone (keras-hub ResNet or ViT of the same architecture)")
    seed: int = _f(0, "seed of the weights, the views and the evaluation")
    method_options: dict = _f({}, "constructor arguments of the method class")

    def __post_init__(self):
        from keras_ssl.recipes.methods import methods_of
        from keras_ssl.recipes.presets import preset_values

        if self.method not in methods_of("vision"):
            raise ValueError(
                f"unknown vision method {self.method!r}: expected one of "
                f"{', '.join(methods_of('vision'))}"
            )
        embedded = preset_values(self.method, "embedded")
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is None and field.name in embedded:
                setattr(self, field.name, embedded[field.name])
        self.method_options = {
            **embedded.get("method_options", {}), **dict(self.method_options)
        }
        for name in ("crop_scale", "local_crop_scale"):
            if getattr(self, name) is not None:
                setattr(self, name, tuple(getattr(self, name)))
        if self.temperature is not None:
            if self.method not in ("simclr", "moco", "swav"):
                raise ValueError(
                    "temperature applies to simclr, moco and swav, not "
                    f"{self.method}"
                )
            if not self.temperature > 0:
                raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.backbone not in VISION_BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}: expected one of "
                f"{', '.join(VISION_BACKBONES)}"
            )
        if self.optimizer not in ("adamw", "lars", "sgd"):
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}: expected 'adamw', "
                "'lars' or 'sgd'"
            )
        _steps_or_epochs(self)
        _at_least(self, 1, "batch_size", "knn_every", "image_size")
        _at_least(self, 0, "fine_tune_epochs", "warmup_epochs")
        _fraction(self, "beta_2")
        _fraction(self, "grayscale_p", "blur_p", closed=True)
        _scale(self, "crop_scale")
        _scale(self, "local_crop_scale")
        if self.method == "dino":
            _at_least(self, 0, "num_local_crops")
            _at_least(self, 1, "local_crop_size")
        _preset_directory(self, "init_preset")


VisionConfig = PretrainConfig


# --- image-text -------------------------------------------------------------
@dataclasses.dataclass
class ClipConfig:
    """A CLIP run: the two encoders, the contrastive training, zero-shot."""

    image_backbone: str = _f("cifar_resnet_tiny", "the image encoder: " + ", ".join(VISION_BACKBONES))
    image_size: int | None = _f(None, "resize images to this side (default: as stored)")
    text_width: int = _f(64, "width of the text Transformer")
    text_layers: int = _f(2, "blocks of the text Transformer")
    text_heads: int = _f(4, "attention heads of the text Transformer")
    sequence_length: int = _f(24, "caption length in tokens")
    vocabulary_size: int = _f(1000, "size of the caption tokenizer's vocabulary")
    projection_dim: int = _f(64, "width of the joint embedding")
    epochs: int = _f(30, "passes over the image-caption pairs")
    steps: int | None = _f(None, "optimizer steps; replaces epochs when set")
    batch_size: int = _f(128, "pairs per optimizer step (the negatives of each pair)")
    learning_rate: float = _f(1e-3, "peak learning rate, after warmup")
    weight_decay: float = _f(0.1, "AdamW's weight decay")
    beta_2: float = _f(0.98, "AdamW's beta_2")
    warmup_epochs: int = _f(2, "epochs of linear warmup before the cosine decay")
    templates: tuple = _f(DIGIT_TEMPLATES, "zero-shot prompts with {} for the class name")
    init_preset: str | None = _f(None, "a keras-hub preset directory on disk whose weights initialise the image encoder (keras-hub ResNet or ViT of the same architecture)")
    seed: int = _f(0, "seed of the weights, the shuffling and the evaluation")

    def __post_init__(self):
        _steps_or_epochs(self)
        _at_least(self, 1, "batch_size", "sequence_length", "projection_dim",
                  "text_width", "text_layers", "text_heads", "vocabulary_size",
                  "image_size")
        _at_least(self, 0, "warmup_epochs")
        if self.sequence_length < 3:
            raise ValueError(
                f"sequence_length must be >= 3, got {self.sequence_length}"
            )
        if self.image_backbone not in VISION_BACKBONES:
            raise ValueError(
                f"unknown image_backbone {self.image_backbone!r}: expected one "
                f"of {', '.join(VISION_BACKBONES)}"
            )
        self.templates = tuple(self.templates)
        _preset_directory(self, "init_preset")
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise ValueError(
                "templates must each hold one {} for the class name, got "
                f"{self.templates}"
            )


# --- language ---------------------------------------------------------------
@dataclasses.dataclass
class LanguageConfig:
    """A language run: tokenizer and backbone sizes, objective, optimisation."""

    method: str = _f("bert", "the language method")
    vocabulary_size: int = _f(2000, "size of the tokenizer trained on the corpus")
    sequence_length: int = _f(128, "tokens per example")
    hidden_dim: int = _f(64, "width of the Transformer")
    num_layers: int = _f(2, "Transformer blocks")
    num_heads: int = _f(4, "attention heads")
    intermediate_dim: int = _f(256, "width of the feed-forward layers")
    dropout: float = _f(0.1, "dropout rate")
    steps: int = _f(2500, "optimizer steps")
    steps_per_epoch: int = _f(100, "steps between two log lines (Keras epochs)")
    batch_size: int = _f(32, "sequences per batch")
    learning_rate: float = _f(2e-3, "peak learning rate, after warmup")
    weight_decay: float = _f(0.01, "AdamW's weight decay")
    warmup_fraction: float = _f(0.05, "fraction of the steps in linear warmup")
    gradient_accumulation_steps: int = _f(1, "batches summed per optimizer step (1: off)")
    mask_rate: float = _f(0.15, "bert, roberta: fraction of tokens masked")
    dynamic_masking: bool = _f(True, "bert, roberta: new masks every epoch")
    noise_density: float = _f(0.15, "t5: fraction of tokens dropped in spans")
    mean_span_length: float = _f(3.0, "t5: mean length of the dropped spans")
    num_sentinels: int = _f(64, "t5: sentinel tokens in the vocabulary")
    optimizer: str = _f("adamw", "adamw or adafactor (T5's)")
    backbone_options: dict = _f({}, "extra keras-hub backbone arguments")
    downstream_classes: int = _f(16, "documents of the which-document probe")
    fine_tune_epochs: int = _f(0, "epochs of fine-tuning in the probe (0: linear probe only)")
    seed: int = _f(0, "seed of the weights, the tokenizer's data and the masks")

    def __post_init__(self):
        from keras_ssl.recipes.methods import methods_of

        if self.method not in methods_of("language"):
            raise ValueError(
                f"unknown language method {self.method!r}; expected one of "
                f"{', '.join(methods_of('language'))}"
            )
        _at_least(self, 1, "vocabulary_size", "sequence_length", "hidden_dim",
                  "num_layers", "num_heads", "intermediate_dim", "steps",
                  "steps_per_epoch", "batch_size", "gradient_accumulation_steps")
        if self.optimizer not in ("adamw", "adafactor"):
            raise ValueError(
                f"optimizer must be 'adamw' or 'adafactor', got {self.optimizer!r}"
            )
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim ({self.hidden_dim}) must be a multiple of "
                f"num_heads ({self.num_heads})"
            )

    @property
    def epochs(self):
        return max(1, -(-self.steps // self.steps_per_epoch))


# --- speech -----------------------------------------------------------------
@dataclasses.dataclass
class SpeechConfig:
    """A wav2vec 2.0 run and its CTC fine-tuning.

    Pre-training runs `curriculum_steps` on an easier task (continuous
    targets, short spans) if asked, then `steps` of the configured
    objective. The defaults are continuous targets on spans of 3, with
    which pre-training beats random init in CTC on the embedded corpus
    (docs/results/speech.md); `paper_objective` switches to the paper's
    quantized targets and spans of 10.
    """

    conv_channels: int = _f(64, "channels of the 7 feature-encoder convolutions")
    feature_norm: str = _f("group", "group (BASE) or layer (LARGE) norm in the feature encoder")
    hidden_dim: int = _f(96, "width of the Transformer")
    num_layers: int = _f(4, "Transformer blocks")
    num_heads: int = _f(4, "attention heads")
    intermediate_dim: int = _f(192, "width of the feed-forward layers")
    pos_conv_kernel: int = _f(32, "kernel of the positional convolution")
    pos_conv_groups: int = _f(4, "groups of the positional convolution")
    pos_conv_weight_norm: bool = _f(False, "weight-normalise the positional convolution")
    dropout: float = _f(0.0, "dropout rate")
    layer_norm_first: bool = _f(False, "pre-norm Transformer blocks (LARGE)")
    curriculum_steps: int = _f(0, "steps of the opening curriculum (continuous targets, short spans)")
    curriculum_mask_length: int = _f(3, "curriculum: span length")
    curriculum_mask_prob: float = _f(0.15, "curriculum: span start probability")
    steps: int = _f(3000, "optimizer steps of pre-training, after any curriculum")
    steps_per_epoch: int = _f(100, "steps between two log lines (Keras epochs)")
    batch_size: int = _f(8, "utterances per batch")
    bucket_seconds: float = _f(0.5, "utterances are padded to multiples of this many seconds")
    learning_rate: float = _f(3e-4, "peak learning rate of pre-training")
    weight_decay: float = _f(0.01, "AdamW's weight decay")
    warmup_fraction: float = _f(0.08, "fraction of the steps in linear warmup")
    num_codebooks: int = _f(2, "codebooks G of the product quantizer")
    codebook_size: int = _f(64, "entries V per codebook")
    codevector_dim: int = _f(64, "width of the quantized targets")
    final_dim: int = _f(64, "width in which the contrastive task compares")
    mask_prob: float = _f(0.15, "probability that a frame starts a masked span")
    mask_length: int = _f(3, "masked span length M in frames")
    num_negatives: int = _f(100, "distractors K per masked frame")
    diversity_weight: float = _f(0.1, "weight of the codebook diversity loss")
    feature_grad_mult: float = _f(0.1, "gradient scale into the feature encoder")
    feature_penalty_weight: float = _f(10.0, "weight of the L2 penalty on the latents")
    drop_identical_distractors: bool = _f(True, "drop distractors equal to the target")
    gumbel_noise: bool = _f(True, "Gumbel noise in the quantizer")
    quantize_targets: bool = _f(False, "quantized targets (the paper's) instead of continuous ones")
    gumbel_anneal_fraction: float = _f(0.7, "fraction of the steps over which the Gumbel temperature falls 2 → 0.5")
    finetune_steps: int = _f(4000, "CTC: optimizer steps")
    finetune_batch_size: int = _f(8, "CTC: utterances per batch")
    finetune_learning_rate: float = _f(3e-4, "CTC: peak learning rate")
    freeze_transformer_fraction: float = _f(0.1, "CTC: fraction of the steps with the Transformer frozen")
    finetune_feature_encoder: bool = _f(True, "CTC: also train the feature encoder")
    finetune_mask_prob: float = _f(0.075, "CTC: time-mask start probability")
    finetune_channel_mask_prob: float = _f(0.008, "CTC: channel-mask start probability")
    finetune_channel_mask_length: int = _f(16, "CTC: channel-mask length")
    seed: int = _f(0, "seed of the weights, the batches and the masks")

    def __post_init__(self):
        _at_least(self, 0, "curriculum_steps")
        _at_least(self, 1, "steps", "batch_size", "finetune_steps",
                  "finetune_batch_size", "hidden_dim", "num_layers",
                  "steps_per_epoch", "mask_length")
        _fraction(self, "mask_prob", "warmup_fraction", "gumbel_anneal_fraction",
                  "freeze_transformer_fraction", closed=True)
        if self.feature_norm not in ("group", "layer"):
            raise ValueError(
                f"feature_norm must be 'group' or 'layer', got {self.feature_norm!r}"
            )

    @property
    def gumbel_decay(self):
        """The per-step decay that takes τ from 2 to 0.5 in the annealing."""
        anneal = max(1.0, self.gumbel_anneal_fraction * self.steps)
        return float(0.25 ** (1.0 / anneal))


CONFIGS = {
    "vision": PretrainConfig,
    "image_text": ClipConfig,
    "language": LanguageConfig,
    "speech": SpeechConfig,
}
