"""Streaming text (`keras_ssl.data.text_stream`): files, nested folders and a
local TFDS dataset read as paragraphs, held out by hash, tokenised, packed
and masked in `tf.data` as the in-memory pipelines do, endless and the same
from every iterator; and `pretrain_language` on a stream."""


import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import BACKEND
from keras_ssl.data import text_stream
from keras_ssl.data.text_stream import (
    TextStream,
    causal_lm_stream,
    masked_lm_stream,
    span_corruption_stream,
    split_sentences_tf,
    stream_text_files,
    stream_tfds_text,
)
from keras_ssl.datasets.text_corpus import load_text_files, split_sentences

_WORDS = ("model data token layer stream file batch text word sentence value "
          "paper method train test corpus reader tensor shape order seed").split()


def _prose(rng, paragraphs):
    """Paragraphs of sentences (some with abbreviations, quotes, brackets)."""
    out = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(int(rng.integers(2, 5))):
            words = list(rng.choice(_WORDS, int(rng.integers(5, 12))))
            words[0] = words[0].capitalize()
            if rng.random() < 0.2:
                words.insert(2, "e.g.")
            end = str(rng.choice([".", "!", "?", '."']))
            sentences.append(" ".join(words) + end)
        out.append(" ".join(sentences))
    return out


def _wrapped(paragraph, width=60):
    lines, line = [], ""
    for word in paragraph.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    rng = np.random.default_rng(0)
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {"a.txt": 14, "sub/b.txt": 12, "sub/deeper/c.md": 10}
    for name, count in files.items():
        blocks = [_wrapped(p) for p in _prose(rng, count)]
        blocks.insert(1, "A Heading\n=========")           # dropped
        blocks.insert(3, "    code = 1\n    more = 2")      # dropped
        (root / name).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    (root / "ignored.csv").write_text("a,b\n1,2\n")
    return root


def _strings(dataset):
    return [t.decode() for t in dataset.as_numpy_iterator()]


# --- the stream of paragraphs ------------------------------------------------------
def test_folder_stream_reads_the_paragraphs_of_the_in_memory_loader(text_folder):
    stream = stream_text_files(text_folder, test_fraction=0.3, shuffle_buffer=8,
                               max_test_documents=4)
    assert [p.name for p in stream.files] == ["a.txt", "b.txt", "c.md"]
    train = _strings(stream.dataset())
    test = _strings(stream.dataset("test").concatenate(  # all of it, not 4
        stream._passes(False, 0, 0).filter(lambda t: text_stream._held_out(t, 0.3))))[4:]
    memory = load_text_files(text_folder, test_fraction=0.0, pattern="*.*[td]")
    paragraphs = [p for doc in memory.train_paragraphs for p in doc]
    assert sorted(train + test) == sorted(paragraphs)  # same rules, nothing lost
    assert "A Heading" not in " ".join(train + test)
    # Held out by the text's hash: disjoint; an evaluation reads the first 4.
    assert len(test) > 4 and not set(test) & set(train)
    assert _strings(stream.dataset("test")) == test[:4]
    # The training stream: endless, the same from every iterator.
    endless = stream.dataset(repeat=True, shuffle=True, seed=3).take(3 * len(train))
    first = _strings(endless)
    assert _strings(endless) == first and sorted(set(first)) == sorted(train)
    # The tokenizer's sample is bounded.
    sample = stream.sample_texts(max_bytes=500)
    assert 500 <= sum(len(t) for t in sample) < 500 + max(map(len, train))
    assert set(sample) <= set(train)
    # One file; one document per line.
    lines = _strings(stream_text_files(text_folder / "a.txt", unit="line",
                                       test_fraction=0.0).dataset())
    raw = (text_folder / "a.txt").read_text().splitlines()
    assert lines == [" ".join(line.split()) for line in raw if line.strip()]
    with pytest.raises(FileNotFoundError, match="no such"):
        stream_text_files(text_folder / "missing")
    with pytest.raises(FileNotFoundError, match=r"no \*.rst files"):
        stream_text_files(text_folder, patterns="*.rst")
    with pytest.raises(ValueError, match="unit"):
        stream_text_files(text_folder, unit="page")


def test_docstring_examples():
    import doctest

    assert doctest.testmod(text_stream, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_sentences_split_by_the_in_memory_rule():
    rng = np.random.default_rng(1)
    texts = _prose(rng, 12) + [
        "It is short. See e.g. the next one! And (this). Mr. Smith said \"Yes.\" Then ok?"]
    for text in texts:
        got = [s.decode() for s in split_sentences_tf(tf.constant(text)).numpy()]
        assert got == split_sentences(text)


def test_t5_corruption_in_tensorflow_is_the_numpy_one():
    from keras_ssl.data.span_corruption import random_spans_noise_mask, span_corruption

    def span_starts(mask):
        return int((mask & ~np.concatenate([[False], mask[:-1]])).sum())

    sentinels = list(range(1, 40))
    for length in (2, 3, 10, 37, 114):
        for seed in range(3):
            mask = text_stream.random_spans_noise_mask_tf(
                tf.constant(length), 0.15, 3.0, tf.constant([0, seed], tf.int64)).numpy()
            reference = random_spans_noise_mask(length, 0.15, 3.0, seed=seed)
            assert mask.shape == (length,) and not mask[0]
            assert (mask.sum(), span_starts(mask)) == (reference.sum(), span_starts(reference))
            ids = np.arange(length, dtype=np.int32) + 100
            inputs, targets = span_corruption(ids, sentinels, mask)
            for expected, noise in ((inputs, mask), (targets, ~mask)):
                got = text_stream.spans_to_sentinels_tf(tf.constant(ids), tf.constant(noise),
                                                        sentinels)
                np.testing.assert_array_equal(got.numpy(), expected)


# --- the pipelines ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def documents():
    return _prose(np.random.default_rng(2), 30)


@pytest.fixture(scope="module")
def wordpiece(documents):
    from keras_ssl.data.tokenizers import train_wordpiece

    return train_wordpiece(documents, 200)


def _home(backend):
    """The pipelines are TensorFlow whatever the backend: each heavy check
    runs under one backend (the cheap ones under all three)."""
    return pytest.mark.skipif(BACKEND != backend, reason=f"runs under {backend}")


@_home("jax")
def test_gpt_rows_are_the_in_memory_rows(documents):
    from keras_ssl.data.causal_lm import causal_lm_arrays
    from keras_ssl.data.tokenizers import train_byte_bpe

    tokenizer = train_byte_bpe(documents, 300, kind="gpt2")
    memory = causal_lm_arrays(documents, tokenizer, 24)
    data = causal_lm_stream(tf.data.Dataset.from_tensor_slices(documents), tokenizer,
                            24, 5, shuffle_buffer=0, drop_remainder=False)
    batches = list(data.as_numpy_iterator())
    for key in ("token_ids", "padding_mask"):  # the last, padded row included
        np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]),
                                      memory[key])


@_home("tensorflow")
def test_masked_lm_and_t5_rows(documents, wordpiece):
    from keras_ssl.data.masked_lm import pack_full_sentences, special_token_ids
    from keras_ssl.data.span_corruption import span_corruption_lengths, span_corruption_rows
    from keras_ssl.data.tokenizers import train_sentencepiece

    tokenizer = wordpiece
    source = tf.data.Dataset.from_tensor_slices(documents)
    special = special_token_ids(tokenizer)
    # RoBERTa's FULL-SENTENCES rows, exactly.
    rows = text_stream._full_sentence_rows(
        text_stream._tokenize_sentences(source, tokenizer), special, 40)
    rows = list(rows.as_numpy_iterator())
    memory = pack_full_sentences(documents, tokenizer, 40)
    for key in ("token_ids", "padding_mask"):
        np.testing.assert_array_equal(np.stack([r[key] for r in rows]), memory[key])
    # BERT's pairs, masked.
    batch = next(iter(masked_lm_stream(source, tokenizer, 40, 6, seed=1)))
    ids = batch["token_ids"].numpy()
    assert (ids[:, 0] == special["start"]).all()
    assert ((ids == special["end"]).sum(axis=1) == 2).all()
    assert set(batch["next_sentence_labels"].numpy()) <= {0, 1}
    assert (batch["mask_weights"].numpy().sum(axis=1) > 0).all()
    roberta = masked_lm_stream(source, tokenizer, 40, 6, packing="full_sentences",
                               next_sentence_prediction=False, dynamic_masking=False)
    assert "next_sentence_labels" not in next(iter(roberta))
    # T5: the in-memory rows, corrupted with sentinels.
    t5 = train_sentencepiece(documents, 200, num_sentinels=8)
    tokens_length, _ = span_corruption_lengths(24)
    data = span_corruption_stream(source, t5, 24, batch_size=4, shuffle_buffer=0,
                                  drop_remainder=False)
    x, y, weights = zip(*data.as_numpy_iterator())
    assert sum(len(b) for b in y) == len(span_corruption_rows(documents, t5, tokens_length))
    assert x[0]["encoder_token_ids"].shape == (4, 24)
    assert (y[0][:, 0] == t5.token_to_id("<extra_id_0>")).all()


@_home("tensorflow")
def test_language_dataset_of_a_stream_resumes_with_skip(text_folder, wordpiece):
    from keras_ssl.language import LanguageConfig, language_dataset

    stream = stream_text_files(text_folder, shuffle_buffer=8, row_shuffle_buffer=8)
    config = LanguageConfig("bert", sequence_length=32, batch_size=4)
    data = language_dataset(config, wordpiece, stream)
    assert data.cardinality() == tf.data.INFINITE_CARDINALITY
    ids = [b["token_ids"] for b in data.take(5).as_numpy_iterator()]
    fresh = language_dataset(config, wordpiece, stream)
    resumed = [b["token_ids"] for b in fresh.skip(3).take(2).as_numpy_iterator()]
    np.testing.assert_array_equal(np.stack(resumed), np.stack(ids[3:]))
    # Held-out text: one pass, every row, its batches counted.
    test = language_dataset(config, wordpiece, stream.dataset("test"),
                            repeat=False, seed=1234, dynamic_masking=False)
    assert test.cardinality() > 0


# --- pretrain_language on a stream ---------------------------------------------------
# The methods end to end: the stream is TensorFlow under every backend (the
# tokenizers in tf.data under JAX: test_gpt_rows_are_the_in_memory_rows).
_END_TO_END = {"bert": "tensorflow", "gpt": "torch", "t5": "torch"}


@pytest.mark.parametrize("method", sorted(_END_TO_END))
def test_pretrain_language_on_a_stream(text_folder, method):
    from keras_ssl.language import LanguageConfig, pretrain_language

    if BACKEND != _END_TO_END[method]:
        pytest.skip(f"{method} runs end to end under {_END_TO_END[method]}")
    stream = stream_text_files(text_folder, test_fraction=0.2, shuffle_buffer=8,
                               row_shuffle_buffer=8, max_test_documents=8)
    config = LanguageConfig(method, vocabulary_size=300, sequence_length=24,
                            hidden_dim=16, num_layers=1, num_heads=2,
                            intermediate_dim=32, steps=2, steps_per_epoch=2,
                            batch_size=4, num_sentinels=8)
    result = pretrain_language(stream, config, verbose=0, downstream=False,
                               prompts=["The model"])
    assert np.isfinite(result.history["loss"]).all()
    assert result.scores and all(np.isfinite(list(result.scores.values())))
    if method == "gpt":
        assert result.scores["unigram_perplexity"] > 1


# --- TFDS ------------------------------------------------------------------------------
class TinyText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A local TFDS text dataset: `body` documents of paragraphs."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(
                {"body": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 6), "test": self._generate_examples(1, 2)}

    def _generate_examples(self, seed, count):
        rng = np.random.default_rng(seed)
        for index in range(count):
            body = "\n\n".join(_wrapped(p) for p in _prose(rng, 3))
            yield index, {"body": body}


def test_tfds_text_stream(tmp_path):
    TinyText(data_dir=str(tmp_path)).download_and_prepare()
    stream = stream_tfds_text("tiny_text", str(tmp_path), text_key="body",
                              test_fraction=0.25)
    assert isinstance(stream, TextStream) and stream.name == "tfds:tiny_text"
    train, test = _strings(stream.dataset()), _strings(stream.dataset("test"))
    assert len(train) + len(test) == 18 and test and not set(test) & set(train)
    assert all("\n" not in t for t in train)  # wrapped lines joined
    split = stream_tfds_text("tiny_text", str(tmp_path), text_key="body",
                             test_split="test")
    assert len(_strings(split.dataset())) == 18 and len(_strings(split.dataset("test"))) == 6
    with pytest.raises(ValueError, match="no feature 'text'"):
        stream_tfds_text("tiny_text", str(tmp_path))
    with pytest.raises(ValueError, match="neither registered nor prepared"):
        stream_tfds_text("no_such_dataset_xyz", str(tmp_path))
