"""Datasets bundled with keras-ssl (no downloads)."""

from keras_ssl.datasets.digits import load_cluttered_digits
