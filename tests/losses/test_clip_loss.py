"""CLIP's symmetric loss against an independent NumPy reference."""

import math

import numpy as np
import pytest

from keras import ops
from keras_ssl.losses import CLIPLoss, clip_logit_scale, clip_loss


def _reference(images, texts, scale):
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    logits = scale * images @ texts.T
    n = len(images)

    def cross_entropy(rows):
        total = 0.0
        for i in range(n):
            row = rows[i] - rows[i].max()
            total += -(row[i] - math.log(np.exp(row).sum()))
        return total / n

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


@pytest.mark.parametrize("scale", [1.0, 14.3, 100.0])
def test_matches_numpy_reference(scale):
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(2, 6, 5)).astype("float32")
    got = float(ops.convert_to_numpy(clip_loss(images, texts, scale)))
    np.testing.assert_allclose(got, _reference(images, texts, scale), rtol=1e-5)


def test_is_symmetric_in_images_and_texts():
    rng = np.random.default_rng(1)
    images, texts = rng.normal(size=(2, 8, 4)).astype("float32")
    a = float(ops.convert_to_numpy(clip_loss(images, texts, 10.0)))
    b = float(ops.convert_to_numpy(clip_loss(texts, images, 10.0)))
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_split_batch_with_gathered_embeddings_equals_the_global_loss():
    """Two "replicas" with their rows, the gathered batch and their offsets
    average to the loss of the whole batch (what tf.distribute computes)."""
    rng = np.random.default_rng(2)
    images, texts = rng.normal(size=(2, 8, 4)).astype("float32")
    parts = [
        float(ops.convert_to_numpy(clip_loss(
            images[i : i + 4], texts[i : i + 4], 5.0, images, texts, i
        )))
        for i in (0, 4)
    ]
    whole = float(ops.convert_to_numpy(clip_loss(images, texts, 5.0)))
    np.testing.assert_allclose(np.mean(parts), whole, rtol=1e-6)


def test_logit_scale_is_exp_clipped_at_100():
    assert float(ops.convert_to_numpy(clip_logit_scale(math.log(1 / 0.07)))) == (
        pytest.approx(1 / 0.07, rel=1e-5)
    )
    assert float(ops.convert_to_numpy(clip_logit_scale(9.0))) == pytest.approx(100.0)


def test_loss_wrapper():
    e = np.eye(4, dtype="float32")
    loss = CLIPLoss(logit_scale=10.0)
    assert float(ops.convert_to_numpy(loss(None, (e, e)))) < float(
        ops.convert_to_numpy(loss(None, (e, e[::-1])))
    )
    assert CLIPLoss.from_config(loss.get_config()).logit_scale == 10.0
