"""Self-supervised methods, one `keras.Model` subclass each."""

from keras_ssl.models.byol import BYOL
from keras_ssl.models.dino import DINO, DINOCollapseMonitor
from keras_ssl.models.simclr import SimCLR
from keras_ssl.models.ssl_model import (
    SSLModel,
    clone_as_target,
    cosine_schedule,
    pool_features,
)

# Method name → class, for the methods the CLI and the pretraining engine
# (keras_ssl.training) can run end to end. BYOL and DINO pass the shared
# harness but are not wired into the engine yet.
METHODS = {"simclr": SimCLR}
