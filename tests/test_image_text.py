"""The CLIP recipe (keras_ssl.image_text) and its paper preset."""

import types

import numpy as np
import pytest

from keras_ssl.image_text import (
    ClipConfig,
    build_clip,
    evaluate_clip,
    image_text_dataset,
    plot_top_captions,
    pretrain_clip,
)

WORDS = ("zero", "one", "two", "three")
TINY = ClipConfig(
    text_width=16, text_layers=1, text_heads=2, sequence_length=12,
    projection_dim=8, epochs=2, batch_size=16, warmup_epochs=1,
)


@pytest.fixture(scope="module")
def data(digits):
    """64 real digit images of 4 classes with class-and-colour captions."""
    keep = np.isin(digits.y_test, range(4))
    images = np.asarray(digits.x_test[keep][:96, :16, :16])
    labels = np.asarray(digits.y_test[keep][:96])
    shade = ["dark" if m < 0.5 else "bright" for m in images.mean(axis=(1, 2, 3))]
    captions = [f"a {s} {WORDS[l]}" for s, l in zip(shade, labels)]
    return types.SimpleNamespace(
        name="tiny", x_train=images[:64], captions_train=captions[:64],
        x_test=images[64:], captions_test=captions[64:], y_test=labels[64:],
        class_names=list(WORDS), image_shape=images.shape[1:],
    )


def test_pretrain_reports_zero_shot_probe_and_retrieval(data):
    result = pretrain_clip(data, TINY, verbose=0)
    for scores in (result.scores, result.random_init_scores):
        assert {"zero_shot_accuracy", "linear_probe_accuracy", "chance",
                "image_to_text_R@1", "text_to_image_R@10"} <= set(scores)
        assert 0.0 <= scores["zero_shot_accuracy"] <= 1.0
    assert result.scores["chance"] == 0.25
    assert len(result.history["loss"]) == 2
    assert result.model.tokenizer.vocabulary_size() <= TINY.vocabulary_size


def test_evaluate_without_labels_reports_retrieval_only(data):
    model = build_clip(TINY, data.captions_train, data.image_shape)
    unlabelled = types.SimpleNamespace(**{**vars(data), "y_test": None})
    scores = evaluate_clip(model, unlabelled)
    assert "zero_shot_accuracy" not in scores and "image_to_text_R@5" in scores


def test_dataset_batches_pairs_and_checks_lengths(data):
    ids = np.zeros((64, 12), "int32")
    batch = next(iter(image_text_dataset(data.x_train, ids, 16)))
    assert tuple(batch["images"].shape) == (16, 16, 16, 3)
    assert tuple(batch["token_ids"].shape) == (16, 12)
    with pytest.raises(ValueError, match="one caption per image"):
        image_text_dataset(data.x_train, ids[:10], 16)
    with pytest.raises(ValueError, match="larger than the 64 pairs"):
        image_text_dataset(data.x_train, ids, 128)


def test_top_captions_picture(data, tmp_path):
    model = build_clip(TINY, data.captions_train, data.image_shape)
    path = plot_top_captions(model, data.x_test, data.captions_test,
                             tmp_path / "top.png", num_images=4,
                             true_captions=data.captions_test)
    assert path.stat().st_size > 5000


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        ClipConfig(epochs=0)


def test_paper_preset_builds():
    from keras_ssl.recipes import make_config

    assert make_config("clip") == ClipConfig()
    paper = make_config("clip", "paper")
    assert (paper.image_backbone, paper.text_width, paper.text_layers,
            paper.text_heads, paper.projection_dim) == ("vit_base32", 512, 12, 8, 512)
    assert (paper.batch_size, paper.learning_rate, paper.weight_decay,
            paper.beta_2) == (32768, 5e-4, 0.2, 0.98)
    # The paper's sizes build (ViT-B/32 on 64-px images: a 2×2 grid).
    model = build_clip(paper, ["a photo of a cat", "a photo of a dog"] * 20,
                       (64, 64, 3))
    assert model.image_encoder.hidden_dim == 768
    assert model.text_encoder.num_layers == 12
