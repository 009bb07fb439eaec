"""The registry of applications: `list()`, `get(name)` and `Application`."""

from __future__ import annotations

import builtins
import dataclasses
import importlib.util
import json
import os
import pathlib
import time
from typing import Any, Callable

WEIGHTS_DIR = pathlib.Path(__file__).parent / "weights"
# The paper recipes live in the repository's applications/ scripts (one
# file per method, each runnable); the registry reads them from there.
SCRIPTS_DIR = pathlib.Path(__file__).resolve().parents[2] / "applications"
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
        directory, and `record` as JSON beside it."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        self.backbone.save_to_preset(directory)
        if self.tokenizer is not None:
            self.tokenizer.save_to_preset(directory)
        if record is not None:
            with open(os.path.join(directory, RECORD), "w") as f:
                json.dump(record, f, indent=2, default=str)
        return directory


# --- what each modality runs ------------------------------------------------
def _pretrain_vision(config, data, verbose):
    from keras_ssl.data import load_image_data
    from keras_ssl.training import pretrain

    data = data if data is not None else load_image_data("digits")
    result = pretrain(data, config, verbose=verbose, baseline=False)
    return result.encoder, None, result


def _pretrain_language(config, data, verbose):
    from keras_ssl.language import pretrain_language

    result = pretrain_language(data, config, verbose=verbose, downstream=False)
    return result.model.backbone, result.tokenizer, result


def _pretrain_speech(config, data, verbose):
    from keras_ssl.datasets import load_spoken_corpus
    from keras_ssl.speech import pretrain_wav2vec2

    data = data if data is not None else load_spoken_corpus()
    result = pretrain_wav2vec2(data, config, verbose=verbose)
    return result.model.encoder, None, result


def _pretrain_image_text(config, data, verbose):
    from keras_ssl.data import load_image_text_data
    from keras_ssl.image_text import pretrain_clip

    data = data if data is not None else load_image_text_data("digits")
    result = pretrain_clip(data, config, verbose=verbose)
    return result.model.image_encoder, None, result


_PRETRAIN = {
    "vision": _pretrain_vision,
    "language": _pretrain_language,
    "speech": _pretrain_speech,
    "image-text": _pretrain_image_text,
}


def _scores(result):
    """The measurements a run's result carries, for the record."""
    found = {}
    for name in ("scores", "random_init_scores"):
        value = getattr(result, name, None)
        if isinstance(value, dict):
            found[name] = {k: v for k, v in value.items()
                           if isinstance(v, (int, float, str))}
    return found


def _script_recipe(script, recipe):
    """`RECIPES[recipe]()` of `applications/<script>.py`."""
    path = SCRIPTS_DIR / f"{script}.py"
    if not path.exists():
        raise FileNotFoundError(
            f"The paper recipes are read from the repository's applications/ "
            f"folder, which this installation does not have ({path}). Install "
            "keras-ssl from a clone of the repository (pip install -e .)."
        )
    spec = importlib.util.spec_from_file_location(f"_keras_ssl_app_{script}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPES[recipe]()


@dataclasses.dataclass(frozen=True)
class Application:
    """One pretraining recipe and the backbone it produces.

    Attributes:
        name: the registry key.
        method: the method (`"simclr"`, `"gpt"`, `"wav2vec2"`, ...).
        modality: `"vision"`, `"language"`, `"speech"` or `"image-text"`.
        backbone: the architecture, in words.
        data: what it pretrains on.
        summary: what the recipe is, in a sentence.
        script: the `applications/` script holding the paper recipes.
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
    modality: str
    backbone: str
    data: str
    summary: str
    recipe_fn: Callable[[], Any] = dataclasses.field(repr=False)
    script: str = ""
    embedded: bool = False
    backend: str = "tensorflow"

    # --- the recipe -----------------------------------------------------
    def recipe(self, **overrides):
        """The recipe's config (`PretrainConfig`, `LanguageConfig`,
        `SpeechConfig` or `ClipConfig`), with `overrides` replaced."""
        config = self.recipe_fn()
        return dataclasses.replace(config, **overrides) if overrides else config

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
        return f"python applications/{self.script}.py --recipe <paper recipe> ..."

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
        embedded data of the modality) and returns a `Pretrained` with the
        backbone, its tokenizer (language) and the method's result."""
        config = self.recipe(**overrides)
        start = time.perf_counter()
        backbone, tokenizer, result = _PRETRAIN[self.modality](config, data, verbose)
        return Pretrained(backbone, tokenizer, result, time.perf_counter() - start,
                          config)

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
            "recipe": dataclasses.asdict(run.config),
            "train_minutes": round(run.seconds / 60, 2),
            "parameters": int(run.backbone.count_params()),
            **_scores(run.result),
        }
        run.save(out or self.weights, record)
        return run


# --- the entries --------------------------------------------------------------
def _simclr_digits():
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="simclr", epochs=60, knn_every=20)


def _gpt_docs():
    from keras_ssl.language import LanguageConfig

    return LanguageConfig(method="gpt", steps=2000)


def _wav2vec2_speech():
    from keras_ssl.speech import SpeechConfig

    return SpeechConfig()


def _clip_digits():
    from keras_ssl.image_text import ClipConfig

    return ClipConfig(epochs=20)


def _paper(script, recipe):
    return lambda: _script_recipe(script, recipe)


_ENTRIES = [
    # Embedded: weights ship with the package.
    Application(
        "simclr_digits", "simclr", "vision", "CIFARResNetBackbone (16-32-64, 1 block each)",
        "the embedded cluttered digits (16×16)",
        "SimCLR, NT-Xent over two strongly augmented views, AdamW, 60 epochs.",
        _simclr_digits, "simclr", embedded=True, backend="tensorflow"),
    Application(
        "gpt_python_docs", "gpt", "language",
        "keras-hub GPT2Backbone, 2 layers × 64, byte-level BPE of 2,000",
        "CPython's language reference and standard-library docstrings",
        "GPT next-token prediction, 2,000 AdamW steps of 32 × 128 tokens.",
        _gpt_docs, "gpt2", embedded=True, backend="tensorflow"),
    Application(
        "clip_digits", "clip", "image-text",
        "CIFARResNetBackbone image encoder (the image side of CLIP; the text encoder is not shipped)",
        "the embedded captioned digits",
        "CLIP, symmetric contrastive loss over 5,384 image-caption pairs, 20 epochs.",
        _clip_digits, "clip", embedded=True, backend="tensorflow"),
    # Paper recipes: no weights, nothing downloaded.
    *[
        Application(name, method, modality, backbone, data, summary,
                    _paper(script, recipe), script)
        for name, method, modality, backbone, data, summary, script, recipe in [
            ("simclr_resnet50_imagenet", "simclr", "vision", "ResNet-50", "ImageNet",
             "SimCLR: batch 4096, LARS 4.8, τ 0.1, 100 epochs.", "simclr", "imagenet"),
            ("moco_resnet50_imagenet", "moco", "vision", "ResNet-50", "ImageNet",
             "MoCo v2: queue 65,536, momentum 0.999, τ 0.2, SGD, 200 epochs.", "moco",
             "imagenet"),
            ("byol_resnet50_imagenet", "byol", "vision", "ResNet-50", "ImageNet",
             "BYOL: predictor, EMA 0.996 → 1, LARS, 300 epochs.", "byol", "imagenet"),
            ("dino_resnet50_imagenet", "dino", "vision", "ResNet-50 (the paper's "
             "ViT-S/16 needs a keras-hub ViT)", "ImageNet",
             "DINO: multi-crop, centering, sharpening, EMA teacher 0.996, AdamW, 100 epochs.", "dino",
             "imagenet"),
            ("mae_vit_b16_imagenet", "mae", "vision", "ViT-B/16", "ImageNet",
             "MAE: 75% masking, 8-block decoder, 800 epochs.", "mae", "imagenet"),
            ("beit_vit_b16_imagenet", "beit", "vision", "ViT-B/16", "ImageNet",
             "BEiT: 40% blockwise masking, visual tokens of a VQ tokenizer (8,192 codes).", "beit",
             "imagenet"),
            ("bert_base", "bert", "language", "BERT-base (12 × 768)",
             "BooksCorpus + Wikipedia (your text)",
             "MLM 15% (80/10/10) + NSP, 1 M steps of 256 × 512.", "bert", "paper"),
            ("roberta_base", "roberta", "language", "RoBERTa-base (12 × 768)",
             "your text", "MLM, dynamic masks, FULL-SENTENCES, batch 8 k.", "roberta",
             "paper"),
            ("gpt2_small", "gpt", "language", "GPT-2 small (12 × 768)", "your text",
             "Next-token prediction, 1,024 tokens.", "gpt2", "paper"),
            ("t5_small", "t5", "language", "T5-small", "C4 (your text)",
             "Span corruption 15%, mean span 3.", "t5", "paper"),
            ("wav2vec2_base", "wav2vec2", "speech", "wav2vec 2.0 BASE (95 M)",
             "LibriSpeech 960 h (your audio)",
             "Masked spans p 0.065 M 10, 100 distractors, G 2 × V 320.", "wav2vec2",
             "paper"),
            ("clip_vit_b32", "clip", "image-text", "ViT-B/32 + 12-layer text Transformer",
             "image-text pairs (your data)", "CLIP: batch 32,768, 32 epochs.", "clip",
             "paper"),
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
