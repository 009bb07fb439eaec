"""Retrieval recall and the zero-shot classifier on controlled embeddings."""

import doctest

import numpy as np
import pytest

import keras_ssl.evaluation.zero_shot as zero_shot
from keras_ssl.evaluation import ZeroShotClassifier, retrieval_recall


def test_recall_counts_the_rank_of_each_pair():
    # Pair i is (image i, text i). Text 0 is closest to image 1, then
    # image 2, then its own image: text→image ranks it 3rd. Every image
    # still finds its own text first.
    images = np.eye(4, dtype="float32")
    texts = np.eye(4, dtype="float32")
    texts[0] = [0.1, 0.9, 0.8, 0.0]
    recall = retrieval_recall(images, texts, ks=(1, 2, 3))
    assert recall["image_to_text_R@1"] == 1.0
    assert recall["text_to_image_R@1"] == 0.75
    assert recall["text_to_image_R@2"] == 0.75
    assert recall["text_to_image_R@3"] == 1.0


def test_recall_of_random_embeddings_is_near_chance():
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(2, 500, 16))
    recall = retrieval_recall(images, texts, ks=(10,))
    assert abs(recall["image_to_text_R@10"] - 10 / 500) < 0.02


def test_recall_rejects_unpaired_embeddings():
    with pytest.raises(ValueError, match="one caption per image"):
        retrieval_recall(np.ones((3, 2)), np.ones((4, 2)))


class _FakeCLIP:
    """Embeds the prompt "... {name}" as the one-hot of its class and
    images as given: the classifier must average templates and match."""

    logit_scale = np.log(10.0)
    max_logit_scale = 100.0

    def __init__(self, names):
        self.names = names
        self.prompts = []

    def encode_texts(self, texts, truncate=False):
        self.prompts.extend(texts)
        out = np.zeros((len(texts), len(self.names)), "float32")
        for i, text in enumerate(texts):
            out[i, [j for j, n in enumerate(self.names) if n in text][0]] = 1.0
            out[i] += 0.01 * (i % 3)  # the templates differ a little
        return out

    def encode_images(self, images, batch_size=256):
        return np.asarray(images, "float32")


def test_zero_shot_classifier_ensembles_prompts_per_class():
    names = ["cat", "dog", "car"]
    model = _FakeCLIP(names)
    classifier = ZeroShotClassifier(model, names, templates=("a {}.", "the {}"))
    assert model.prompts == ["a cat.", "the cat", "a dog.", "the dog", "a car.", "the car"]
    np.testing.assert_allclose(
        np.linalg.norm(classifier.class_embeddings, axis=1), 1.0, rtol=1e-6
    )
    images = np.eye(3, dtype="float32")[[2, 0, 1]]
    np.testing.assert_array_equal(classifier.predict(images), [2, 0, 1])
    indices, probabilities = classifier.top_k(images, k=2)
    assert indices.shape == probabilities.shape == (3, 2)
    assert (probabilities[:, 0] >= probabilities[:, 1]).all()


def test_zero_shot_classifier_rejects_bad_templates():
    with pytest.raises(ValueError, match="exactly one"):
        ZeroShotClassifier(_FakeCLIP(["a", "b"]), ["a", "b"], templates=("x",))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ZeroShotClassifier(_FakeCLIP(["a"]), ["a"])


def test_docstring_examples():
    assert doctest.testmod(zero_shot).failed == 0
