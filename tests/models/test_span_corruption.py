"""T5 span corruption: the loss against NumPy, pre-training on the embedded
corpus, text-to-text fine-tuning with greedy generation, saving, bad inputs
and the cross-backend golden loss."""

import os
import types
import warnings

import keras
import keras_hub
import numpy as np
import pytest
from conftest import JIT_COMPILE
from harness import set_deterministic_weights

from keras_ssl.backbones import t5_backbone
from keras_ssl.data.span_corruption import (
    encode_text_to_text,
    span_corruption_dataset,
    text_to_text_dataset,
)
from keras_ssl.models.span_corruption import T5SpanCorruption

VOCABULARY = 64
# The loss of `_fixed_model()` on `_fixed_batch()` with
# `set_deterministic_weights`, the same on every backend.
GOLDEN_LOSS = 4.22161


def tiny_backbone(vocabulary_size, hidden_dim=32):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mask.*")
        return t5_backbone(
            vocabulary_size=vocabulary_size, num_layers=1, num_heads=2,
            hidden_dim=hidden_dim, intermediate_dim=2 * hidden_dim, dropout=0.0,
        )


def _fixed_batch():
    """Two examples with padding on both sides (ids < VOCABULARY)."""
    rng = np.random.default_rng(0)
    encoder = rng.integers(3, VOCABULARY, size=(2, 10)).astype("int32")
    encoder_mask = np.ones((2, 10), "int32")
    encoder_mask[1, 7:] = 0
    encoder[1, 7:] = 0
    y = rng.integers(3, VOCABULARY, size=(2, 6)).astype("int32")
    weights = np.ones((2, 6), "int32")
    weights[0, 4:] = 0
    y[0, 4:] = 0
    decoder = np.concatenate([np.zeros((2, 1), "int32"), y[:, :-1]], axis=1)
    x = {
        "encoder_token_ids": encoder,
        "encoder_padding_mask": encoder_mask,
        "decoder_token_ids": decoder,
        "decoder_padding_mask": weights.copy(),
    }
    return x, y, weights


def _fixed_model():
    model = T5SpanCorruption(tiny_backbone(VOCABULARY, hidden_dim=16))
    set_deterministic_weights(model)
    return model


def _loss(model, x, y, weights):
    logits = model(x, training=True)
    return float(keras.ops.convert_to_numpy(
        model.compute_loss(x=x, y=y, y_pred=logits, sample_weight=weights)
    ))


def test_loss_matches_numpy_reference():
    model = _fixed_model()
    x, y, weights = _fixed_batch()
    outputs = model.backbone(x)
    hidden = keras.ops.convert_to_numpy(outputs["decoder_sequence_output"])
    embedding = keras.ops.convert_to_numpy(
        model.backbone.token_embedding.embeddings
    )
    # T5 1.0 (tied embedding): the decoder output scaled by d^-1/2, then the
    # transposed token embedding; cross-entropy over non-padding targets.
    logits = (hidden * 16**-0.5) @ embedding.T
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, y[..., None], -1)[..., 0]
    expected = -(picked * weights).sum() / weights.sum()
    assert _loss(model, x, y, weights) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)), logits, rtol=1e-4, atol=1e-5
    )
    # Same logits as keras-hub's T5Seq2SeqLM on the same backbone.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mask.*")
        lm = keras_hub.models.T5Seq2SeqLM(backbone=model.backbone)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(lm(x)), logits, rtol=1e-4, atol=1e-5
    )
    # Padded target positions do not count; without sample weights the
    # decoder padding mask selects the same positions.
    changed = y.copy()
    changed[0, 4:] = 7
    assert _loss(model, x, changed, weights) == pytest.approx(expected, rel=1e-5)
    assert _loss(model, x, y, None) == pytest.approx(expected, rel=1e-5)


def test_golden_loss_is_the_same_on_every_backend():
    loss = _loss(_fixed_model(), *_fixed_batch())
    print(f"{keras.backend.backend()} golden loss: {loss!r}")
    assert loss == pytest.approx(GOLDEN_LOSS, rel=1e-5)


# --- pre-training on the corpus, then fine-tuning: one model, trained once --
# A tiny text-to-text task: a few words of the corpus → a short phrase.
DESCRIBE = {
    "class": "class definition",
    "function": "function call",
    "list": "mutable sequence",
    "value": "value of the object",
}
PREFIX = "describe:"


@pytest.fixture(scope="module")
def trained(python_docs, t5_tokenizer):
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone(t5_tokenizer.vocabulary_size())
    model = T5SpanCorruption(
        backbone, t5_tokenizer, encoder_sequence_length=16,
        decoder_sequence_length=8,
    )
    # Held-out paragraphs, corrupted once (no shuffling, fixed seed).
    held_out = span_corruption_dataset(
        python_docs.test_documents, t5_tokenizer, 32, batch_size=64, seed=1,
        shuffle=False,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=JIT_COMPILE)
    before = model.evaluate(held_out, verbose=0, return_dict=True)
    pretraining = model.fit(
        span_corruption_dataset(
            python_docs.documents, t5_tokenizer, 32, batch_size=32, seed=0,
            repeat=True,
        ),
        epochs=3, steps_per_epoch=10, verbose=0,
    )
    after = model.evaluate(held_out, verbose=0, return_dict=True)
    inputs, targets = list(DESCRIBE), list(DESCRIBE.values())
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=JIT_COMPILE)
    fine_tuning = model.fit(
        text_to_text_dataset(
            inputs, targets, t5_tokenizer, 16, 8, batch_size=len(inputs),
            prefix=PREFIX, repeat=True,
        ),
        epochs=15, steps_per_epoch=20, verbose=0,
    )
    return types.SimpleNamespace(
        model=model, before=before, after=after, pretraining=pretraining,
        fine_tuning=fine_tuning, inputs=inputs, targets=targets,
    )


def test_span_corruption_pretraining_lowers_the_loss(trained):
    history = trained.pretraining.history
    assert set(history) == {"loss", "accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    assert trained.after["loss"] < trained.before["loss"] - 0.3
    assert trained.after["accuracy"] > trained.before["accuracy"]


def test_text_to_text_fine_tuning_and_generate(trained):
    history = trained.fine_tuning.history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    prompts = [f"{PREFIX} {text}" for text in trained.inputs]
    generated = trained.model.generate(prompts)
    assert isinstance(generated, list) and len(generated) == 4
    # Greedy decoding writes the trained targets (all four in practice).
    correct = sum(g == t for g, t in zip(generated, trained.targets))
    assert correct >= 2, (generated, trained.targets)
    single = trained.model.generate(prompts[0])
    assert isinstance(single, str)


def test_the_fine_tuned_decoder_reads_its_encoder(trained, t5_tokenizer):
    # The four targets differ only through the inputs: given another
    # example's input, the decoder must lose most of what it learned.
    from keras_ssl.evaluation import encoder_dependence

    data = text_to_text_dataset(trained.inputs, trained.targets, t5_tokenizer,
                                16, 8, batch_size=4, prefix=PREFIX)
    scores = encoder_dependence(trained.model, data)
    assert scores["loss"] < 0.5 * trained.fine_tuning.history["loss"][0]
    assert scores["gain"] > 1.0, scores


def test_keras_round_trip(trained, tmp_path, t5_tokenizer):
    model = trained.model
    path = os.path.join(tmp_path, "t5.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, T5SpanCorruption)
    assert loaded.get_config()["encoder_sequence_length"] == 16
    x, _, _ = encode_text_to_text(
        trained.inputs[:2], trained.targets[:2], t5_tokenizer, 16, 8,
        prefix=PREFIX,
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
    )
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    # The tokenizer (its SentencePiece model) came with it.
    assert loaded.tokenizer.get_vocabulary() == t5_tokenizer.get_vocabulary()
    assert loaded.tokenizer.token_to_id("<extra_id_3>") == (
        t5_tokenizer.token_to_id("<extra_id_3>")
    )
    # Same weights, outputs and tokenizer: generation is the same (decoding
    # itself is tested in test_text_to_text_fine_tuning_and_generate).


def test_backbone_and_tokenizer_presets(trained, tmp_path):
    model = trained.model
    preset = os.path.join(tmp_path, "preset")
    model.backbone.save_to_preset(preset)
    model.tokenizer.save_to_preset(preset)
    backbone = keras_hub.models.Backbone.from_preset(preset)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert isinstance(backbone, keras_hub.models.T5Backbone)
    assert tokenizer.get_vocabulary() == model.tokenizer.get_vocabulary()
    x, _, _ = encode_text_to_text(
        trained.inputs[:2], trained.targets[:2], tokenizer, 16, 8, prefix=PREFIX
    )
    expected = model.backbone(x)
    got = backbone(x)
    for key in ("encoder_sequence_output", "decoder_sequence_output"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(got[key]),
            keras.ops.convert_to_numpy(expected[key]),
        )
    reloaded = T5SpanCorruption(backbone, tokenizer)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(reloaded(x)), keras.ops.convert_to_numpy(model(x))
    )


def test_generate_errors(trained):
    model = trained.model
    with pytest.raises(ValueError, match="input 1 is an empty string"):
        model.generate([f"{PREFIX} class", "  "])
    with pytest.raises(ValueError, match="got no strings"):
        model.generate([])
    with pytest.raises(ValueError, match="takes strings: input 0 is a int"):
        model.generate([3])
    long_text = f"{PREFIX} " + " ".join(list(DESCRIBE) * 5)
    with pytest.raises(ValueError, match="more than encoder_sequence_length=16"):
        model.generate(long_text)
    prompts = [long_text] + [f"{PREFIX} {t}" for t in trained.inputs[1:4]]
    with pytest.warns(UserWarning, match="truncated"):
        assert len(model.generate(prompts, truncate=True)) == 4
    no_tokenizer = T5SpanCorruption(model.backbone)
    with pytest.raises(ValueError, match="has no tokenizer"):
        no_tokenizer.generate(f"{PREFIX} class")


def test_bad_inputs_and_construction(t5_tokenizer):
    model = T5SpanCorruption(tiny_backbone(VOCABULARY, hidden_dim=16))
    x, y, weights = _fixed_batch()
    with pytest.raises(ValueError, match=r"missing keys \['decoder_padding_mask'\]"):
        model({k: v for k, v in x.items() if k != "decoder_padding_mask"})
    with pytest.raises(ValueError, match="unknown keys \\['token_ids'\\]"):
        model({**x, "token_ids": x["encoder_token_ids"]})
    with pytest.raises(ValueError, match="takes a dict"):
        model(x["encoder_token_ids"])
    with pytest.raises(ValueError, match="encoder_token_ids must be an integer"):
        model({**x, "encoder_token_ids": x["encoder_token_ids"].astype("float32")})
    with pytest.raises(ValueError, match="decoder_token_ids must be an integer"):
        model({**x, "decoder_token_ids": x["decoder_token_ids"][0]})
    with pytest.raises(ValueError, match="same shape"):
        model({**x, "encoder_padding_mask": x["encoder_padding_mask"][:, :5]})
    with pytest.raises(ValueError, match="same batch size"):
        model({**x, "decoder_token_ids": x["decoder_token_ids"][:1],
               "decoder_padding_mask": x["decoder_padding_mask"][:1]})
    logits = model(x)
    with pytest.raises(ValueError, match="needs the target token ids"):
        model.compute_loss(x=x, y=None, y_pred=logits)
    with pytest.raises(ValueError, match="targets must have shape"):
        model.compute_loss(x=x, y=y[:, :3], y_pred=logits)
    # The tokenizer's ids must fit the backbone's embedding.
    with pytest.raises(ValueError, match=r"vocabulary/model mismatch.*\d+ tokens.*only 64"):
        T5SpanCorruption(tiny_backbone(VOCABULARY, 16), t5_tokenizer)
    with pytest.raises(ValueError, match="T5SpanCorruption's backbone must be"):
        T5SpanCorruption(keras.Sequential([keras.layers.Dense(2)]))
    wordpiece = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=["[PAD]", "[UNK]", "a", "b"]
    )
    with pytest.raises(ValueError, match="must have T5's <pad> and </s>"):
        T5SpanCorruption(tiny_backbone(VOCABULARY, 16), wordpiece)
