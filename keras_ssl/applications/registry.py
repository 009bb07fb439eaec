"""The registry of applications: `list()`, `get(name)` and `Application`."""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import pathlib
import time
from typing import Any

WEIGHTS_DIR = pathlib.Path(__file__).parent / "weights"
# The file a built application writes next to its preset: the recipe, the
# command, the backend, the time and the scores of the run that made it.
RECORD = "keras_ssl_application.json"


@dataclasses.dataclass
class Pretrained:
    """What `Application.pretrain` returns."""

    backbone: Any  # the pretrained keras-hub Backbone
    tokenizer: Any  # its tokenizer (language), else None
    result: Any  # the method's own result (PretrainResult, LanguageResult, ...)
    seconds: float
    config: Any = None  # the recipe it ran

    def save(self, directory, record=None):
        """Writes the backbone (and tokenizer) as a keras-hub preset
        directory (`keras_ssl.backbones.save_preset`: with the image
        converter or text preprocessor keras-hub's tasks load), and `record`
        as JSON beside it."""
        from keras_ssl.backbones import save_preset

        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        save_preset(self.backbone, directory, self.tokenizer)
        if record is not None:
            with open(os.path.join(directory, RECORD), "w") as f:
                json.dump(record, f, indent=2, default=str)
        return directory


def _scores(result):
    """The measurements a run's result carries, for the record."""
    return {"scores": {row: {k: v for k, v in values.items()
                             if isinstance(v, (int, float, str))}
                       for row, values in result.scores.items()}}


_MODALITY = {"vision": "vision", "image_text": "image-text",
             "language": "language", "speech": "speech"}


@dataclasses.dataclass(frozen=True)
class Application:
    """One pretraining recipe (a method's preset, with overrides) and the
    backbone it produces.

    Attributes:
        name: the registry key.
        method: the method (a key of `keras_ssl.recipes.METHODS`).
        preset: the method's preset the recipe starts from.
        backbone: the architecture, in words.
        data: what it pretrains on.
        summary: what the recipe is, in a sentence.
        overrides: values that replace the preset's (the shipped weights'
            run), as `keras-ssl pretrain METHOD --set KEY=VALUE` would.
        embedded: whether its weights ship with the package.
        backend: the backend the shipped weights were trained with (they
            load on every backend).

    Example:

    ```python
    import keras, keras_ssl
    app = keras_ssl.applications.get("simclr_digits")
    config = app.recipe(epochs=5)        # the recipe, with overrides
    run = app.pretrain(epochs=5)         # reruns it on the embedded digits
    run.backbone.summary()
    backbone = app.load()                # the shipped pretrained backbone
    ```
    """

    name: str
    method: str
    preset: str
    backbone: str
    data: str
    summary: str
    overrides: dict = dataclasses.field(default_factory=dict)
    embedded: bool = False
    backend: str = "tensorflow"

    @property
    def modality(self):
        """`"vision"`, `"language"`, `"speech"` or `"image-text"`."""
        from keras_ssl import recipes

        return _MODALITY[recipes.METHODS[self.method].family]

    # --- the recipe -----------------------------------------------------
    def recipe(self, **overrides):
        """The recipe's config (`PretrainConfig`, `LanguageConfig`,
        `SpeechConfig` or `ClipConfig`): the preset with the application's
        and then these `overrides`."""
        from keras_ssl import recipes

        return recipes.make_config(self.method, self.preset,
                                   {**self.overrides, **overrides})

    @property
    def weights(self):
        """The shipped preset directory, or None (paper recipes)."""
        if not self.embedded:
            return None
        return WEIGHTS_DIR / self.name

    @property
    def command(self):
        """The command that (re)produces the shipped weights, or trains the
        paper recipe."""
        if self.embedded:
            return (f"KERAS_BACKEND={self.backend} python -m keras_ssl.applications "
                    f"{self.name}")
        sets = "".join(f" --set {k}={v!r}" for k, v in self.overrides.items())
        return (f"keras-ssl pretrain {self.method} --preset {self.preset}{sets} "
                "--dataset <your data>")

    @property
    def record(self):
        """What the run that made the shipped weights wrote: recipe, command,
        backend, minutes and scores (a dict; empty for paper recipes)."""
        if self.weights is None or not (self.weights / RECORD).exists():
            return {}
        return json.loads((self.weights / RECORD).read_text())

    # --- running it -----------------------------------------------------
    def pretrain(self, data=None, verbose="auto", **overrides):
        """Runs the recipe (with `overrides`) on `data` (default: the
        embedded data of the method) and returns a `Pretrained` with the
        backbone, its tokenizer (language) and the engine's `RunResult`."""
        from keras_ssl import recipes

        config = self.recipe(**overrides)
        start = time.perf_counter()
        result = recipes.run(self.method, self.preset, data=data, config=config,
                             verbose=verbose, evaluate=False)
        return Pretrained(result.encoder, result.tokenizer, result,
                          time.perf_counter() - start, config)

    def load(self, preset=None):
        """The pretrained backbone: the shipped weights, or the keras-hub
        preset directory `preset` (yours, or a keras-hub preset you have
        locally). Returns a `keras_hub.models.Backbone`."""
        import keras_hub

        import keras_ssl

        keras_ssl.register_classes()
        return keras_hub.models.Backbone.from_preset(self._preset(preset))

    def load_tokenizer(self, preset=None):
        """The tokenizer saved with a language application's backbone."""
        import keras_hub

        if self.modality != "language":
            raise ValueError(f"{self.name} is a {self.modality} application: "
                             "it has no tokenizer.")
        return keras_hub.tokenizers.Tokenizer.from_preset(self._preset(preset))

    def _preset(self, preset):
        if preset is not None:
            return os.fspath(preset)
        if self.weights is None:
            raise ValueError(
                f"{self.name!r} is a full-size paper recipe: keras-ssl ships no "
                "weights for it and downloads nothing. Pretrain it on your data "
                f"({self.command}, or app.pretrain(data)), or pass "
                "load(preset=PATH) with a keras-hub preset directory you have. "
                "Applications with shipped weights: "
                f"{', '.join(a.name for a in _REGISTRY.values() if a.embedded)}."
            )
        if not (self.weights / "config.json").exists():
            raise FileNotFoundError(
                f"The shipped weights of {self.name!r} are missing from "
                f"{self.weights}; rebuild them with: {self.command}")
        return os.fspath(self.weights)

    def build(self, out=None, data=None, verbose="auto", **overrides):
        """Pretrains (on `data`, default the embedded data) and writes the
        preset (default: the shipped weights' folder) with a record of the
        run; returns the `Pretrained`."""
        import keras

        run = self.pretrain(data, verbose=verbose, **overrides)
        record = {
            "application": self.name,
            "command": self.command,
            "backend": keras.backend.backend(),
            "method": self.method,
            "preset": self.preset,
            "recipe": dataclasses.asdict(run.config),
            "train_minutes": round(run.seconds / 60, 2),
            "parameters": int(run.backbone.count_params()),
            **_scores(run.result),
        }
        run.save(out or self.weights, record)
        return run


# --- the entries --------------------------------------------------------------
_ENTRIES = [
    # Embedded: weights ship with the package (the preset, with the
    # overrides of the run that made them).
    Application(
        "simclr_digits", "simclr", "embedded",
        "CIFARResNetBackbone (16-32-64, 1 block each)",
        "the embedded cluttered digits (16×16)",
        "SimCLR, NT-Xent over two strongly augmented views, AdamW, 60 epochs.",
        # The SimCLR recipe of the run that made the weights (the preset
        # has since moved to batch 128, tau 0.2 and a 256 -> 64 projection).
        overrides={"epochs": 60, "knn_every": 20, "batch_size": 256,
                   "temperature": 0.5,
                   "method_options": {"projection_dim": 128,
                                      "projection_hidden_dims": None}},
        embedded=True),
    Application(
        "gpt_python_docs", "gpt", "embedded",
        "keras-hub GPT2Backbone, 2 layers × 64, byte-level BPE of 2,000",
        "CPython's language reference and standard-library docstrings",
        "GPT next-token prediction, 2,000 AdamW steps of 32 × 128 tokens.",
        overrides={"steps": 2000}, embedded=True),
    Application(
        "roberta_python_docs", "roberta", "embedded",
        "keras-hub RobertaBackbone, 2 layers × 64, byte-level BPE of 2,000",
        "CPython's language reference and standard-library docstrings",
        "RoBERTa masked LM (dynamic masks, full sentences, no NSP), 2,500 "
        "AdamW steps of 32 × 128 tokens.",
        embedded=True),
    Application(
        "wav2vec2_speech", "wav2vec2", "embedded",
        "Wav2Vec2Backbone: 7 convolutions of 64 channels, 4 Transformer "
        "layers × 96",
        "the embedded spoken corpus (60 unlabelled minutes of eSpeak NG speech)",
        "wav2vec 2.0, masked latent spans, contrastive + diversity loss, 3,000 "
        "AdamW steps of 8 utterances.",
        embedded=True, backend="torch"),
    Application(
        "clip_digits", "clip", "embedded",
        "CIFARResNetBackbone image encoder (the image side of CLIP; the text "
        "encoder is not shipped)",
        "the embedded captioned digits",
        "CLIP, symmetric contrastive loss over 5,384 image-caption pairs, 20 epochs.",
        overrides={"epochs": 20}, embedded=True),
    # Paper recipes: the methods' paper presets; no weights, nothing downloaded.
    *[
        Application(name, method, "paper", backbone, data, summary)
        for name, method, backbone, data, summary in [
            ("simclr_resnet50_imagenet", "simclr", "ResNet-50", "ImageNet",
             "SimCLR: batch 4096, LARS 4.8, τ 0.1, 100 epochs."),
            ("moco_resnet50_imagenet", "moco", "ResNet-50", "ImageNet",
             "MoCo v2: queue 65,536, momentum 0.999, τ 0.2, SGD, 200 epochs."),
            ("byol_resnet50_imagenet", "byol", "ResNet-50", "ImageNet",
             "BYOL: predictor, EMA 0.996 → 1, LARS, 300 epochs."),
            ("dino_resnet50_imagenet", "dino", "ResNet-50 (the paper's ViT-S/16 "
             "recipe)", "ImageNet",
             "DINO: 2 × 224 + 10 × 96 crops, centering, teacher 0.04 → 0.07, "
             "EMA 0.996 → 1, AdamW, 100 epochs."),
            ("simsiam_resnet50_imagenet", "simsiam", "ResNet-50", "ImageNet",
             "SimSiam: predictor, stop-gradient, SGD 0.1, batch 512, 100 epochs."),
            ("barlow_twins_resnet50_imagenet", "barlow_twins", "ResNet-50",
             "ImageNet", "Barlow Twins: projector 8192 × 3, λ 5e-3, LARS, batch "
             "2048, 1000 epochs."),
            ("vicreg_resnet50_imagenet", "vicreg", "ResNet-50", "ImageNet",
             "VICReg: expander 8192 × 3, weights 25 / 25 / 1, LARS, batch 2048, "
             "1000 epochs."),
            ("swav_resnet50_imagenet", "swav", "ResNet-50", "ImageNet",
             "SwAV: 2 × 224 + 6 × 96 crops, 3,000 prototypes, queue 3,840, "
             "batch 256, 400 epochs."),
            ("mae_vit_b16_imagenet", "mae", "ViT-B/16", "ImageNet",
             "MAE: 75% masking, 8-block decoder, 800 epochs."),
            ("beit_vit_b16_imagenet", "beit", "ViT-B/16", "ImageNet",
             "BEiT: 40% blockwise masking, visual tokens of a VQ tokenizer "
             "(8,192 codes)."),
            ("bert_base", "bert", "BERT-base (12 × 768)",
             "BooksCorpus + Wikipedia (your text)",
             "MLM 15% (80/10/10) + NSP, 1 M steps of 256 × 512."),
            ("roberta_base", "roberta", "RoBERTa-base (12 × 768)", "your text",
             "MLM, dynamic masks, FULL-SENTENCES, batch 8 k."),
            ("gpt2_small", "gpt", "GPT-2 small (12 × 768)", "your text",
             "Next-token prediction, 1,024 tokens."),
            ("t5_small", "t5", "T5-small", "C4 (your text)",
             "Span corruption 15%, mean span 3."),
            ("wav2vec2_base", "wav2vec2", "wav2vec 2.0 BASE (95 M)",
             "LibriSpeech 960 h (your audio)",
             "Masked spans p 0.065 M 10, 100 distractors, G 2 × V 320."),
            ("clip_vit_b32", "clip", "ViT-B/32 + 12-layer text Transformer",
             "image-text pairs (your data)", "CLIP: batch 32,768, 32 epochs."),
        ]
    ],
]
_REGISTRY = {app.name: app for app in _ENTRIES}


def list(modality=None, embedded=None):  # noqa: A001  (keras_ssl.applications.list)
    """Names of the applications, optionally of one `modality` or only
    those with (`embedded=True`) or without shipped weights."""
    return [
        app.name for app in _REGISTRY.values()
        if (modality is None or app.modality == modality)
        and (embedded is None or app.embedded == embedded)
    ]


def get(name):
    """The `Application` called `name` (see `list()`)."""
    if name not in _REGISTRY:
        raise KeyError(
            f"No application {name!r}. Known: {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[name]


def _all():
    return builtins.list(_REGISTRY.values())
