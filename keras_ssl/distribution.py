"""Many devices: layouts for model parallelism and the multi-device check.

Data parallelism needs nothing from keras-ssl beyond what every method
already does (see `SSLModel`): under JAX `keras.distribution.DataParallel`
the step sees the global batch; under `tf.distribute` the contrastive
methods gather embeddings across replicas with gradient, state (queues,
centers, codebooks) is computed from the global batch, and
`synchronized_batch_norm=True` makes batch norm global.

Model parallelism (JAX `keras.distribution.ModelParallel`) needs a
`keras.distribution.LayoutMap` that says how to shard each weight over the
mesh's model axis. `transformer_layout_map` gives the Megatron-style layout
of the Transformer blocks of `keras_ssl.backbones.ViTBackbone` (and of any
model built from keras-hub's `TransformerEncoder` naming, e.g. the MAE
decoder): attention heads and MLP hidden units are split over the model
axis, everything else is replicated.

Example (JAX, 4 devices as a 2×2 mesh):

```python
import keras, keras_ssl
mesh = keras.distribution.DeviceMesh((2, 2), ("batch", "model"))
distribution = keras_ssl.distribution.model_parallel(mesh)
with distribution.scope():
    encoder = keras_ssl.backbones.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, hidden_dim=64,
        num_layers=2, num_heads=4)
    model = keras_ssl.models.MAE(encoder)
    model.compile(optimizer="adamw")
# model.fit(images, batch_size=64)  # batch split over "batch", heads over "model"
```
"""

import keras

# (regex over a variable's path, its sharding) for one Transformer block.
# Attention kernels are (hidden, heads, head_dim) / (heads, head_dim, hidden).
_TRANSFORMER_LAYOUT = (
    (r".*/(query|key|value)/kernel", (None, "{model}", None)),
    (r".*/(query|key|value)/bias", ("{model}", None)),
    (r".*/attention_output/kernel", ("{model}", None, None)),
    (r".*/feedforward_intermediate_dense/kernel", (None, "{model}")),
    (r".*/feedforward_intermediate_dense/bias", ("{model}",)),
    (r".*/feedforward_output_dense/kernel", ("{model}", None)),
)


def transformer_layout_map(device_mesh, model_dim="model"):
    """A `keras.distribution.LayoutMap` sharding Transformer blocks.

    Query, key and value projections are split by attention head and the
    attention output projection by its input heads; the MLP's first dense
    layer is split by output unit and the second by input unit. Weights it
    does not name (embeddings, layer norms, heads of the method) are
    replicated.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh` with an axis named
            `model_dim`.
        model_dim: the mesh axis that weights are sharded over.

    Returns:
        A `LayoutMap` for `keras.distribution.ModelParallel`. The number of
        attention heads and the MLP width must be divisible by the size of
        the `model_dim` axis.
    """
    if model_dim not in device_mesh.axis_names:
        raise ValueError(
            f"the device mesh has axes {list(device_mesh.axis_names)}; the "
            f"model axis {model_dim!r} is not one of them."
        )
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in _TRANSFORMER_LAYOUT:
        layout_map[pattern] = tuple(
            model_dim if a == "{model}" else a for a in axes
        )
    return layout_map


def model_parallel(device_mesh, batch_dim="batch", model_dim="model"):
    """`keras.distribution.ModelParallel` over `device_mesh`: the batch is
    split over `batch_dim`, Transformer weights over `model_dim`
    (`transformer_layout_map`)."""
    if batch_dim not in device_mesh.axis_names:
        raise ValueError(
            f"the device mesh has axes {list(device_mesh.axis_names)}; the "
            f"batch axis {batch_dim!r} is not one of them."
        )
    return keras.distribution.ModelParallel(
        layout_map=transformer_layout_map(device_mesh, model_dim),
        batch_dim_name=batch_dim,
    )
