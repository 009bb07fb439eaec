"""CLIP beyond the shared harness: captions from a trained tokenizer saved
with the model, the [EOT] feature, the clipped temperature, the global batch
under tf.distribute, other text encoders and clear errors."""

import doctest

import keras
import keras_hub
import numpy as np
import pytest

import keras_ssl.data.text as text_module
from cases_clip import SEQUENCE_LENGTH, tiny_clip, tiny_text_encoder
from conftest import BACKEND, JIT_COMPILE
from harness import IMAGE_SIZE, tiny_encoder
from keras_ssl.backbones import ViTBackbone
from keras_ssl.data import tokenize_captions, train_caption_tokenizer
from keras_ssl.models import CLIP

WORDS = ["zero", "one", "two", "three"]


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 64)
    captions = [f"a {['small', 'large'][i % 2]} {WORDS[l]}" for i, l in enumerate(labels)]
    images = rng.random((64, IMAGE_SIZE, IMAGE_SIZE, 3)) * 0.3
    images += labels[:, None, None, None] / 5
    tokenizer = train_caption_tokenizer(captions, vocabulary_size=64)
    return images.astype("float32"), captions, tokenizer


def _with_tokenizer(tokenizer, **kwargs):
    text_encoder = tiny_text_encoder(vocabulary_size=tokenizer.vocabulary_size())
    return CLIP(tiny_encoder(), text_encoder, 8, tokenizer, **kwargs)


def test_tokenize_captions_packs_sot_tokens_eot_and_padding(corpus):
    _, _, tokenizer = corpus
    ids = tokenize_captions(tokenizer, ["a small two"], SEQUENCE_LENGTH)
    tokens = [tokenizer.id_to_token(int(i)) for i in ids[0]]
    assert tokens == ["[SOT]", "a", "small", "two", "[EOT]", "[PAD]", "[PAD]", "[PAD]"]
    assert ids.dtype == np.int32


def test_tokenize_captions_rejects_empty_and_over_long_captions(corpus):
    _, _, tokenizer = corpus
    with pytest.raises(ValueError, match="caption 1 is empty"):
        tokenize_captions(tokenizer, ["a two", "  "], SEQUENCE_LENGTH)
    long = " ".join(["two"] * 10)
    with pytest.raises(ValueError, match="caption 0 is too long: 10 tokens"):
        tokenize_captions(tokenizer, [long], SEQUENCE_LENGTH)
    ids = tokenize_captions(tokenizer, [long], SEQUENCE_LENGTH, truncate=True)
    assert tokenizer.id_to_token(int(ids[0, -1])) == "[EOT]"


def test_text_modules_docstrings():
    assert doctest.testmod(text_module).failed == 0


def test_text_feature_is_the_eot_token(corpus):
    """Changing what follows [EOT] (padding) leaves the caption's embedding
    alone (causal encoder, feature at the last non-pad position), while
    changing a token before it does not."""
    images, captions, tokenizer = corpus
    model = _with_tokenizer(tokenizer)
    ids = model.tokenize(captions[:4])
    model({"images": images[:4], "token_ids": ids})
    base = _np(model.text_features(ids))
    features = _np(model.text_encoder({"token_ids": ids}))
    last = (ids != 0).sum(axis=1) - 1
    np.testing.assert_allclose(base, features[np.arange(4), last], rtol=1e-6)
    changed = ids.copy()
    changed[:, 0] = 1  # [UNK] instead of [SOT]
    assert not np.allclose(_np(model.text_features(changed)), base)


def test_fit_then_round_trip_keeps_tokenizer_and_temperature(corpus, tmp_path):
    images, captions, tokenizer = corpus
    model = _with_tokenizer(tokenizer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=JIT_COMPILE)
    ids = model.tokenize(captions)
    history = model.fit(
        {"images": images, "token_ids": ids}, batch_size=16, epochs=3, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    scale = float(_np(model.logit_scale))
    assert scale != pytest.approx(np.log(1 / 0.07))  # the temperature learns
    model.save(tmp_path / "clip.keras")
    loaded = keras.saving.load_model(tmp_path / "clip.keras")
    assert float(_np(loaded.logit_scale)) == scale
    np.testing.assert_array_equal(loaded.tokenize(captions[:3]), ids[:3])
    np.testing.assert_allclose(
        loaded.encode_texts(captions[:3]), model.encode_texts(captions[:3]),
        rtol=1e-6, atol=1e-6,
    )
    np.testing.assert_allclose(
        loaded.encode_images(images[:3]), model.encode_images(images[:3]),
        rtol=1e-6, atol=1e-6,
    )
    # Image and text encoders export alone and reload as backbones.
    model.image_encoder.save(tmp_path / "image.keras")
    model.text_encoder.save_to_preset(str(tmp_path / "text_preset"))
    text = keras_hub.models.Backbone.from_preset(str(tmp_path / "text_preset"))
    np.testing.assert_allclose(
        _np(text({"token_ids": ids[:3]})),
        _np(model.text_encoder({"token_ids": ids[:3]})),
        rtol=1e-6, atol=1e-6,
    )
    image = keras.saving.load_model(tmp_path / "image.keras")
    np.testing.assert_allclose(
        _np(image(images[:3])), _np(model.image_encoder(images[:3])),
        rtol=1e-6, atol=1e-6,
    )


def test_logit_scale_is_clipped_at_the_maximum(corpus):
    images, captions, tokenizer = corpus
    model = _with_tokenizer(tokenizer, initial_logit_scale=8.0)
    inputs = {"images": images[:8], "token_ids": model.tokenize(captions[:8])}
    model.compile(optimizer="sgd")
    logs = model.evaluate(inputs, verbose=0, return_dict=True)
    assert logs["logit_scale"] == pytest.approx(100.0)


def test_tokenizer_larger_than_the_text_vocabulary_fails(corpus):
    *_, tokenizer = corpus
    with pytest.raises(ValueError, match="embeds only 8"):
        CLIP(tiny_encoder(), tiny_text_encoder(vocabulary_size=8), 8, tokenizer)


def test_tokenize_needs_a_tokenizer():
    with pytest.raises(ValueError, match="no tokenizer"):
        tiny_clip().tokenize(["a two"])


def test_a_bert_text_encoder_gets_padding_mask_and_segment_ids(corpus):
    images, captions, tokenizer = corpus
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=32, max_sequence_length=SEQUENCE_LENGTH,
    )
    model = CLIP(tiny_encoder(), bert, 8, tokenizer)
    ids = model.tokenize(captions[:4])
    out = model({"images": images[:4], "token_ids": ids})
    assert tuple(out["text_embeddings"].shape) == (4, 8)
    # Padding is masked out of BERT's attention: the same captions padded
    # to fewer positions embed the same.
    assert (ids[:, 6:] == 0).all()
    np.testing.assert_allclose(
        _np(model.embed_token_ids(ids[:, :6])), _np(out["text_embeddings"]),
        rtol=1e-5, atol=1e-5,
    )


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
@pytest.mark.parametrize("gather", [True, False])
def test_mirrored_strategy_uses_the_global_batch(gather, mirrored_strategy):
    """One SGD step over 2 replicas (4 pairs each) gives the loss and the
    weights of one device with the 8 pairs, because the embeddings are
    gathered with gradient; without the gather each replica only contrasts
    its own 4 pairs, and both differ."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    ids = rng.integers(4, 16, (8, SEQUENCE_LENGTH)).astype("int32")
    ids[:, 6:] = 0
    inputs = {"images": images, "token_ids": ids}

    def one_step(strategy):
        with strategy.scope():
            # A ViT image encoder: no batch norm, whose per-replica
            # statistics would differ from one device's anyway.
            vit = ViTBackbone(image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                              patch_size=4, hidden_dim=16, num_layers=1,
                              num_heads=2)
            model = CLIP(vit, tiny_text_encoder(), 8, gather_global_batch=gather)
            model(inputs)
            weights_rng = np.random.default_rng(1)
            for w in model.weights:
                if len(w.shape):
                    w.assign(weights_rng.normal(size=w.shape).astype("float32") * 0.3)
            model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
            history = model.fit(inputs, batch_size=8, epochs=1, verbose=0,
                                shuffle=False)
        return history.history["loss"][0], [_np(w) for w in model.weights]

    loss_1, weights_1 = one_step(tf.distribute.get_strategy())
    loss_2, weights_2 = one_step(mirrored_strategy)
    if gather:
        np.testing.assert_allclose(loss_2, loss_1, rtol=1e-5)
        for a, b in zip(weights_2, weights_1):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    else:
        assert abs(loss_2 - loss_1) > 1e-2
