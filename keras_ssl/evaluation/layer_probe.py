"""Probing every Transformer block of a ViT: which layer holds the best
features.

The masked image models (MAE, BEiT) learn features that probe linearly
much worse than they fine-tune, and worse at their last layer than at an
intermediate one: the last blocks specialise in predicting the masked
pixels or tokens (BEiT's paper probes an intermediate block; iGPT found the
same for its autoregressive image model). `probe_layers` scores the output
of each block with the same k-NN and linear probe as the encoder's final
features, and reports the block that probes best.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras
import numpy as np

from keras_ssl.evaluation.features import (
    check_labels,
    extract_features,
    features_and_labels,
)
from keras_ssl.evaluation.scores import feature_scores
from keras_ssl.layers.vit import TokenPooling, prefix_tokens


def _is_transformer_block(operation, listed) -> bool:
    from keras_hub.layers import TransformerEncoder

    return operation in listed or isinstance(operation, TransformerEncoder)


def _block_nodes(encoder: keras.Model) -> list:
    """The nodes of `encoder`'s own functional graph that run a Transformer
    block, from the input to the output."""
    nodes_by_depth = getattr(encoder, "_nodes_by_depth", None)
    if not isinstance(encoder, keras.Model) or not nodes_by_depth:
        return []
    listed = list(getattr(encoder, "transformer_layers", None) or ())
    found = []
    # Depth counts operations from the output: the deepest node is the input.
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if _is_transformer_block(node.operation, listed):
                found.append(node)
    return found


def transformer_blocks(encoder: keras.Model) -> list[keras.layers.Layer]:
    """The Transformer blocks of a functional ViT `encoder`, input to output.

    A block is a layer of the encoder's own functional graph that is one of
    its `transformer_layers` (`keras_ssl.backbones.ViTBackbone`) or a
    keras-hub `TransformerEncoder`. An encoder whose blocks are not nodes of
    its graph (a subclassed model, a ResNet, a ViT nested inside another
    model, keras-hub's `ViTBackbone`, which runs its blocks inside one
    layer) has none: `[]`.
    """
    return [node.operation for node in _block_nodes(encoder)]


def _block_model(encoder: keras.Model, blocks: Sequence[int] | None):
    """A model from the encoder's inputs to the concatenated token averages
    of the chosen blocks; also the blocks' 1-based indices, names and
    widths."""
    nodes = _block_nodes(encoder)
    if not nodes:
        raise ValueError(
            "Found no Transformer blocks in the encoder "
            f"{getattr(encoder, 'name', type(encoder).__name__)!r}: "
            "`probe_layers` needs a functional ViT whose blocks are layers "
            "of its graph, such as `keras_ssl.backbones.ViTBackbone` (pass "
            "the backbone itself, not a model that wraps it)."
        )
    if blocks is None:
        indices = list(range(1, len(nodes) + 1))
    else:
        indices = [int(index) for index in blocks]
        if not indices or len(set(indices)) != len(indices) or any(
            not 1 <= index <= len(nodes) for index in indices
        ):
            raise ValueError(
                "`blocks` must be distinct 1-based block indices in "
                f"[1, {len(nodes)}] (the encoder has {len(nodes)} "
                f"Transformer blocks); got {list(blocks)}."
            )
    prefix = prefix_tokens(encoder)
    pooled, widths = [], []
    for index in indices:
        tokens = nodes[index - 1].output_tensors[0]
        if len(tokens.shape) != 3:
            raise ValueError(
                f"Transformer block {index} of the encoder outputs shape "
                f"{tokens.shape}; expected tokens (batch, tokens, width)."
            )
        # The same average as `extract_features` takes of the encoder's own
        # tokens: over the patch tokens, after the class token (if any).
        # Pooled in the graph, so that `predict` returns (N, D) per block,
        # never a chunk's full token maps.
        pooled.append(TokenPooling("avg", prefix)(tokens))
        widths.append(int(tokens.shape[-1]))
    outputs = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate()(pooled)
    model = keras.Model(encoder.inputs, outputs, name=f"{encoder.name}_blocks")
    names = [nodes[index - 1].operation.name for index in indices]
    return model, indices, names, widths


def _split(features: np.ndarray, widths: list[int]) -> list[np.ndarray]:
    return np.split(features, np.cumsum(widths)[:-1], axis=1)


def block_features(
    encoder: keras.Model,
    images: Any,
    batch_size: int = 256,
    blocks: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """The token-averaged output of each Transformer block of a ViT.

    For each block, the average of its output tokens over the patch tokens
    (a class token, the encoder's `num_prefix_tokens`, is left out, as
    `extract_features` does with the encoder's final tokens). A block's
    output is the residual stream after it, before the encoder's final
    layer norm. The encoder runs once, in inference mode, chunk by chunk
    through `extract_features`: only the pooled `(N, D)` features of all
    blocks are kept.

    Args:
        encoder: A functional ViT, e.g. `keras_ssl.backbones.ViTBackbone`
            (see `transformer_blocks`).
        images: An array of images, or a finite, batched `tf.data.Dataset`,
            as `extract_features` takes them.
        batch_size: Images per forward pass for arrays.
        blocks: 1-based indices of the blocks to take (block 1 is the first
            after the patch embedding); all blocks by default.

    Returns:
        One float32 array `(N, D)` per block, in the order of `blocks`.

    Raises:
        ValueError: if the encoder has no Transformer blocks.
    """
    model, _, _, widths = _block_model(encoder, blocks)
    return _split(extract_features(model, images, batch_size=batch_size), widths)


@dataclasses.dataclass(frozen=True)
class LayerProbeResult:
    """What `probe_layers` returns: the scores of each probed block.

    Attributes:
        blocks: 1-based indices of the probed blocks (block 1 is the first
            Transformer block after the patch embedding).
        names: the blocks' layer names (`ViTBackbone`: `transformer_layer_0`
            is block 1).
        knn_accuracy: k-NN test accuracy of each block's features.
        linear_probe_accuracy: linear-probe test accuracy of each block's
            features.
        best_block: the 1-based index of the block with the best linear
            probe (the shallowest one on a tie).
    """

    blocks: tuple[int, ...]
    names: tuple[str, ...]
    knn_accuracy: tuple[float, ...]
    linear_probe_accuracy: tuple[float, ...]
    best_block: int

    @property
    def _best(self) -> int:
        return self.blocks.index(self.best_block)

    @property
    def best_name(self) -> str:
        """The layer name of the best block."""
        return self.names[self._best]

    @property
    def best_linear_probe_accuracy(self) -> float:
        return self.linear_probe_accuracy[self._best]

    @property
    def best_knn_accuracy(self) -> float:
        """The k-NN accuracy of the block that probes best linearly."""
        return self.knn_accuracy[self._best]

    def scores(self) -> dict:
        """The best block's scores as `evaluate_representation` reports
        them: `best_layer` (its 1-based index), `best_layer_probe_accuracy`,
        `best_layer_knn_accuracy`."""
        return {
            "best_layer_probe_accuracy": self.best_linear_probe_accuracy,
            "best_layer_knn_accuracy": self.best_knn_accuracy,
            "best_layer": self.best_block,
        }


def probe_layers(
    encoder: keras.Model,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    num_classes: int | None = None,
    batch_size: int = 256,
    blocks: Sequence[int] | None = None,
) -> LayerProbeResult:
    """k-NN and linear-probe accuracy of every Transformer block of a ViT.

    The features of a block are its output tokens averaged over the patch
    tokens (`block_features`), extracted once for all blocks, in inference
    mode and in batches. Each block is scored by `knn_accuracy` (weighted
    k-NN, k=20) and `linear_probe_accuracy` (logistic regression on
    standardised features), the two scores of the encoder's final features
    in `keras_ssl.training.evaluate_representation`; the best block is the
    one with the highest linear-probe accuracy (the shallowest on a tie).

    A masked image model (MAE, BEiT) is known to probe best at a middle
    block, not at its last one: the last blocks specialise in the
    reconstruction.

    Example:

    ```python
    import numpy as np
    from keras_ssl.backbones import ViTBackbone
    from keras_ssl.evaluation import probe_layers

    vit = ViTBackbone(image_shape=(8, 8, 3), patch_size=4, hidden_dim=16,
                      num_layers=2, num_heads=2)
    rng = np.random.default_rng(0)
    templates = rng.uniform(size=(3, 8, 8, 3))
    y_train, y_test = rng.integers(0, 3, 60), rng.integers(0, 3, 30)
    x_train = (templates[y_train] + 0.1 * rng.normal(size=(60, 8, 8, 3)))
    x_test = (templates[y_test] + 0.1 * rng.normal(size=(30, 8, 8, 3)))
    result = probe_layers(vit, x_train.astype("float32"), y_train,
                          x_test.astype("float32"), y_test)
    result.blocks, result.best_block  # (1, 2), 1 or 2
    result.linear_probe_accuracy  # one accuracy per block
    result.scores()  # {"best_layer_probe_accuracy": ..., "best_layer": ...}
    ```

    Args:
        encoder: A functional ViT, e.g. `keras_ssl.backbones.ViTBackbone`
            (see `transformer_blocks`).
        x_train, y_train: Labelled training images and their class ids; or
            a finite `tf.data.Dataset` of `(images, labels)` batches and
            `y_train=None`.
        x_test, y_test: The same for the test images.
        num_classes: Number of classes for the k-NN vote; by default one
            more than the largest label.
        batch_size: Images per forward pass for arrays.
        blocks: 1-based indices of the blocks to probe; all by default.

    Returns:
        A `LayerProbeResult`.

    Raises:
        ValueError: if the encoder has no Transformer blocks
            (`transformer_blocks(encoder)` is empty), or `blocks` names
            blocks it does not have.
    """
    model, indices, names, widths = _block_model(encoder, blocks)
    train, y_train = features_and_labels(model, x_train, y_train, batch_size, "x_train")
    test, y_test = features_and_labels(model, x_test, y_test, batch_size, "x_test")
    y_train = check_labels(y_train, len(train), "y_train")
    y_test = check_labels(y_test, len(test), "y_test")
    knn, linear = [], []
    for train_block, test_block in zip(_split(train, widths), _split(test, widths)):
        scores = feature_scores(train_block, y_train, test_block, y_test,
                                num_classes)
        knn.append(float(scores["knn_accuracy"]))
        linear.append(float(scores["linear_probe_accuracy"]))
    return LayerProbeResult(
        blocks=tuple(indices),
        names=tuple(names),
        knn_accuracy=tuple(knn),
        linear_probe_accuracy=tuple(linear),
        best_block=indices[int(np.argmax(linear))],
    )
