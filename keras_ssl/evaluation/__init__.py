"""Evaluation of learned representations: k-NN, linear probe, monitoring."""

from keras_ssl.evaluation.callbacks import KNNMonitor
from keras_ssl.evaluation.features import extract_features
from keras_ssl.evaluation.knn import evaluate_knn, knn_accuracy, knn_predict
from keras_ssl.evaluation.linear_probe import (
    evaluate_linear_probe,
    linear_probe_accuracy,
)
from keras_ssl.evaluation.plotting import plot_history

__all__ = [
    "KNNMonitor",
    "evaluate_knn",
    "evaluate_linear_probe",
    "extract_features",
    "knn_accuracy",
    "knn_predict",
    "linear_probe_accuracy",
    "plot_history",
]
