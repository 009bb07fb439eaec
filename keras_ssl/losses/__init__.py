"""Self-supervised objectives as pure `keras.ops` functions (+ Loss wrappers)."""

from keras_ssl.losses.contrastive import NTXentLoss, l2_normalize, nt_xent_loss
