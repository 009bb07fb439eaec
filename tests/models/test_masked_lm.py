"""BERT's masked LM + NSP and RoBERTa's masked LM on every backend: the loss
against NumPy, training on the embedded corpus, saving and exporting the
backbone with its tokenizer, bad inputs, the cross-backend golden loss."""

import warnings

import keras
import keras_hub
import numpy as np
import pytest
from scipy.special import erf

from conftest import JIT_COMPILE
from harness import set_deterministic_weights
from keras_ssl.data.masked_lm import masked_lm_dataset
from keras_ssl.models.masked_lm import MaskedLanguageModel

LENGTH = 32
BATCH = 16
STEPS = 12
# The loss (MLM + NSP) of `_golden_model()` on `_fixed_inputs()`, the same on
# TensorFlow, JAX and PyTorch.
GOLDEN_LOSS = 5.420952796936035


def _np(x):
    return keras.ops.convert_to_numpy(x)


def tiny_bert(vocabulary_size, **kwargs):
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2,
        hidden_dim=32, intermediate_dim=64, max_sequence_length=LENGTH,
        dropout=0.0, **kwargs,
    )


def tiny_roberta(vocabulary_size):
    return keras_hub.models.RobertaBackbone(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2,
        hidden_dim=32, intermediate_dim=64, max_sequence_length=LENGTH,
        dropout=0.0,
    )


def _fixed_inputs(vocabulary_size=50, batch=4, length=12):
    """Hand-made ids: [CLS]=2 A [SEP]=3 B [SEP] padding, masks, labels."""
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocabulary_size, (batch, length)).astype("int32")
    lengths = np.array([12, 10, 9, 7])[:batch]
    segments = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, 0], ids[i, n // 2], ids[i, n - 1] = 2, 3, 3
        ids[i, n:] = 0
        segments[i, n // 2 + 1 : n] = 1
    positions = np.array([[1, 4, 7], [2, 6, 0], [3, 0, 0], [1, 2, 5]])[:batch]
    weights = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], "float32")
    mask_ids = np.take_along_axis(ids, positions, axis=1) * (weights > 0)
    ids[np.arange(batch)[:, None], positions] = np.where(weights > 0, 4, ids[
        np.arange(batch)[:, None], positions])
    return {
        "token_ids": ids,
        "segment_ids": segments.astype("int32"),
        "padding_mask": np.arange(length)[None] < lengths[:, None],
        "mask_positions": positions.astype("int32"),
        "mask_ids": mask_ids.astype("int32"),
        "mask_weights": weights,
        "next_sentence_labels": np.array([1, 0, 1, 0], "int32")[:batch],
    }


def _golden_model():
    model = MaskedLanguageModel(tiny_bert(50))
    set_deterministic_weights(model)
    return model


def _loss(model, inputs):
    outputs = model(inputs, training=True)
    return float(_np(model.compute_loss(x=inputs, y_pred=outputs)))


def _log_softmax_ce(logits, targets):
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def test_losses_match_a_numpy_reference():
    """The MLM head gathers the chosen positions, applies dense + gelu +
    layer norm and the *transposed token embedding* (tied weights); the
    MLM loss averages over the weighted slots only, NSP over the batch."""
    model = _golden_model()
    inputs = _fixed_inputs()
    outputs = model(inputs)
    backbone = model.backbone(model.backbone_inputs(inputs))
    sequence = _np(backbone["sequence_output"]).astype("float64")
    pooled = _np(backbone["pooled_output"]).astype("float64")
    head = model.mlm_head
    w = lambda v: _np(v).astype("float64")  # noqa: E731
    x = np.take_along_axis(sequence, inputs["mask_positions"][..., None], axis=1)
    x = x @ w(head._intermediate_dense.kernel) + w(head._intermediate_dense.bias)
    x = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    norm = head._intermediate_layer_norm
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + norm.epsilon) * w(norm.gamma) + w(norm.beta)
    embedding = w(model.backbone.token_embedding.embeddings)
    logits = x @ embedding.T + w(head._bias)
    np.testing.assert_allclose(_np(outputs["mlm_logits"]), logits, rtol=1e-4,
                               atol=1e-5)
    weights = inputs["mask_weights"]
    mlm = (_log_softmax_ce(logits, inputs["mask_ids"]) * weights).sum() / weights.sum()
    nsp_logits = pooled @ w(model.nsp_head.kernel) + w(model.nsp_head.bias)
    nsp = _log_softmax_ce(nsp_logits, inputs["next_sentence_labels"]).mean()
    assert _loss(model, inputs) == pytest.approx(mlm + nsp, rel=1e-5)
    # Unused slots (weight 0) do not count, whatever their target.
    changed = dict(inputs, mask_ids=np.where(weights > 0, inputs["mask_ids"], 7))
    assert _loss(model, changed) == pytest.approx(mlm + nsp, rel=1e-5)


def test_golden_loss_is_the_same_on_every_backend():
    assert _loss(_golden_model(), _fixed_inputs()) == pytest.approx(
        GOLDEN_LOSS, rel=1e-5
    )


def _dataset(documents, tokenizer, **kwargs):
    with warnings.catch_warnings():  # short rows truncate many sentences
        warnings.simplefilter("ignore", UserWarning)
        return masked_lm_dataset(documents, tokenizer, LENGTH, BATCH, seed=0,
                                 **kwargs)


def _fixed_batches(dataset, count=2):
    return [{k: _np(v) for k, v in b.items()} for b in dataset.take(count)]


def _mean_loss(model, batches):
    return float(np.mean([_loss(model, b) for b in batches]))


@pytest.fixture(scope="module")
def trained_bert(python_docs, wordpiece_tokenizer):
    """A tiny BERT trained (MLM + NSP, jit-compiled, AdamW with gradient
    accumulation over 2 batches) on the embedded corpus."""
    keras.utils.set_random_seed(0)
    tokenizer = wordpiece_tokenizer
    model = MaskedLanguageModel(tiny_bert(tokenizer.vocabulary_size()),
                                tokenizer=tokenizer)
    data = _dataset(python_docs.documents, tokenizer, repeat=True)
    held_out = _fixed_batches(
        _dataset(python_docs.test_documents, tokenizer, dynamic_masking=False)
    )
    before = _mean_loss(model, held_out)
    model.compile(
        optimizer=keras.optimizers.AdamW(
            1e-2, weight_decay=0.01, gradient_accumulation_steps=2
        ),
        jit_compile=JIT_COMPILE,
    )
    history = model.fit(data, steps_per_epoch=STEPS, epochs=1, verbose=0,
                        shuffle=False)
    return model, history, held_out, before


def test_bert_fit_lowers_the_loss_with_gradient_accumulation(trained_bert):
    model, history, held_out, before = trained_bert
    logs = history.history
    assert {"loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"} <= set(logs)
    assert np.isfinite(logs["loss"]).all()
    assert logs["loss"][0] == pytest.approx(
        logs["mlm_loss"][0] + logs["nsp_loss"][0], rel=1e-4
    )
    assert 0.0 <= logs["nsp_accuracy"][0] <= 1.0
    assert int(_np(model.optimizer.iterations)) == STEPS // 2
    after = _mean_loss(model, held_out)
    assert after < before - 0.3, (before, after)


def test_roberta_fit_without_nsp_lowers_the_loss(python_docs, roberta_tokenizer):
    tokenizer = roberta_tokenizer
    model = MaskedLanguageModel(
        tiny_roberta(tokenizer.vocabulary_size()),
        next_sentence_prediction=False, tokenizer=tokenizer,
    )
    options = dict(next_sentence_prediction=False, packing="full_sentences")
    data = _dataset(python_docs.documents, tokenizer, repeat=True, **options)
    held_out = _fixed_batches(_dataset(
        python_docs.test_documents, tokenizer, dynamic_masking=False, **options
    ))
    before = _mean_loss(model, held_out)
    model.compile(optimizer=keras.optimizers.AdamW(1e-2), jit_compile=JIT_COMPILE)
    history = model.fit(data, steps_per_epoch=STEPS, epochs=1, verbose=0,
                        shuffle=False)
    assert set(history.history) == {"loss", "mlm_loss", "mlm_accuracy"}
    after = _mean_loss(model, held_out)
    assert after < before - 0.3, (before, after)


def test_keras_round_trip_keeps_outputs_and_tokenizer(trained_bert, tmp_path):
    model, _, held_out, _ = trained_bert
    path = tmp_path / "bert.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, MaskedLanguageModel)
    assert loaded.next_sentence_prediction
    batch = dict(held_out[0])
    for key in ("mlm_logits", "nsp_logits"):
        np.testing.assert_allclose(
            _np(loaded(batch)[key]), _np(model(batch)[key]), rtol=1e-5, atol=1e-5
        )
    text = "The if statement is used for conditional execution."
    assert loaded.tokenizer.get_vocabulary() == model.tokenizer.get_vocabulary()
    np.testing.assert_array_equal(
        _np(loaded.tokenizer(text)), _np(model.tokenizer(text))
    )
    features = _np(loaded.encode(batch))
    assert features.shape == (BATCH, 32) and np.isfinite(features).all()
    np.testing.assert_allclose(features, _np(model.encode(batch)), rtol=1e-5,
                               atol=1e-5)
    # The loaded model trains on.
    loaded.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    logs = loaded.evaluate(batch, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(_loss(model, batch), rel=1e-4)


def test_backbone_and_tokenizer_export_as_a_keras_hub_preset(trained_bert, tmp_path):
    model, _, held_out, _ = trained_bert
    preset = str(tmp_path / "preset")
    model.backbone.save_to_preset(preset)
    model.tokenizer.save_to_preset(preset)
    backbone = keras_hub.models.Backbone.from_preset(preset)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    assert isinstance(tokenizer, keras_hub.tokenizers.BertTokenizer)
    features = model.backbone_inputs(held_out[0])
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(
            _np(backbone(features)[key]), _np(model.backbone(features)[key]),
            rtol=1e-5, atol=1e-5,
        )
    text = "Names refer to objects."
    np.testing.assert_array_equal(_np(tokenizer(text)), _np(model.tokenizer(text)))


def test_bad_inputs_fail_clearly():
    model = _golden_model()
    model.summary(print_fn=lambda *args, **kwargs: None)
    good = _fixed_inputs()
    cases = [
        (good["token_ids"], "takes a dict"),
        ({k: v for k, v in good.items() if k != "mask_positions"},
         "missing input keys \\['mask_positions'\\]"),
        (dict(good, labels=good["next_sentence_labels"]),
         "unknown keys \\['labels'\\]"),
        (dict(good, token_ids=good["token_ids"].astype("float32")), "integer ids"),
        (dict(good, token_ids=good["token_ids"][0]), "token_ids must have rank 2"),
        (dict(good, padding_mask=good["padding_mask"][:, :5]),
         "padding_mask must have the shape of token_ids"),
        (dict(good, mask_positions=good["mask_positions"] + 12),
         "mask_positions out of range"),
        (dict(good, mask_positions=-good["mask_positions"] - 1),
         "mask_positions out of range"),
        (dict(good, mask_weights=good["mask_weights"][:, :2]),
         "mask_weights must have the shape of mask_positions"),
        (dict(good, next_sentence_labels=good["next_sentence_labels"][:, None]),
         "next_sentence_labels must have rank 1"),
        ({k: np.tile(v, (1, 3)) for k, v in good.items()
          if k in ("token_ids", "padding_mask", "mask_positions")},
         "too long"),
    ]
    for inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(inputs)
    outputs = model({k: good[k] for k in ("token_ids", "padding_mask",
                                          "mask_positions")})
    with pytest.raises(ValueError, match="needs the input keys"):
        model.compute_loss(x={"token_ids": good["token_ids"]}, y_pred=outputs)
    no_nsp = MaskedLanguageModel(tiny_bert(50), next_sentence_prediction=False)
    with pytest.raises(ValueError, match="next_sentence_prediction=False"):
        no_nsp(good)


def test_bad_backbones_and_tokenizers_fail_clearly(
    wordpiece_tokenizer, gpt2_tokenizer
):
    with pytest.raises(ValueError, match="pooled"):
        MaskedLanguageModel(tiny_roberta(50))
    with pytest.raises(ValueError, match="vocabulary/model mismatch"):
        MaskedLanguageModel(tiny_bert(50), tokenizer=wordpiece_tokenizer)
    with pytest.raises(ValueError, match="unknown special tokens"):
        MaskedLanguageModel(
            tiny_bert(gpt2_tokenizer.vocabulary_size()), tokenizer=gpt2_tokenizer
        )
    with pytest.raises(ValueError, match="keras-hub BertBackbone"):
        MaskedLanguageModel(keras.Sequential([keras.layers.Dense(2)]))
