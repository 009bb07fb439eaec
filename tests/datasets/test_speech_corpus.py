"""The embedded spoken corpus: eSpeak NG speech of the text corpus."""

import pathlib
import time

import numpy as np
import pytest

from keras_ssl.datasets import SpeechCorpus, load_spoken_corpus
from keras_ssl.datasets.speech_corpus import (
    ALPHABET,
    TEST_VARIANTS,
    TRAIN_VARIANTS,
    default_cache_dir,
    normalize_transcript,
    sentence_chunks,
)
from keras_ssl.datasets.text_corpus import load_python_docs

TINY = dict(pretrain_minutes=0.3, labelled_minutes=0.2, test_minutes=0.1)


def _splits(corpus):
    return {"pretrain": corpus.pretrain, "labelled": corpus.labelled, "test": corpus.test}


def _same(a, b):
    for name, split in _splits(a).items():
        other = _splits(b)[name]
        assert split.transcripts == other.transcripts
        assert split.voices == other.voices
        assert len(split.audio) == len(other.audio)
        for x, y in zip(split.audio, other.audio):
            np.testing.assert_array_equal(x, y)


def test_splits_shapes_and_sizes(tiny_spoken_corpus):
    corpus = tiny_spoken_corpus
    assert isinstance(corpus, SpeechCorpus)
    assert corpus.sample_rate == 16000
    for name, split in _splits(corpus).items():
        assert split.sample_rate == 16000
        assert len(split) == len(split.transcripts) == len(split.voices) > 0
        # Filled to the requested duration, overshooting by one utterance at most.
        requested = TINY[f"{name}_minutes"]
        longest = max(len(x) for x in split.audio) / 16000 / 60
        assert requested <= split.minutes <= requested + longest
        for x in split.audio:
            assert x.dtype == np.float32 and x.ndim == 1
    assert "utts" in repr(corpus)


def test_transcripts_use_the_vocabulary_alphabet(tiny_spoken_corpus):
    from keras_ssl.data.audio import CharacterVocabulary

    vocabulary = CharacterVocabulary()
    for split in _splits(tiny_spoken_corpus).values():
        for text in split.transcripts:
            assert set(text) <= set(ALPHABET) and text == text.strip()
            assert "  " not in text and 5 <= len(text.split()) <= 11
            assert vocabulary.decode(vocabulary.encode(text)) == text


def test_audio_is_speech_of_its_transcript(tiny_spoken_corpus):
    durations, characters = [], []
    for split in _splits(tiny_spoken_corpus).values():
        for x, text in zip(split.audio, split.transcripts):
            assert np.isfinite(x).all()
            assert 0.85 <= np.abs(x).max() <= 0.91  # peak-normalised to 0.9
            assert np.sqrt(np.mean(x ** 2)) > 0.02  # not silence
            # Speech has pauses: loud and quiet 20 ms frames.
            frames = x[: len(x) // 320 * 320].reshape(-1, 320)
            energy = np.sqrt((frames ** 2).mean(axis=1))
            assert np.percentile(energy, 90) > 4 * np.percentile(energy, 10)
            durations.append(len(x) / 16000)
            characters.append(len(text))
    durations, characters = np.array(durations), np.array(characters)
    assert 1.0 < durations.min() and durations.max() < 6.0
    seconds_per_character = durations / characters
    assert 0.03 < seconds_per_character.min() and seconds_per_character.max() < 0.12
    # Longer transcripts take longer to say.
    assert np.corrcoef(durations, characters)[0, 1] > 0.5


def test_test_split_is_held_out(tiny_spoken_corpus):
    corpus = tiny_spoken_corpus
    train_variants = corpus.pretrain.variants | corpus.labelled.variants
    assert train_variants <= set(TRAIN_VARIANTS)
    assert corpus.test.variants <= set(TEST_VARIANTS)
    assert corpus.test.variants.isdisjoint(train_variants)
    train_text = set(corpus.pretrain.transcripts) | set(corpus.labelled.transcripts)
    assert train_text.isdisjoint(corpus.test.transcripts)
    assert set(corpus.pretrain.transcripts).isdisjoint(corpus.labelled.transcripts)
    # Test sentences come from the text corpus's held-out paragraphs and are
    # no training sentence at all.
    text = load_python_docs()
    train_pool = set(sentence_chunks(p for doc in text.train_paragraphs for p in doc))
    test_pool = set(sentence_chunks(p for doc in text.test_paragraphs for p in doc))
    assert set(corpus.test.transcripts) <= test_pool
    assert train_pool.isdisjoint(corpus.test.transcripts)
    assert train_text <= train_pool


def test_deterministic_and_cached(tiny_spoken_corpus):
    start = time.perf_counter()
    fresh = load_spoken_corpus(**TINY, cache=False, verbose=0)
    synthesis = time.perf_counter() - start
    assert fresh.cache_path is None
    _same(fresh, tiny_spoken_corpus)

    cache_path = pathlib.Path(tiny_spoken_corpus.cache_path)
    assert cache_path.is_file() and cache_path.suffix == ".npz"
    start = time.perf_counter()
    loaded = load_spoken_corpus(**TINY, cache_dir=cache_path.parent, verbose=0)
    assert time.perf_counter() - start < synthesis
    assert loaded.cache_path == tiny_spoken_corpus.cache_path
    _same(loaded, tiny_spoken_corpus)


def test_other_parameters_other_cache_and_stable_splits(tiny_spoken_corpus, tmp_path):
    # Less pretraining audio: its own cache file; labelled and test unchanged.
    smaller = load_spoken_corpus(0.1, TINY["labelled_minutes"], TINY["test_minutes"],
                                 cache_dir=tmp_path, verbose=0)
    assert smaller.cache_path != tiny_spoken_corpus.cache_path
    assert [p.name for p in tmp_path.iterdir()] == [pathlib.Path(smaller.cache_path).name]
    assert smaller.pretrain.minutes < tiny_spoken_corpus.pretrain.minutes
    assert smaller.pretrain.transcripts == (
        tiny_spoken_corpus.pretrain.transcripts[: len(smaller.pretrain)])
    for name in ("labelled", "test"):
        a, b = _splits(smaller)[name], _splits(tiny_spoken_corpus)[name]
        assert a.transcripts == b.transcripts and a.voices == b.voices
        np.testing.assert_array_equal(a.audio[0], b.audio[0])
    other_seed = load_spoken_corpus(**TINY, seed=1, cache=False, verbose=0)
    assert other_seed.labelled.transcripts != tiny_spoken_corpus.labelled.transcripts


def test_smaller_labelled_budget_is_a_prefix(tiny_spoken_corpus):
    corpus = tiny_spoken_corpus
    labelled = corpus.labelled
    half = corpus.with_labelled_minutes(labelled.minutes / 2)
    count = len(half.labelled)
    assert 0 < count < len(labelled)
    assert half.labelled.transcripts == labelled.transcripts[:count]
    assert half.labelled.voices == labelled.voices[:count]
    for x, y in zip(half.labelled.audio, labelled.audio):
        np.testing.assert_array_equal(x, y)
    # Filled as load_spoken_corpus fills a split: reaches the budget,
    # one utterance over it at most.
    assert labelled.minutes / 2 <= half.labelled.minutes
    assert sum(len(x) for x in half.labelled.audio[:-1]) / 16000 / 60 < labelled.minutes / 2
    assert half.pretrain is corpus.pretrain and half.test is corpus.test
    assert corpus.with_labelled_minutes(labelled.minutes).labelled.transcripts == (
        labelled.transcripts)
    with pytest.raises(ValueError, match="load a larger one"):
        corpus.with_labelled_minutes(labelled.minutes * 2)
    with pytest.raises(ValueError, match="minutes > 0"):
        labelled.head(0)


def test_broken_cache_is_rebuilt(tmp_path):
    first = load_spoken_corpus(0.05, 0.0, 0.05, cache_dir=tmp_path, verbose=0)
    assert len(first.labelled) == 0 and first.labelled.minutes == 0
    with open(first.cache_path, "wb") as file:
        file.write(b"not an npz")
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load_spoken_corpus(0.05, 0.0, 0.05, cache_dir=tmp_path, verbose=0)
    _same(first, again)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_SSL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "speech"
    monkeypatch.delenv("KERAS_SSL_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "keras_ssl", "speech")


@pytest.mark.parametrize("arguments, message", [
    (dict(pretrain_minutes=0), "pretrain_minutes"),
    (dict(labelled_minutes=-1), "labelled_minutes"),
    (dict(test_minutes=float("nan")), "test_minutes"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        load_spoken_corpus(**arguments, cache=False, verbose=0)


def test_normalize_transcript():
    assert normalize_transcript("Hello, World!  It's 3 o'clock.") == "hello world it's o'clock"
    assert normalize_transcript("'quoted' __init__() e.g. café") == "quoted init e g cafe"
    assert normalize_transcript("1 2 3 ...") == ""


def test_sentence_chunks_lengths():
    text = load_python_docs()
    chunks = sentence_chunks(text.train_paragraphs[0])
    assert chunks and len(set(chunks)) == len(chunks)
    assert all(5 <= len(c.split()) <= 11 for c in chunks)
    assert all(c == normalize_transcript(c) for c in chunks)
