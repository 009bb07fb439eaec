"""keras-ssl: self-supervised learning for Keras 3.

One definition of each method trains under TensorFlow, JAX and PyTorch with
`model.fit` on `tf.data` pipelines.

`import keras_ssl` registers every keras-ssl class with Keras and keras-hub,
so `keras.saving.load_model` and keras-hub's `from_preset` load keras-ssl
models, backbones and presets in a fresh process. Keras reads its backend at
that import (`KERAS_BACKEND`, else TensorFlow). The one exception is the
`keras-ssl` command (and `python -m keras_ssl.cli`), which chooses the backend
from its arguments: there the submodules load on first use, after the choice.

Submodules:

    keras_ssl.models      SSLModel (the shared trainer), SimCLR, MoCo, MoCoV3,
                          BYOL, DINO, SimSiam, BarlowTwins, VICReg, SwAV,
                          MAE, BEiT, VQTokenizer, CLIP,
                          MaskedLanguageModel (BERT, RoBERTa),
                          CausalLanguageModel (GPT), T5SpanCorruption (T5),
                          Wav2Vec2, Wav2Vec2CTC (speech)
    keras_ssl.losses      nt_xent_loss, ...
    keras_ssl.layers      MLPHead, VectorQuantizer
    keras_ssl.backbones   CIFARResNetBackbone, ViTBackbone, Wav2Vec2Backbone
    keras_ssl.optimizers  LARS, warmup_cosine_schedule
    keras_ssl.data        load_image_data, SimCLRAugmentation, multi_view_dataset
    keras_ssl.datasets    load_cluttered_digits (embedded data)
    keras_ssl.evaluation  k-NN, linear probe, KNNMonitor, plot_history
    keras_ssl.training    pretrain, PretrainConfig
    keras_ssl.load_model  keras.saving.load_model with our classes registered
    keras_ssl.language    pretrain_language, LanguageConfig (BERT, RoBERTa,
                          GPT, T5 on text)
    keras_ssl.speech      pretrain_wav2vec2, finetune_ctc, SpeechConfig
                          (wav2vec 2.0 and CTC on speech)
"""

import importlib
import os
import sys

__version__ = "0.1.0"

_SUBMODULES = (
    "applications",
    "backbones",
    "callbacks",
    "data",
    "datasets",
    "distribution",
    "evaluation",
    "language",
    "layers",
    "losses",
    "models",
    "optimizers",
    "speech",
    "training",
)
# Most used names, re-exported from their submodules.
_NAMES = {
    "SSLModel": "models",
    "SimCLR": "models",
    "MoCo": "models",
    "MoCoV3": "models",
    "BYOL": "models",
    "DINO": "models",
    "SimSiam": "models",
    "BarlowTwins": "models",
    "VICReg": "models",
    "SwAV": "models",
    "MAE": "models",
    "BEiT": "models",
    "VQTokenizer": "models",
    "CLIP": "models",
    "MaskedLanguageModel": "models",
    "CausalLanguageModel": "models",
    "T5SpanCorruption": "models",
    "Wav2Vec2": "models",
    "Wav2Vec2CTC": "models",
    "Wav2Vec2Backbone": "backbones",
    "CIFARResNetBackbone": "backbones",
    "CIFARResNetImageClassifier": "backbones",
    "ViTBackbone": "backbones",
    "LARS": "optimizers",
}


def load_model(filepath, **kwargs):
    """`keras.saving.load_model` with every keras-ssl class registered.

    Keras only imports its own packages while loading; a `.keras` file of a
    keras-ssl model, backbone or head loaded in a fresh process needs our
    classes registered first, which this does by loading every submodule
    (they load lazily, see above). Keyword arguments go to
    `keras.saving.load_model`.

    Example:

    ```python
    import keras_ssl
    model = keras_ssl.load_model("runs/bert-python_docs/model.keras")
    ```
    """
    register_classes()
    import keras

    return keras.saving.load_model(filepath, **kwargs)


def register_classes():
    """Imports every submodule (they load lazily), so that Keras and
    keras-hub find every keras-ssl class by name when they load a `.keras`
    file or a preset directory in a fresh process."""
    for submodule in _SUBMODULES:
        importlib.import_module(f"keras_ssl.{submodule}")


def _started_as_command():
    """Whether this process is the `keras-ssl` command or `python -m
    keras_ssl.cli`: they pick the Keras backend from their own arguments,
    so nothing may import Keras before they parse them."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if script.split(".")[0] == "keras-ssl":  # the console script (.exe on Windows)
        return True
    argv = list(getattr(sys, "orig_argv", ()))
    return any(flag == "-m" and module == "keras_ssl.cli"
               for flag, module in zip(argv, argv[1:]))


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_ssl.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"keras_ssl.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'keras_ssl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + list(_NAMES))


if not _started_as_command():
    register_classes()
