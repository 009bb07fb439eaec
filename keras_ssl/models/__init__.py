"""Self-supervised methods, one `keras.Model` subclass each."""

from keras_ssl.models.barlow_twins import BarlowTwins
from keras_ssl.models.beit import BEiT
from keras_ssl.models.byol import BYOL
from keras_ssl.models.causal_lm import CausalLanguageModel
from keras_ssl.models.clip import CLIP
from keras_ssl.models.dino import DINO
from keras_ssl.models.mae import MAE
from keras_ssl.models.masked_lm import MaskedLanguageModel
from keras_ssl.models.moco import MoCo, MoCoV3
from keras_ssl.models.simclr import SimCLR
from keras_ssl.models.simsiam import SimSiam
from keras_ssl.models.span_corruption import T5SpanCorruption
from keras_ssl.models.ssl_model import (
    SSLModel,
    clone_as_target,
    cosine_schedule,
    freeze,
    pool_features,
    use_batch_statistics,
    with_free_image_size,
)
from keras_ssl.models.swav import SwAV
from keras_ssl.models.vicreg import VICReg
from keras_ssl.models.vq_tokenizer import VQTokenizer
from keras_ssl.models.wav2vec2 import Wav2Vec2
from keras_ssl.models.wav2vec2_ctc import Wav2Vec2CTC

# Method name → class, every method of the library. The shared harness
# (tests/harness.py) checks that each has a case; `keras_ssl.training.RECIPES`
# holds those the CLI and the quality benchmark run end to end.
METHODS = {
    "simclr": SimCLR,
    "moco": MoCo,
    "mocov3": MoCoV3,
    "byol": BYOL,
    "dino": DINO,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "swav": SwAV,
    "mae": MAE,
    "beit": BEiT,
    "vq_tokenizer": VQTokenizer,
    "clip": CLIP,
}

# Language method name → class: each has its own test files
# (tests/models/test_masked_lm.py, test_causal_lm.py, test_span_corruption.py)
# and runs end to end through `keras_ssl.language` and the CLI.
LANGUAGE_METHODS = {
    "bert": MaskedLanguageModel,
    "roberta": MaskedLanguageModel,
    "gpt": CausalLanguageModel,
    "t5": T5SpanCorruption,
}

# Speech: wav2vec 2.0 pre-training, and CTC fine-tuning of its backbone
# (tests/models/test_wav2vec2.py, `keras_ssl.speech` and the CLI).
SPEECH_METHODS = {"wav2vec2": Wav2Vec2}
