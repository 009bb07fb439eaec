"""MLP heads: the projection and prediction networks of SSL methods.

Following lightly, a head is described as data: the widths of its hidden
layers, its output width and whether batch norm follows each linear layer.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_ssl")
class MLPHead(keras.layers.Layer):
    """A multi-layer perceptron: `[Dense → BN → act] × hidden → Dense (→ BN)`.

    SimCLR's projection head is `MLPHead((2048,), 128)`: "we use a MLP with one
    hidden layer to obtain z = W2 σ(W1 h)" (Chen et al., 2020); SimCLR v2 and
    BYOL use the same shape with batch norm after the hidden layers. Dense
    layers followed by batch norm have no bias (the norm's beta replaces it).

    Args:
        hidden_dims: widths of the hidden layers (may be empty: a linear head).
        output_dim: width of the output.
        use_batch_norm: batch norm after each hidden Dense layer.
        output_batch_norm: batch norm (without scale) after the output layer,
            as in SimCLR v2 and MoCo v3.
        activation: activation of the hidden layers.
        batch_norm_momentum: momentum of the batch-norm moving statistics.

    Example:

    >>> import numpy as np
    >>> head = MLPHead(hidden_dims=(32,), output_dim=8)
    >>> head(np.zeros((4, 16), "float32")).shape
    (4, 8)
    """

    def __init__(
        self,
        hidden_dims=(2048,),
        output_dim=128,
        use_batch_norm=True,
        output_batch_norm=False,
        activation="relu",
        batch_norm_momentum=0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        hidden_dims = tuple(int(d) for d in hidden_dims)
        if any(d <= 0 for d in hidden_dims) or int(output_dim) <= 0:
            raise ValueError(
                "MLPHead widths must be positive; got "
                f"hidden_dims={hidden_dims}, output_dim={output_dim}."
            )
        self.hidden_dims = hidden_dims
        self.output_dim = int(output_dim)
        self.use_batch_norm = use_batch_norm
        self.output_batch_norm = output_batch_norm
        self.activation = activation
        self.batch_norm_momentum = batch_norm_momentum

        self.blocks = []
        for i, width in enumerate(hidden_dims):
            self.blocks.append(
                keras.layers.Dense(
                    width, use_bias=not use_batch_norm, dtype=self.dtype_policy,
                    name=f"dense_{i}",
                )
            )
            if use_batch_norm:
                self.blocks.append(
                    keras.layers.BatchNormalization(
                        momentum=batch_norm_momentum,
                        dtype=self.dtype_policy,
                        name=f"batch_norm_{i}",
                    )
                )
            self.blocks.append(
                keras.layers.Activation(
                    activation, dtype=self.dtype_policy, name=f"act_{i}"
                )
            )
        self.blocks.append(
            keras.layers.Dense(
                self.output_dim,
                use_bias=not output_batch_norm,
                dtype=self.dtype_policy,
                name="output",
            )
        )
        if output_batch_norm:
            self.blocks.append(
                keras.layers.BatchNormalization(
                    momentum=batch_norm_momentum,
                    scale=False,
                    dtype=self.dtype_policy,
                    name="output_batch_norm",
                )
            )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.blocks:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.blocks:
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dims": list(self.hidden_dims),
                "output_dim": self.output_dim,
                "use_batch_norm": self.use_batch_norm,
                "output_batch_norm": self.output_batch_norm,
                "activation": self.activation,
                "batch_norm_momentum": self.batch_norm_momentum,
            }
        )
        return config
