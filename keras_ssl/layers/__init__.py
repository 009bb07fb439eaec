"""Reusable layers: heads and feature pooling."""

from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.layers.heads import MLPHead
