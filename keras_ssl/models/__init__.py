"""Self-supervised methods, one `keras.Model` subclass each."""

from keras_ssl.models.simclr import SimCLR
from keras_ssl.models.ssl_model import (
    SSLModel,
    clone_as_target,
    cosine_schedule,
    pool_features,
)

# Method name → class, used by the CLI and the test harness.
METHODS = {"simclr": SimCLR}
