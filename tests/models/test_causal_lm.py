"""GPT (CausalLanguageModel) on every backend: packed and padded rows, the
shifted next-token loss without padding, training on the embedded corpus,
greedy/top-k/top-p/random generation through keras-hub, `.keras` and
keras-hub preset round trips, perplexity against the unigram baseline, the
cross-backend loss and clear errors."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from conftest import JIT_COMPILE
from harness import set_deterministic_weights
from keras_ssl.data.causal_lm import (
    causal_lm_arrays,
    causal_lm_dataset,
    end_token_last,
)
from keras_ssl.evaluation.perplexity import perplexity, unigram_perplexity
from keras_ssl.models.causal_lm import CausalLanguageModel

SENTENCE = "The if statement is used for conditional execution."
PROMPT = "The if statement"
MEMORY_LENGTH = 16
# The loss of `_golden_model()` on `_golden_inputs()`, the same on
# TensorFlow, JAX and PyTorch (deterministic weights).
GOLDEN_LOSS = 4.7184774


def _np(x):
    return keras.ops.convert_to_numpy(x)


def tiny_backbone(vocabulary_size, max_sequence_length=32, num_layers=1):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=2,
        hidden_dim=32, intermediate_dim=64, dropout=0.0,
        max_sequence_length=max_sequence_length,
    )


@pytest.fixture(scope="module")
def tokenizer(gpt2_tokenizer):
    # keras-hub pads GPT-2 rows with id 0: <|endoftext|> must not be id 0.
    if gpt2_tokenizer.end_token_id == gpt2_tokenizer.pad_token_id:
        return end_token_last(gpt2_tokenizer)
    return gpt2_tokenizer


@pytest.fixture(scope="module")
def end_first_tokenizer(tokenizer):
    """The tokenizer with <|endoftext|> at id 0, where BPE trainers put
    special tokens (and where keras-hub's GPT-2 padding is)."""
    end = tokenizer.id_to_token(tokenizer.end_token_id)
    order = sorted((i, t) for t, i in tokenizer.vocabulary.items() if t != end)
    vocabulary = {end: 0, **{t: n + 1 for n, (_, t) in enumerate(order)}}
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary=vocabulary, merges=list(tokenizer.merges)
    )


def _compiled(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  jit_compile=JIT_COMPILE)
    return model


@pytest.fixture(scope="module")
def corpus_run(python_docs, tokenizer):
    """A tiny GPT trained 150 steps on the corpus (the training documents),
    with the held-out paragraphs as a test set."""
    keras.utils.set_random_seed(0)
    vocabulary_size = tokenizer.vocabulary_size()
    model = _compiled(
        CausalLanguageModel(tiny_backbone(vocabulary_size), tokenizer), 1e-2
    )
    train = causal_lm_dataset(python_docs.documents, tokenizer, 32, 16,
                              repeat=True, seed=0)
    history = model.fit(train, epochs=5, steps_per_epoch=30, verbose=0)
    test = causal_lm_dataset(python_docs.test_documents, tokenizer, 32, 128,
                             shuffle=False)
    return model, history.history, test


@pytest.fixture(scope="module")
def memorised(tokenizer):
    """A tiny GPT that saw only `SENTENCE` (one padded row) 100 times."""
    keras.utils.set_random_seed(0)
    row = causal_lm_arrays([SENTENCE], tokenizer, MEMORY_LENGTH, packing=False)
    model = _compiled(
        CausalLanguageModel(
            tiny_backbone(tokenizer.vocabulary_size(), MEMORY_LENGTH),
            tokenizer, seed=3,
        ),
        1e-2,
    )
    data = tf.data.Dataset.from_tensors(row).repeat()
    model.fit(data, epochs=1, steps_per_epoch=100, verbose=0)
    return model


# --- data ------------------------------------------------------------------
def test_packed_rows_overlap_by_one_token_and_hold_the_whole_stream(tokenizer):
    documents = ["The if statement.", "A class is a type.", "Return."]
    rows = causal_lm_arrays(documents, tokenizer, 8, packing=True)
    ids, mask = rows["token_ids"], rows["padding_mask"]
    end = tokenizer.end_token_id
    stream = [t for d in documents for t in [end, *_np(tokenizer(d)).tolist()]]
    assert ids.shape[1] == 8 and ids.dtype == np.int32
    assert mask[:-1].all() and mask[-1, 0] == 1  # only the last row pads
    rebuilt = list(ids[0]) + [t for r, m in zip(ids[1:], mask[1:])
                              for t in r[1:][m[1:] == 1]]
    assert rebuilt == stream
    np.testing.assert_array_equal(ids[1:, 0], ids[:-1, -1])  # overlap
    # Every token after the first is a next-token target exactly once.
    assert int((mask[:, 1:] * mask[:, :-1]).sum()) == len(stream) - 1


def test_padded_rows_are_one_per_text_and_cut_with_a_warning(tokenizer):
    end, pad = tokenizer.end_token_id, tokenizer.pad_token_id
    ids = _np(tokenizer("Return.")).tolist()
    rows = causal_lm_arrays(["Return."], tokenizer, 8, packing=False)
    expected = [end, *ids, end] + [pad] * (6 - len(ids))
    assert rows["token_ids"][0].tolist() == expected
    assert rows["padding_mask"][0].tolist() == [1] * (len(ids) + 2) + [0] * (
        6 - len(ids)
    )
    with pytest.warns(UserWarning, match="1 of 2 documents are longer"):
        cut = causal_lm_arrays(["Return.", SENTENCE * 3], tokenizer, 8,
                               packing=False)
    assert cut["padding_mask"][1].all()
    with pytest.raises(ValueError, match="document 1 has .* tokens"):
        causal_lm_arrays(["Return.", SENTENCE * 3], tokenizer, 8,
                         packing=False, truncate=False)


def test_the_dataset_is_batched_and_shuffled_by_its_seed(tokenizer, python_docs):
    docs = python_docs.documents[:3]
    a = next(iter(causal_lm_dataset(docs, tokenizer, 16, 4, seed=1)))
    b = next(iter(causal_lm_dataset(docs, tokenizer, 16, 4, seed=1)))
    c = next(iter(causal_lm_dataset(docs, tokenizer, 16, 4, shuffle=False)))
    assert set(a) == {"token_ids", "padding_mask"}
    assert tuple(a["token_ids"].shape) == (4, 16)
    np.testing.assert_array_equal(a["token_ids"], b["token_ids"])
    assert not np.array_equal(a["token_ids"], c["token_ids"])


@pytest.mark.parametrize(
    "documents, kwargs, match",
    [
        ([], {}, "corpus is empty"),
        (["fine", "  "], {}, "document 1 is an empty string"),
        (["fine", 3], {}, "document 1 is a int"),
        (["fine"], {"sequence_length": 1}, "at least 2"),
        (["fine"], {"batch_size": 0}, "batch_size"),
    ],
)
def test_the_dataset_rejects_bad_corpora(tokenizer, documents, kwargs, match):
    args = {"sequence_length": 8, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        causal_lm_dataset(documents, tokenizer, **args)


def test_end_token_last_moves_only_the_special_token(end_first_tokenizer,
                                                    tokenizer):
    assert end_first_tokenizer.end_token_id == end_first_tokenizer.pad_token_id
    moved = end_token_last(end_first_tokenizer)
    size = end_first_tokenizer.vocabulary_size()
    assert moved.vocabulary_size() == size
    assert moved.end_token_id == moved.start_token_id == size - 1
    assert moved.pad_token_id != moved.end_token_id
    assert dict(moved.vocabulary) == dict(tokenizer.vocabulary)
    to_tokens = lambda tok, text: [  # noqa: E731
        tok.id_to_token(int(i)) for i in _np(tok(text))
    ]
    assert to_tokens(moved, SENTENCE) == to_tokens(end_first_tokenizer, SENTENCE)


def test_the_data_module_docstring_example_runs():
    import doctest

    import keras_ssl.data.causal_lm as module

    assert doctest.testmod(module).failed == 0


def test_the_dataset_needs_a_gpt2_tokenizer():
    with pytest.raises(ValueError, match="GPT2Tokenizer"):
        causal_lm_dataset(["text"], object(), 8, 2)


# --- the objective ---------------------------------------------------------
def _golden_inputs(vocabulary_size=64, length=12):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocabulary_size, (2, length)).astype("int32")
    mask = np.ones((2, length), "int32")
    mask[1, -4:] = 0
    ids[1, -4:] = 0
    return {"token_ids": ids, "padding_mask": mask}


def _golden_model():
    model = CausalLanguageModel(tiny_backbone(64, 16, num_layers=2))
    set_deterministic_weights(model)
    return model


def test_the_loss_is_next_token_cross_entropy_without_padding():
    model = _golden_model()
    inputs = _golden_inputs()
    logits = model.predict_on_batch(inputs)  # one compiled forward pass
    loss = float(_np(model.compute_loss(x=inputs, y_pred=logits)))
    ids, mask = inputs["token_ids"], inputs["padding_mask"]
    z = _np(logits).astype("float64")[:, :-1]
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, ids[:, 1:, None], axis=-1)[..., 0]
    counts = (mask[:, 1:] * mask[:, :-1]) == 1
    assert counts.sum() == 11 + 7
    assert loss == pytest.approx(nll[counts].mean(), rel=1e-5)
    # What stands in the padding changes nothing; the mask, not the ids,
    # says what is text (GPT-2 pads with a real token).
    noisy = dict(inputs, token_ids=np.where(mask == 1, ids, 7).astype("int32"))
    noisy_logits = model.predict_on_batch(noisy)
    assert float(_np(model.compute_loss(x=noisy, y_pred=noisy_logits))) == (
        pytest.approx(loss, rel=1e-5)
    )
    # Causal: a later token does not change the earlier positions' logits.
    changed = ids.copy()
    changed[:, 6] = (changed[:, 6] + 1) % 64
    later = model.predict_on_batch({"token_ids": changed, "padding_mask": mask})
    np.testing.assert_allclose(later[:, :6], _np(logits)[:, :6], atol=1e-5)
    assert not np.allclose(later[:, 6:], _np(logits)[:, 6:])


def test_the_loss_is_the_same_on_every_backend():
    model = _golden_model()
    inputs = _golden_inputs()
    logits = model.predict_on_batch(inputs)
    loss = float(_np(model.compute_loss(x=inputs, y_pred=logits)))
    print("golden loss", repr(loss))
    assert GOLDEN_LOSS is not None
    assert loss == pytest.approx(GOLDEN_LOSS, rel=1e-5)


# --- training on the corpus ------------------------------------------------
def test_fit_on_the_corpus_lowers_the_loss(corpus_run):
    _, history, _ = corpus_run
    assert {"loss", "accuracy"} <= set(history)
    assert history["loss"][-1] < history["loss"][0] - 0.3, history
    assert history["accuracy"][-1] > history["accuracy"][0], history


def test_perplexity_on_held_out_text_is_below_the_unigram_baseline(
    corpus_run, python_docs, tokenizer
):
    model, _, test = corpus_run
    train = causal_lm_dataset(python_docs.documents, tokenizer, 32, 512,
                              shuffle=False)
    baseline = unigram_perplexity(train, test, tokenizer.vocabulary_size())
    value, mean_nll, count = perplexity(model, test, return_nll=True)
    print(f"perplexity {value:.1f} vs unigram {baseline:.1f} ({count} tokens)")
    assert count > 1000
    assert value == pytest.approx(np.exp(mean_nll))
    assert value < baseline, (value, baseline)


def test_perplexity_is_exp_of_the_training_loss_on_one_batch(corpus_run):
    model, _, test = corpus_run
    batch = {k: _np(v) for k, v in next(iter(test)).items()}
    logits = model.predict_on_batch(batch)
    loss = float(_np(model.compute_loss(x=batch, y_pred=logits)))
    assert perplexity(model, batch) == pytest.approx(np.exp(loss), rel=1e-4)


# --- generation ------------------------------------------------------------
def test_greedy_generation_reproduces_the_memorised_text(memorised):
    assert memorised.generate(PROMPT, max_length=MEMORY_LENGTH) == SENTENCE
    both = memorised.generate([PROMPT, "The if"], max_length=MEMORY_LENGTH)
    assert both == [SENTENCE, SENTENCE]
    continuation = memorised.generate(PROMPT, strip_prompt=True)
    assert PROMPT + continuation == SENTENCE


def test_samplers_return_text_and_top_1_is_greedy(memorised):
    greedy = memorised.generate(PROMPT)
    assert memorised.generate(PROMPT, sampler="top_k", k=1) == greedy
    for options in (
        {"sampler": "top_p", "p": 0.9, "temperature": 0.7},
        {"sampler": "random", "temperature": 2.0},
    ):
        texts = memorised.generate([PROMPT, "A class"], **options)
        assert isinstance(texts, list) and len(texts) == 2, options
        assert all(isinstance(t, str) for t in texts)
        assert texts[0].startswith(PROMPT) and texts[1].startswith("A class")
    sampler = keras_hub.samplers.TopKSampler(k=1)
    assert memorised.make_sampler(sampler) is sampler


def test_a_saved_model_keeps_its_outputs_and_tokenizer(memorised, tmp_path):
    memorised.save(tmp_path / "gpt.keras")
    loaded = keras.saving.load_model(tmp_path / "gpt.keras")
    assert isinstance(loaded, CausalLanguageModel)
    inputs = causal_lm_arrays([SENTENCE], memorised.tokenizer, MEMORY_LENGTH,
                              packing=False)
    np.testing.assert_allclose(_np(loaded(inputs)), _np(memorised(inputs)),
                               atol=1e-6)
    assert loaded.tokenizer.vocabulary == memorised.tokenizer.vocabulary
    assert loaded.tokenizer.end_token_id == memorised.tokenizer.end_token_id
    np.testing.assert_array_equal(
        _np(loaded.tokenizer(SENTENCE)), _np(memorised.tokenizer(SENTENCE))
    )


def test_a_keras_hub_preset_reloads_and_generates_the_same(memorised, tmp_path):
    lm = memorised.to_keras_hub()
    assert isinstance(lm, keras_hub.models.GPT2CausalLM)
    assert lm.backbone is memorised.backbone
    lm.save_to_preset(str(tmp_path / "preset"))
    reloaded = keras_hub.models.GPT2CausalLM.from_preset(str(tmp_path / "preset"))
    reloaded.compile(sampler="greedy")
    text = reloaded.generate(PROMPT, max_length=MEMORY_LENGTH)
    text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
    assert text == memorised.generate(PROMPT, max_length=MEMORY_LENGTH) == SENTENCE


# --- clear errors ----------------------------------------------------------
def test_generation_errors(memorised):
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        memorised.generate("  ")
    with pytest.raises(ValueError, match="no prompts"):
        memorised.generate([])
    with pytest.raises(ValueError, match="leaves no room"):
        memorised.generate(SENTENCE * 3)
    with pytest.raises(ValueError, match="max_length must be in"):
        memorised.generate(PROMPT, max_length=MEMORY_LENGTH + 1)
    with pytest.raises(ValueError, match="sampler must be one of"):
        memorised.generate(PROMPT, sampler="beam_search")
    with pytest.raises(ValueError, match="temperature must be positive"):
        memorised.generate(PROMPT, sampler="top_k", temperature=0)
    with pytest.raises(ValueError, match="p in"):
        memorised.generate(PROMPT, sampler="top_p", p=1.5)
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        CausalLanguageModel(tiny_backbone(64)).generate(PROMPT)


def test_tokenizer_errors(tokenizer, end_first_tokenizer):
    with pytest.raises(ValueError, match="vocabulary/model mismatch.*has 800 tokens"):
        CausalLanguageModel(tiny_backbone(64), tokenizer)
    with pytest.raises(ValueError, match="keras_hub.models.GPT2Backbone"):
        CausalLanguageModel(keras.Sequential([keras.layers.Dense(2)]), tokenizer)
    with pytest.raises(ValueError, match="GPT2Tokenizer"):
        CausalLanguageModel(tiny_backbone(800), object())
    with pytest.raises(ValueError,
                       match=r"pads with its <\|endoftext\|> id.*end_token_last"):
        CausalLanguageModel(tiny_backbone(800), end_first_tokenizer)


@pytest.mark.parametrize(
    "inputs, match",
    [
        (np.zeros((2, 8), "float32"), "must be integers"),
        (np.zeros((2, 8, 1), "int32"), r"batch \(batch, sequence\)"),
        (np.zeros((2, 40), "int32"), "longer than the backbone's context"),
        ({"ids": np.zeros((2, 8), "int32")}, "takes a dict"),
        ({"token_ids": np.zeros((2, 8), "int32"),
          "padding_mask": np.ones((2, 7), "int32")}, "padding_mask must have"),
    ],
)
def test_bad_inputs_fail_clearly(inputs, match):
    model = CausalLanguageModel(tiny_backbone(64))
    with pytest.raises(ValueError, match=match):
        model(inputs)


def test_a_row_of_one_token_has_no_target():
    model = CausalLanguageModel(tiny_backbone(64))
    ids = np.zeros((2, 1), "int32")
    with pytest.raises(ValueError, match="at least 2 tokens"):
        model.compute_loss(x=ids, y_pred=np.zeros((2, 1, 64), "float32"))
