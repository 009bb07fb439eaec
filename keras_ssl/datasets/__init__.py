"""Datasets bundled with keras-ssl (no downloads)."""

from keras_ssl.datasets.digits import load_cluttered_digits
from keras_ssl.datasets.captioned_digits import CaptionedDigits, load_captioned_digits
from keras_ssl.datasets.text_corpus import (
    TextCorpus,
    load_python_docs,
    load_text_files,
    load_tfds_text,
    split_paragraphs,
    split_sentences,
)
from keras_ssl.datasets.speech_corpus import SpeechCorpus, SpeechSplit, load_spoken_corpus
