"""Evaluation of learned representations: k-NN, linear probe (of the final
features or of each Transformer block), fine-tuning, monitoring, zero-shot
classification and retrieval."""

from keras_ssl.evaluation.callbacks import KNNMonitor
from keras_ssl.evaluation.features import (
    extract_features,
    extract_features_and_labels,
)
from keras_ssl.evaluation.fine_tune import copy_encoder, fine_tune_accuracy
from keras_ssl.evaluation.knn import evaluate_knn, knn_accuracy, knn_predict
from keras_ssl.evaluation.layer_probe import (
    LayerProbeResult,
    block_features,
    probe_layers,
    transformer_blocks,
)
from keras_ssl.evaluation.linear_probe import (
    evaluate_linear_probe,
    linear_probe_accuracy,
)
from keras_ssl.evaluation.scores import feature_scores
from keras_ssl.evaluation.ctc_probe import ctc_probe_error_rates
from keras_ssl.evaluation.encoder_dependence import encoder_dependence
from keras_ssl.evaluation.error_rate import (
    character_error_rate,
    edit_distance,
    word_error_rate,
)
from keras_ssl.evaluation.perplexity import perplexity, unigram_perplexity
from keras_ssl.evaluation.plotting import plot_history, plot_image_rows
from keras_ssl.evaluation.text import (
    TextClassifier,
    pack_texts,
    pretraining_gain,
    text_classification_scores,
)
from keras_ssl.evaluation.zero_shot import (
    DIGIT_TEMPLATES,
    ZeroShotClassifier,
    retrieval_recall,
    zero_shot_accuracy,
)

__all__ = [
    "ctc_probe_error_rates",
    "DIGIT_TEMPLATES",
    "ZeroShotClassifier",
    "retrieval_recall",
    "zero_shot_accuracy",
    "KNNMonitor",
    "evaluate_knn",
    "evaluate_linear_probe",
    "copy_encoder",
    "extract_features",
    "extract_features_and_labels",
    "fine_tune_accuracy",
    "feature_scores",
    "knn_accuracy",
    "knn_predict",
    "linear_probe_accuracy",
    "LayerProbeResult",
    "block_features",
    "probe_layers",
    "transformer_blocks",
    "plot_history",
    "plot_image_rows",
    "perplexity",
    "unigram_perplexity",
    "TextClassifier",
    "pack_texts",
    "pretraining_gain",
    "text_classification_scores",
    "character_error_rate",
    "encoder_dependence",
    "edit_distance",
    "word_error_rate",
]
