"""Reusable layers: heads and feature pooling."""

from keras_ssl.layers.heads import MLPHead
