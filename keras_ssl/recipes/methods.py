"""The one list of the methods a user can run end to end.

Everything that names methods (the CLI, the presets, the applications,
the benchmarks, the tests) derives its names from `METHODS`. This module
imports no framework, so the CLI can check a method name before Keras
picks its backend.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Method:
    """What the recipe engine knows of a method before importing Keras.

    Attributes:
        name: the key of `METHODS`, as typed on the command line.
        family: `"vision"`, `"image_text"`, `"language"` or `"speech"`: the
            config class and the data the method trains on.
        model: the `keras_ssl.models` class it trains.
        summary: one line for `keras-ssl presets` and the CLI's help.
        backend: the backend the CLI picks when neither `--backend` nor
            `$KERAS_BACKEND` names one (measured fastest end to end on 2
            CPU cores; every method runs on all three).
    """

    name: str
    family: str
    model: str
    summary: str
    backend: str = "tensorflow"


FAMILIES = ("vision", "image_text", "language", "speech")

METHODS = {
    m.name: m
    for m in (
        Method("simclr", "vision", "SimCLR",
               "contrastive: NT-Xent over two strongly augmented views"),
        Method("moco", "vision", "MoCo",
               "contrastive: a queue of keys from a momentum encoder (v2)"),
        Method("byol", "vision", "BYOL",
               "predictor and EMA target, no negatives"),
        Method("dino", "vision", "DINO",
               "self-distillation with centering, sharpening and multi-crop"),
        Method("simsiam", "vision", "SimSiam",
               "predictor and stop-gradient, no negatives, no momentum encoder"),
        Method("barlow_twins", "vision", "BarlowTwins",
               "cross-correlation of two views pushed to the identity"),
        Method("vicreg", "vision", "VICReg",
               "invariance, variance and covariance terms on two views"),
        Method("swav", "vision", "SwAV",
               "swapped prediction of Sinkhorn cluster codes, multi-crop"),
        Method("mae", "vision", "MAE",
               "masked autoencoder: 75% of patches hidden, pixels predicted",
               backend="torch"),
        Method("beit", "vision", "BEiT",
               "masked patches predict the codes of a VQ tokenizer"),
        Method("clip", "image_text", "CLIP",
               "symmetric contrastive loss over image-caption pairs"),
        Method("bert", "language", "MaskedLanguageModel",
               "masked LM 15% (80/10/10) and next-sentence prediction"),
        Method("roberta", "language", "MaskedLanguageModel",
               "masked LM with dynamic masks over full sentences, no NSP"),
        Method("gpt", "language", "CausalLanguageModel",
               "next-token LM with generation"),
        Method("t5", "language", "T5SpanCorruption",
               "span corruption: 15% in spans of 3 replaced by sentinels"),
        Method("wav2vec2", "speech", "Wav2Vec2",
               "masked latent spans, contrastive and diversity loss",
               backend="torch"),
    )
}

# The data each family trains on when none is named (`--dataset`).
DEFAULT_DATA = {"vision": "digits", "image_text": "digits", "language": "text",
                "speech": "speech"}

# Fine-tuning tasks of `keras-ssl finetune`, with the backend the CLI picks.
FINETUNE_TASKS = {"ctc": "torch"}


def get_method(name):
    """The `Method` called `name`; a `ValueError` naming the known ones."""
    if name not in METHODS:
        raise ValueError(
            f"unknown method {name!r}: expected one of {', '.join(METHODS)}"
        )
    return METHODS[name]


def methods_of(family):
    """The names of the methods of one family, in `METHODS` order."""
    if family not in FAMILIES:
        raise ValueError(
            f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}"
        )
    return tuple(n for n, m in METHODS.items() if m.family == family)
