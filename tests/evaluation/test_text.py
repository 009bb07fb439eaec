"""Downstream text evaluation: packing, pooling, the classifier, the scores."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_ssl.evaluation.text import (
    TextClassifier,
    backbone_inputs,
    masked_mean,
    pack_texts,
    random_init_like,
    text_classification_scores,
)


def _tiny(cls, vocabulary_size, **kwargs):
    sizes = dict(vocabulary_size=vocabulary_size, num_layers=1, num_heads=2,
                 hidden_dim=16, intermediate_dim=32)
    if cls is not keras_hub.models.T5Backbone:
        sizes["max_sequence_length"] = 16
    return cls(**sizes, **kwargs)


@pytest.mark.parametrize("kind", ["bert", "roberta", "gpt2", "t5"])
def test_pack_texts_frames_each_models_text(kind, wordpiece_tokenizer,
                                            roberta_tokenizer, gpt2_tokenizer,
                                            t5_tokenizer):
    tokenizer = {"bert": wordpiece_tokenizer, "roberta": roberta_tokenizer,
                 "gpt2": gpt2_tokenizer, "t5": t5_tokenizer}[kind]
    packed = pack_texts(tokenizer, ["The if statement.", "A name"], 12)
    ids, mask = packed["token_ids"], packed["padding_mask"]
    assert ids.shape == mask.shape == (2, 12) and ids.dtype == np.int32
    body = np.asarray(tokenizer("The if statement.")).tolist()
    first = ids[0][mask[0]].tolist()
    t = tokenizer
    expected = {
        "bert": lambda: [t.cls_token_id, *body, t.sep_token_id],
        "roberta": lambda: [t.start_token_id, *body, t.end_token_id],
        "gpt2": lambda: [t.end_token_id, *body, t.end_token_id],
        "t5": lambda: [*body, t.end_token_id],  # no start token for T5
    }[kind]()
    assert first == expected
    assert (ids[~mask] == tokenizer.pad_token_id).all()


def test_pack_texts_truncates_with_a_warning_or_raises(wordpiece_tokenizer):
    long = "the " * 40
    with pytest.warns(UserWarning, match="1 of 2 texts were longer"):
        packed = pack_texts(wordpiece_tokenizer, [long, "short"], 10)
    assert packed["padding_mask"][0].all()
    assert packed["token_ids"][0, -1] == wordpiece_tokenizer.sep_token_id
    with pytest.raises(ValueError, match="text 0 has 40 tokens"):
        pack_texts(wordpiece_tokenizer, [long], 10, truncate=False)
    with pytest.raises(ValueError, match="text 1 is empty"):
        pack_texts(wordpiece_tokenizer, ["words", "  "], 10)


def test_masked_mean_ignores_padding():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    got = keras.ops.convert_to_numpy(masked_mean(x, mask))
    np.testing.assert_allclose(got, [x[0, :2].mean(0), x[1, 0]])


def test_t5_and_bert_get_their_inputs():
    t5 = _tiny(keras_hub.models.T5Backbone, 32)
    ids, mask = np.ones((3, 5), "int32"), np.ones((3, 5), bool)
    inputs = backbone_inputs(t5, ids, mask)
    assert set(inputs) == {"encoder_token_ids", "encoder_padding_mask",
                           "decoder_token_ids", "decoder_padding_mask"}
    bert = _tiny(keras_hub.models.BertBackbone, 32)
    assert "segment_ids" in backbone_inputs(bert, ids, mask)


def test_classifier_saves_and_separable_texts_are_classified(tmp_path,
                                                             wordpiece_tokenizer):
    texts = [f"{w} statement {i}" for i in range(20) for w in ("class", "module")]
    labels = np.array([0, 1] * 20)
    backbone = _tiny(keras_hub.models.BertBackbone,
                     wordpiece_tokenizer.vocabulary_size())
    scores = text_classification_scores(
        backbone, wordpiece_tokenizer, texts[:30], labels[:30], texts[30:],
        labels[30:], sequence_length=8, fine_tune_epochs=1,
    )
    assert scores["probe"] == 1.0  # even random features separate two words
    assert 0.0 <= scores["fine_tune"] <= 1.0
    classifier = TextClassifier(backbone, 2)
    packed = pack_texts(wordpiece_tokenizer, texts[:4], 8)
    logits = keras.ops.convert_to_numpy(classifier(packed))
    classifier.save(tmp_path / "c.keras")
    loaded = keras.saving.load_model(tmp_path / "c.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(packed)), logits,
                               rtol=1e-6, atol=1e-6)
    # BERT's pooled [CLS] feature instead of the mean; GPT-2 has none.
    cls = TextClassifier(backbone, 2, pooling="cls")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(cls.features(packed)),
        keras.ops.convert_to_numpy(backbone(backbone_inputs(
            backbone, packed["token_ids"], packed["padding_mask"]))["pooled_output"]),
        rtol=1e-6, atol=1e-6,
    )
    gpt = _tiny(keras_hub.models.GPT2Backbone, 32)
    with pytest.raises(ValueError, match="needs a backbone with a 'pooled_output'"):
        TextClassifier(gpt, 2, pooling="cls").features(
            dict(packed, token_ids=packed["token_ids"] % 32))
    with pytest.raises(ValueError, match="pooling must be"):
        TextClassifier(backbone, 2, pooling="max")
    fresh = random_init_like(backbone)
    assert type(fresh) is type(backbone)
    assert not np.allclose(fresh.get_weights()[0], backbone.get_weights()[0])
