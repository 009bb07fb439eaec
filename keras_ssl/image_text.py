"""The CLIP recipe on image-caption data: build, train, measure.

`pretrain_clip(data, ClipConfig())` trains a caption tokenizer on the
training captions, builds CLIP from a small image backbone and keras-hub's
`CLIPTextEncoder` (causal Transformer), fits it on a `tf.data` pipeline of
(image, caption) pairs and reports, on the held-out split:

- zero-shot accuracy from class names and prompt templates (no label seen),
  against chance and against the same classifier on the untrained model;
- a linear probe on the frozen image features (fitted on the first half of
  the held-out split, scored on the second half, where the zero-shot
  accuracy is scored too);
- image→text and text→image Recall@1/5/10 over the held-out pairs.

The `ClipConfig` defaults are the small recipe for the embedded captioned
digits; the paper's ViT-B/32 recipe is the `paper` preset of
`keras_ssl.recipes.presets`.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from keras_ssl.evaluation.features import extract_features
from keras_ssl.evaluation.linear_probe import linear_probe_accuracy
from keras_ssl.evaluation.zero_shot import (
    DIGIT_TEMPLATES,
    ZeroShotClassifier,
    retrieval_recall,
)


from keras_ssl.recipes.configs import ClipConfig


def build_clip(config, captions, image_shape):
    """A fresh CLIP of `config` with a tokenizer trained on `captions`."""
    import keras_hub

    from keras_ssl.data.text import train_caption_tokenizer
    from keras_ssl.models.clip import CLIP
    from keras_ssl.training import build_backbone

    tokenizer = train_caption_tokenizer(captions, config.vocabulary_size)
    text_encoder = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=tokenizer.vocabulary_size(),
        embedding_dim=config.text_width,
        hidden_dim=config.text_width,
        num_layers=config.text_layers,
        num_heads=config.text_heads,
        intermediate_dim=4 * config.text_width,
        max_sequence_length=config.sequence_length,
        name="text_encoder",
    )
    image_encoder = build_backbone(
        config.image_backbone, image_shape, config.init_preset
    )
    return CLIP(
        image_encoder, text_encoder, config.projection_dim, tokenizer,
        sequence_length=config.sequence_length,
    )


def image_text_dataset(images, token_ids, batch_size, seed=0, repeat=False):
    """A shuffled `tf.data` pipeline of `{"images", "token_ids"}` batches
    (full batches only: every step contrasts `batch_size` pairs)."""
    import tensorflow as tf

    images = np.asarray(images, "float32")
    token_ids = np.asarray(token_ids, "int32")
    if len(images) != len(token_ids):
        raise ValueError(
            f"one caption per image: got {len(images)} images and "
            f"{len(token_ids)} captions."
        )
    if len(images) < batch_size:
        raise ValueError(
            f"batch size {batch_size} is larger than the {len(images)} pairs."
        )
    dataset = tf.data.Dataset.from_tensor_slices(
        {"images": images, "token_ids": token_ids}
    ).shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size, drop_remainder=True).prefetch(2)


def make_clip_optimizer(config, steps_per_epoch):
    """AdamW with linear warmup and cosine decay, as CLIP trains."""
    from keras_ssl.optimizers import make_optimizer

    return make_optimizer(
        "adamw", config.learning_rate,
        config.steps or config.epochs * steps_per_epoch,
        warmup_steps=config.warmup_epochs * steps_per_epoch,
        weight_decay=config.weight_decay, beta_2=config.beta_2, epsilon=1e-6,
    )


def evaluate_clip(model, data, templates=DIGIT_TEMPLATES):
    """Zero-shot accuracy, linear probe and retrieval on `data`'s test split
    (see the module docstring); `data` needs `x_test` and `captions_test`,
    and `y_test` + `class_names` for the classification scores."""
    # One pass of the image encoder serves retrieval, zero-shot and the probe.
    features = extract_features(model.image_encoder, data.x_test)
    image_embeddings = model.encode_image_features(features)
    scores = retrieval_recall(
        image_embeddings,
        model.encode_texts(list(data.captions_test), truncate=True),
    )
    if getattr(data, "y_test", None) is None or not data.class_names:
        return scores
    half = len(data.x_test) // 2
    labels = np.asarray(data.y_test)
    classifier = ZeroShotClassifier(model, data.class_names, templates)
    predictions = np.argmax(
        classifier.logits_of_embeddings(image_embeddings[half:]), axis=1
    )
    scores["zero_shot_accuracy"] = float(np.mean(predictions == labels[half:]))
    scores["chance"] = 1.0 / len(data.class_names)
    scores["linear_probe_accuracy"] = linear_probe_accuracy(
        features[:half], labels[:half], features[half:], labels[half:]
    )
    return scores


@dataclasses.dataclass
class ClipResult:
    model: keras.Model
    history: dict
    scores: dict  # evaluate_clip of the trained model
    random_init_scores: dict  # the same model before training
    train_seconds: float


def pretrain_clip(data, config=None, callbacks=(), verbose="auto"):
    """Trains CLIP on `data` (an `ImageTextData`) and measures it.

    Example:

    ```python
    from keras_ssl.data import load_image_text_data
    from keras_ssl.image_text import ClipConfig, pretrain_clip
    result = pretrain_clip(load_image_text_data("digits"), ClipConfig(epochs=3))
    print(result.scores["zero_shot_accuracy"], result.scores["chance"])
    ```
    """
    config = config or ClipConfig()
    keras.utils.set_random_seed(config.seed)
    model = build_clip(config, list(data.captions_train), data.image_shape)
    token_ids = model.tokenize(list(data.captions_train), truncate=True)
    dataset = image_text_dataset(
        data.x_train, token_ids, config.batch_size, seed=config.seed
    )
    from keras_ssl.callbacks import StopAtStep, fit_schedule

    templates = config.templates
    steps_per_epoch = len(data.x_train) // config.batch_size
    total = config.steps or config.epochs * steps_per_epoch
    epochs, fit_steps, stop = fit_schedule(total, steps_per_epoch)
    if fit_steps < steps_per_epoch:  # a finite dataset: stop inside its pass
        stop = [StopAtStep(total)]
    model({"images": data.x_train[:2], "token_ids": token_ids[:2]})
    random_init_scores = evaluate_clip(model, data, templates)
    model.compile(optimizer=make_clip_optimizer(config, steps_per_epoch))
    start = time.perf_counter()
    history = model.fit(
        dataset, epochs=epochs, callbacks=[*callbacks, *stop],
        verbose=verbose, shuffle=False,
    )
    train_seconds = time.perf_counter() - start
    return ClipResult(
        model=model,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        scores=evaluate_clip(model, data, templates),
        random_init_scores=random_init_scores,
        train_seconds=train_seconds,
    )


def plot_top_captions(model, images, captions, path, num_images=8, k=3,
                      true_captions=None):
    """A PNG of `num_images` images, each with its `k` most similar
    `captions` (and its own caption, when given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.asarray(images[:num_images], "float32")
    similarities = model.encode_images(images) @ model.encode_texts(
        list(captions), truncate=True
    ).T
    top = np.argsort(-similarities, axis=1)[:, :k]
    columns = min(4, len(images))
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for i, axis in enumerate(axes.flat[: len(images)]):
        axis.imshow(np.clip(images[i], 0, 1))
        lines = [
            f"{rank + 1}. {captions[j]} ({similarities[i, j]:.2f})"
            for rank, j in enumerate(top[i])
        ]
        if true_captions is not None:
            lines.append(f"true: {true_captions[i]}")
        axis.set_title("\n".join(lines), fontsize=7, loc="left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
