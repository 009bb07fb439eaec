"""Tests for the probe of each Transformer block (probe_layers)."""

import textwrap
import types

import keras
import numpy as np
import pytest

from keras_ssl.backbones import ViTBackbone
from keras_ssl.evaluation import (
    block_features,
    knn_accuracy,
    linear_probe_accuracy,
    probe_layers,
    transformer_blocks,
)

NUM_CLASSES = 3


def _templates_data(num, rng, templates):
    """Each image is its class's template plus noise: the label is decodable
    linearly from the pixels, yet not so easily that every block scores 1."""
    labels = np.arange(num) % NUM_CLASSES
    rng.shuffle(labels)
    images = templates[labels] + 0.2 * rng.normal(size=(num, 8, 8, 3))
    return images.astype("float32"), labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    templates = rng.uniform(size=(NUM_CLASSES, 8, 8, 3))
    x_train, y_train = _templates_data(60, rng, templates)
    x_test, y_test = _templates_data(30, rng, templates)
    return types.SimpleNamespace(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        num_classes=NUM_CLASSES,
    )


@pytest.fixture(scope="module")
def vit():
    keras.utils.set_random_seed(0)
    # 4 patches + a class token, 2 blocks of width 8.
    return ViTBackbone(image_shape=(8, 8, 3), patch_size=4, hidden_dim=8,
                       num_layers=2, num_heads=2, mlp_ratio=2.0)


@pytest.fixture(scope="module")
def result(vit, data):
    return probe_layers(vit, data.x_train, data.y_train, data.x_test,
                        data.y_test, num_classes=NUM_CLASSES, batch_size=128)


def test_one_score_per_block_and_the_best_is_the_argmax(vit, result):
    assert transformer_blocks(vit) == list(vit.transformer_layers)
    assert result.blocks == (1, 2)
    assert result.names == ("transformer_layer_0", "transformer_layer_1")
    assert len(result.knn_accuracy) == len(result.linear_probe_accuracy) == 2
    for score in result.knn_accuracy + result.linear_probe_accuracy:
        assert isinstance(score, float) and 0.0 <= score <= 1.0
    best = int(np.argmax(result.linear_probe_accuracy))
    assert result.best_block == best + 1
    assert result.best_name == result.names[best]
    assert result.best_linear_probe_accuracy == result.linear_probe_accuracy[best]
    assert result.best_knn_accuracy == result.knn_accuracy[best]
    # The labels are linear in the pixels: a random ViT's blocks keep them
    # well above chance (1/3).
    assert result.best_linear_probe_accuracy >= 0.6
    assert result.scores() == {
        "best_layer_probe_accuracy": result.best_linear_probe_accuracy,
        "best_layer_knn_accuracy": result.best_knn_accuracy,
        "best_layer": result.best_block,
    }
    assert isinstance(result.scores()["best_layer"], int)


def test_scores_are_those_of_the_block_features(vit, data, result):
    # Block 2's tokens taken independently, averaged over the 4 patch tokens
    # (the class token, first, left out as extract_features does).
    tokens = keras.Model(vit.inputs, vit.transformer_layers[1].output).predict(
        np.concatenate([data.x_train, data.x_test]), verbose=0)
    assert tokens.shape == (90, 5, 8)
    expected = np.asarray(tokens)[:, 1:].mean(axis=1)
    (features,) = block_features(
        vit, np.concatenate([data.x_train, data.x_test]), batch_size=128,
        blocks=[2])
    assert features.shape == (90, 8)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)

    train, test = expected[:60], expected[60:]
    assert result.knn_accuracy[1] == knn_accuracy(
        train, data.y_train, test, data.y_test, num_classes=NUM_CLASSES)
    assert result.linear_probe_accuracy[1] == linear_probe_accuracy(
        train, data.y_train, test, data.y_test)


def test_an_encoder_without_transformer_blocks_is_refused(vit, data):
    # No weights: nothing to initialise (seconds of XLA compiles under JAX).
    cnn = keras.Sequential([keras.Input((8, 8, 3)),
                            keras.layers.AveragePooling2D(4)])
    assert transformer_blocks(cnn) == []
    with pytest.raises(ValueError, match="no Transformer blocks"):
        probe_layers(cnn, data.x_train, data.y_train, data.x_test, data.y_test)
    with pytest.raises(ValueError, match=r"1-based block indices in \[1, 2\]"):
        block_features(vit, data.x_test, blocks=[3])


def test_evaluate_representation_reports_the_best_layer(vit, data, result,
                                                        monkeypatch):
    from keras_ssl import training

    # Fine-tuning itself is tested elsewhere; only the keys matter here.
    monkeypatch.setattr(training, "fine_tune_accuracy",
                        lambda *args, **kwargs: 0.5)
    frozen = training.evaluate_representation(vit, data, batch_size=128)
    assert set(frozen) == {"knn_accuracy", "linear_probe_accuracy"}

    scores = training.evaluate_representation(vit, data, batch_size=128,
                                              fine_tune_epochs=1)
    assert scores == {**frozen, **result.scores(), "fine_tune_accuracy": 0.5}
    assert scores["best_layer"] in (1, 2)


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the same code as the tests above, which run on every backend: "
    "the example runs once (its second ViT costs seconds of compiles on JAX)",
)
def test_the_docstring_example_runs():
    example = textwrap.dedent(
        probe_layers.__doc__.split("```python")[1].split("```")[0])
    namespace = {}
    exec(example, namespace)
    result = namespace["result"]
    assert result.blocks == (1, 2) and result.best_block in (1, 2)
    assert set(result.scores()) == {"best_layer_probe_accuracy",
                                    "best_layer_knn_accuracy", "best_layer"}
