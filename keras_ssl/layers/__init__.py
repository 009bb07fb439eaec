"""Reusable layers: heads, feature pooling and vector quantisation."""

from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.layers.heads import MLPHead
from keras_ssl.layers.vector_quantizer import VectorQuantizer
