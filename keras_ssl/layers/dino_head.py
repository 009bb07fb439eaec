"""DINO's projection head: MLP → bottleneck → L2 norm → weight-normalised layer."""

import keras
from keras import ops

from keras_ssl.layers.heads import MLPHead
from keras_ssl.losses.contrastive import l2_normalize


@keras.saving.register_keras_serializable(package="keras_ssl")
class DINOHead(keras.layers.Layer):
    """The DINO head (Caron et al., 2021, appendix: "Projection head").

    "The projection head consists of a 3-layer multi-layer perceptron (MLP)
    with hidden dimension 2048 followed by ℓ2 normalization and a weight
    normalized fully connected layer with K dimensions." In the reference
    code the MLP ends in a bottleneck of 256, has GELU activations and no
    batch norm, and the last layer has no bias; its weight-norm gain g is
    fixed to 1 (`norm_last_layer=True`), so each output unit's weight vector
    is a unit vector: `W[:, k] = g_k · V[:, k] / ‖V[:, k]‖`.

    Args:
        output_dim: K, the number of output dimensions (paper: 65,536).
        hidden_dims: widths of the MLP's hidden layers (paper: 2048, 2048).
        bottleneck_dim: width of the ℓ2-normalised bottleneck (paper: 256).
        use_batch_norm: batch norm after the hidden layers (paper: False for
            ViTs).
        activation: activation of the hidden layers (paper: GELU).
        norm_last_layer: fix the weight-norm gain g to 1 (paper: True); when
            False, g is a trainable vector initialised to 1.

    Example:

    >>> import numpy as np
    >>> head = DINOHead(output_dim=32, hidden_dims=(16,), bottleneck_dim=8)
    >>> head(np.zeros((4, 12), "float32")).shape
    (4, 32)
    """

    def __init__(
        self,
        output_dim=65536,
        hidden_dims=(2048, 2048),
        bottleneck_dim=256,
        use_batch_norm=False,
        activation="gelu",
        norm_last_layer=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(output_dim) <= 0 or int(bottleneck_dim) <= 0:
            raise ValueError(
                "DINOHead widths must be positive; got "
                f"output_dim={output_dim}, bottleneck_dim={bottleneck_dim}."
            )
        self.output_dim = int(output_dim)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.bottleneck_dim = int(bottleneck_dim)
        self.use_batch_norm = bool(use_batch_norm)
        self.activation = activation
        self.norm_last_layer = bool(norm_last_layer)
        self.mlp = MLPHead(
            hidden_dims=self.hidden_dims,
            output_dim=self.bottleneck_dim,
            use_batch_norm=self.use_batch_norm,
            activation=activation,
            dtype=self.dtype_policy,
            name="mlp",
        )

    def build(self, input_shape):
        self.mlp.build(tuple(input_shape))
        # V, the direction of each output unit's weights (a column here).
        self.last_layer_v = self.add_weight(
            shape=(self.bottleneck_dim, self.output_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="last_layer_v",
        )
        self.last_layer_g = None
        if not self.norm_last_layer:
            self.last_layer_g = self.add_weight(
                shape=(self.output_dim,), initializer="ones", name="last_layer_g"
            )

    def last_layer_kernel(self):
        """The effective weights `W = g · V / ‖V‖` (norm per output unit)."""
        v = ops.convert_to_tensor(self.last_layer_v)
        kernel = v * ops.rsqrt(
            ops.maximum(ops.sum(ops.square(v), axis=0, keepdims=True), 1e-24)
        )
        if self.last_layer_g is not None:
            kernel = kernel * self.last_layer_g
        return kernel

    def call(self, inputs, training=None):
        x = self.mlp(inputs, training=training)
        x = l2_normalize(x)
        return ops.matmul(x, ops.cast(self.last_layer_kernel(), x.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "hidden_dims": list(self.hidden_dims),
                "bottleneck_dim": self.bottleneck_dim,
                "use_batch_norm": self.use_batch_norm,
                "activation": self.activation,
                "norm_last_layer": self.norm_last_layer,
            }
        )
        return config
