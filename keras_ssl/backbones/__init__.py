"""Backbones (encoders) that keras-ssl methods pretrain, the keras-hub tasks
over them, and `save_preset` (a backbone as a keras-hub preset folder)."""

from keras_ssl.backbones.cifar_resnet import CIFARResNetBackbone
from keras_ssl.backbones.vit import ViTBackbone
from keras_ssl.backbones.wav2vec2 import Wav2Vec2Backbone
from keras_ssl.backbones.t5 import initialize_t5_embeddings, t5_backbone
from keras_ssl.backbones.from_keras_hub import (
    PresetInitReport,
    initialize_from_preset,
)
from keras_ssl.backbones.tasks import (
    CIFARResNetImageClassifier,
    CIFARResNetImageClassifierPreprocessor,
    CIFARResNetImageConverter,
    image_converter_for,
    save_preset,
)
