"""Zero-shot classification and cross-modal retrieval with a CLIP model.

A zero-shot classifier is built from class names and prompt templates only:
each class is embedded through every template ("a photo of a {}."), the
normalised prompt embeddings are averaged and normalised again (CLIP's
prompt ensembling, done in embedding space), and an image goes to the class
whose embedding is most similar. No label of the evaluated split is used.
"""

from __future__ import annotations

import numpy as np

# Prompt templates for the embedded captioned digits (none of them is a
# caption template of the corpus word for word); defined with the configs,
# which import no framework.
from keras_ssl.recipes.configs import DIGIT_TEMPLATES  # noqa: E402


def _normalize(x, axis=-1):
    x = np.asarray(x, "float32")
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


class ZeroShotClassifier:
    """Classifies images by their similarity to prompts of each class.

    Args:
        model: a trained `keras_ssl.models.CLIP` with a tokenizer.
        class_names: the names the prompts are written with.
        templates: prompt templates with one `{}` for the class name;
            their embeddings are averaged per class (prompt ensembling).

    Attributes:
        class_embeddings: `(num_classes, projection_dim)` unit vectors.

    Example:

    ```python
    classifier = ZeroShotClassifier(model, ["zero", "one", "two"])
    classifier.predict(images)            # class indices
    classifier.top_k(images, k=3)         # (indices, probabilities)
    ```
    """

    def __init__(self, model, class_names, templates=DIGIT_TEMPLATES):
        class_names = [str(name) for name in class_names]
        templates = tuple(templates)
        if len(class_names) < 2:
            raise ValueError(
                f"zero-shot classification needs at least 2 classes; got "
                f"{class_names}."
            )
        if not templates or any(t.count("{}") != 1 for t in templates):
            raise ValueError(
                "every prompt template needs exactly one '{}' for the class "
                f"name; got {templates}."
            )
        self.model = model
        self.class_names = class_names
        self.templates = templates
        prompts = [t.format(name) for name in class_names for t in templates]
        embeddings = model.encode_texts(prompts, truncate=True)
        embeddings = _normalize(embeddings).reshape(
            len(class_names), len(templates), -1
        )
        self.class_embeddings = _normalize(embeddings.mean(axis=1))

    def logits(self, images, batch_size=256):
        """Scaled cosine similarities `(N, num_classes)` (the model's
        logit scale, so a softmax gives CLIP's class probabilities)."""
        from keras_ssl.losses.clip import clip_logit_scale
        from keras import ops

        scale = float(
            ops.convert_to_numpy(
                clip_logit_scale(self.model.logit_scale, self.model.max_logit_scale)
            )
        )
        return self.logits_of_embeddings(
            self.model.encode_images(images, batch_size), scale
        )

    def logits_of_embeddings(self, image_embeddings, scale=1.0):
        """`scale` × cosine similarities of unit image embeddings to the
        classes, `(N, num_classes)`."""
        return scale * np.asarray(image_embeddings, "float32") @ self.class_embeddings.T

    def predict_proba(self, images, batch_size=256):
        logits = self.logits(images, batch_size)
        logits = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, images, batch_size=256):
        """The most similar class of each image, `(N,)` int indices."""
        return np.argmax(self.logits(images, batch_size), axis=1)

    def top_k(self, images, k=3, batch_size=256):
        """`(indices, probabilities)`, each `(N, k)`, best class first."""
        probabilities = self.predict_proba(images, batch_size)
        order = np.argsort(-probabilities, axis=1)[:, :k]
        return order, np.take_along_axis(probabilities, order, axis=1)


def zero_shot_accuracy(model, images, labels, class_names,
                       templates=DIGIT_TEMPLATES):
    """Top-1 accuracy of the `ZeroShotClassifier` of `class_names` on
    `(images, labels)`; chance is `1 / len(class_names)`."""
    classifier = ZeroShotClassifier(model, class_names, templates)
    predictions = classifier.predict(images)
    return float(np.mean(predictions == np.asarray(labels).reshape(-1)))


def retrieval_recall(image_embeddings, text_embeddings, ks=(1, 5, 10)):
    """Recall@k of image→text and text→image retrieval over paired rows.

    Row i of `image_embeddings` and row i of `text_embeddings` are a pair;
    a query scores a hit at k when its pair is among its k most similar
    items of the other modality (cosine similarity; ties count against it).

    Returns:
        `{"image_to_text_R@1": ..., "text_to_image_R@1": ..., ...}`.

    Example:

    >>> import numpy as np
    >>> e = np.eye(4, dtype="float32")
    >>> retrieval_recall(e, e, ks=(1,))["image_to_text_R@1"]
    1.0
    """
    images = _normalize(image_embeddings)
    texts = _normalize(text_embeddings)
    if images.shape != texts.shape:
        raise ValueError(
            "retrieval needs one caption per image: got image embeddings "
            f"{images.shape} and text embeddings {texts.shape}."
        )
    similarities = images @ texts.T
    results = {}
    for name, scores in (("image_to_text", similarities),
                         ("text_to_image", similarities.T)):
        own = np.diag(scores)[:, None]
        # Rank of the pair: how many items score at least as high, but itself.
        rank = (scores >= own).sum(axis=1) - 1
        for k in ks:
            results[f"{name}_R@{k}"] = float(np.mean(rank < k))
    return results
