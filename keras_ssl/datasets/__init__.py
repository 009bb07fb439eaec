"""Datasets bundled with keras-ssl (no downloads)."""

from keras_ssl.datasets.digits import load_cluttered_digits
from keras_ssl.datasets.captioned_digits import CaptionedDigits, load_captioned_digits
