"""Optimizers and learning-rate schedules for self-supervised pretraining."""

from keras_ssl.optimizers.factory import make_optimizer
from keras_ssl.optimizers.lars import LARS
from keras_ssl.optimizers.schedules import warmup_cosine_schedule

__all__ = ["LARS", "make_optimizer", "warmup_cosine_schedule"]
