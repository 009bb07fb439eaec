"""A ResNet for small images (CIFAR stem), as a keras-hub `Backbone`."""

import keras
from keras_hub.models import Backbone


@keras.saving.register_keras_serializable(package="keras_ssl")
class CIFARResNetBackbone(Backbone):
    """ResNet with a CIFAR stem: a 3×3 stride-1 convolution and no max-pool.

    keras-hub's `ResNetBackbone` always downsamples 4× in its stem (a 7×7
    stride-2 convolution and a max-pool), which throws away most of a 32×32
    image before the first residual block. The SimCLR paper's CIFAR-10 setup
    replaces the stem with a 3×3 stride-1 convolution and drops the max-pool;
    this backbone does the same. Each stage stacks basic blocks (two 3×3
    convolutions with batch norm and a residual connection); every stage after
    the first halves the resolution. The default configuration is ResNet-18.

    Being a keras-hub `Backbone`, it saves to and loads from a preset directory
    (`save_to_preset` / `keras_hub.models.Backbone.from_preset`).

    Args:
        stackwise_num_filters: number of filters of each stage.
        stackwise_num_blocks: number of basic blocks of each stage.
        image_shape: input shape `(height, width, channels)`; height and width
            may be `None`. Inputs are float images in [0, 1].
        pooling: `None` (default, as keras-hub's backbones) returns the last
            feature map `(batch, h, w, features)`, which methods, the
            evaluation and `keras_hub.models.ImageClassifier` pool; `"avg"`
            returns the `(batch, features)` vector after global average
            pooling.
        batch_norm_momentum: momentum of the batch-norm moving statistics.
        dtype: dtype policy of the layers.

    Example:

    >>> import numpy as np
    >>> backbone = CIFARResNetBackbone(
    ...     stackwise_num_filters=(8, 16), stackwise_num_blocks=(1, 1),
    ...     image_shape=(32, 32, 3))
    >>> tuple(backbone(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 16, 16, 16)
    """

    def __init__(
        self,
        stackwise_num_filters=(64, 128, 256, 512),
        stackwise_num_blocks=(2, 2, 2, 2),
        image_shape=(None, None, 3),
        pooling=None,
        batch_norm_momentum=0.9,
        dtype=None,
        **kwargs,
    ):
        stackwise_num_filters = tuple(int(f) for f in stackwise_num_filters)
        stackwise_num_blocks = tuple(int(b) for b in stackwise_num_blocks)
        if len(stackwise_num_filters) != len(stackwise_num_blocks):
            raise ValueError(
                "`stackwise_num_filters` and `stackwise_num_blocks` must have "
                f"the same length; got {len(stackwise_num_filters)} and "
                f"{len(stackwise_num_blocks)}."
            )
        if not stackwise_num_filters or min(stackwise_num_filters) <= 0:
            raise ValueError(
                "`stackwise_num_filters` must be a non-empty list of positive "
                f"integers; got {stackwise_num_filters}."
            )
        if min(stackwise_num_blocks) <= 0:
            raise ValueError(
                "`stackwise_num_blocks` must be positive integers; got "
                f"{stackwise_num_blocks}."
            )
        if pooling not in ("avg", None):
            raise ValueError(f"`pooling` must be 'avg' or None; got {pooling!r}.")
        image_shape = tuple(image_shape)
        if len(image_shape) != 3:
            raise ValueError(
                "`image_shape` must be (height, width, channels); got "
                f"{image_shape}."
            )

        def conv_bn(x, filters, kernel_size, strides, name, activation=True):
            x = keras.layers.Conv2D(
                filters,
                kernel_size,
                strides=strides,
                padding="same",
                use_bias=False,
                kernel_initializer="he_normal",
                dtype=dtype,
                name=f"{name}_conv",
            )(x)
            x = keras.layers.BatchNormalization(
                momentum=batch_norm_momentum, dtype=dtype, name=f"{name}_bn"
            )(x)
            if activation:
                x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu")(x)
            return x

        # === Functional Model ===
        inputs = keras.layers.Input(shape=image_shape, name="images")
        x = conv_bn(inputs, stackwise_num_filters[0], 3, 1, name="stem")
        for stage, (filters, blocks) in enumerate(
            zip(stackwise_num_filters, stackwise_num_blocks)
        ):
            for block in range(blocks):
                name = f"stage{stage}_block{block}"
                strides = 2 if (stage > 0 and block == 0) else 1
                shortcut = x
                if strides != 1 or x.shape[-1] != filters:
                    shortcut = conv_bn(
                        x, filters, 1, strides, f"{name}_shortcut", False
                    )
                y = conv_bn(x, filters, 3, strides, f"{name}_1")
                y = conv_bn(y, filters, 3, 1, f"{name}_2", activation=False)
                x = keras.layers.Add(dtype=dtype, name=f"{name}_add")(
                    [shortcut, y]
                )
                x = keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(x)
        if pooling == "avg":
            x = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="pool")(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.stackwise_num_filters = stackwise_num_filters
        self.stackwise_num_blocks = stackwise_num_blocks
        self.image_shape = image_shape
        self.pooling = pooling
        self.batch_norm_momentum = batch_norm_momentum

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stackwise_num_filters": list(self.stackwise_num_filters),
                "stackwise_num_blocks": list(self.stackwise_num_blocks),
                "image_shape": list(self.image_shape),
                "pooling": self.pooling,
                "batch_norm_momentum": self.batch_norm_momentum,
            }
        )
        return config
