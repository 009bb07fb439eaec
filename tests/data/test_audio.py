"""Speech data: vocabulary, loaders, checks and the bucketed pipeline."""

import numpy as np
import pytest
import scipy.io.wavfile

from keras_ssl.data import (
    CharacterVocabulary,
    check_audio,
    load_audio_folder,
    load_tfds_speech,
    speech_dataset,
)
from keras_ssl.data.audio import default_bucket_boundaries, read_wav


# --- vocabulary -------------------------------------------------------------
def test_vocabulary_ids_and_round_trip():
    vocabulary = CharacterVocabulary()
    assert vocabulary.size == 29 and vocabulary.blank_id == 0
    assert vocabulary.tokens[:4] == ["<blank>", " ", "'", "a"] and vocabulary.tokens[-1] == "z"
    ids = vocabulary.encode("it's a b")
    assert ids.dtype == np.int32
    assert ids.tolist() == [11, 22, 2, 21, 1, 3, 1, 4]
    assert vocabulary.decode(ids) == "it's a b"
    assert vocabulary.decode(np.concatenate([ids, [0, 0]])) == "it's a b"  # padding
    assert vocabulary.encode("").shape == (0,)
    assert vocabulary.ctc_decode([0, 10, 10, 0, 10, 11, 11, 1, 0]) == "hhi "
    assert CharacterVocabulary.from_config(vocabulary.get_config()) == vocabulary


def test_vocabulary_errors():
    vocabulary = CharacterVocabulary()
    with pytest.raises(ValueError, match=r"outside the vocabulary: '!H'.*normalise"):
        vocabulary.encode("Hello!")
    with pytest.raises(ValueError, match=r"\[29\] are outside"):
        vocabulary.decode([1, 29])
    with pytest.raises(ValueError, match="distinct"):
        CharacterVocabulary("aab")


# --- check_audio ------------------------------------------------------------
def test_check_audio_accepts_floats():
    x = check_audio(np.linspace(-1, 1, 100))
    assert x.dtype == np.float32 and x.shape == (100,)


@pytest.mark.parametrize("audio, kwargs, message", [
    (np.zeros((1000, 2), np.float32), {}, r"2-channel audio.*mean\(axis=1\)"),
    (np.zeros((2, 1000), np.float32), {}, r"2-channel audio.*mean\(axis=0\)"),
    (np.zeros((1000, 1), np.float32), {}, r"reshape\(-1\)"),
    (np.zeros((2, 3, 4), np.float32), {}, "mono 1-D"),
    (np.float32(0.5), {}, "mono 1-D"),
    (np.zeros(100, np.int16), {}, r"integer dtype int16.*32768"),
    (np.array(["a"]), {}, "expected float"),
    (np.zeros(0, np.float32), {}, "empty"),
    (np.zeros(300, np.float32), {"min_samples": 400}, "fewer than min_samples=400"),
    (np.array([0.0, np.nan, np.inf], np.float32), {}, "2 NaN or infinite"),
])
def test_check_audio_errors(audio, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_audio(audio, **kwargs)


# --- audio folders ----------------------------------------------------------
def _tone(seconds, rate=16000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


def _pcm(x):
    return np.round(x * 32767).astype(np.int16)


def test_folder_with_sibling_transcripts(tmp_path):
    scipy.io.wavfile.write(tmp_path / "b.wav", 16000, _pcm(_tone(0.5)))
    scipy.io.wavfile.write(tmp_path / "a.wav", 8000, _pcm(_tone(0.25, 8000)))  # resampled
    (tmp_path / "sub").mkdir()
    scipy.io.wavfile.write(tmp_path / "sub" / "c.wav", 16000, _tone(0.1).astype(np.float32))
    (tmp_path / "a.txt").write_text("Hello, World!\n")
    (tmp_path / "b.txt").write_text("it's me")
    (tmp_path / "sub" / "c.txt").write_text("third one")
    data = load_audio_folder(tmp_path)
    assert data.names == ["a", "b", "sub/c"]
    assert data.transcripts == ["hello world", "it's me", "third one"]
    assert [len(x) for x in data.audio] == [4000, 8000, 1600]
    assert all(x.dtype == np.float32 for x in data.audio)
    np.testing.assert_allclose(data.audio[1], _tone(0.5), atol=1e-4)
    assert 0.45 < np.abs(data.audio[0]).max() < 0.55  # resampling keeps the level
    assert data.sample_rate == 16000 and data.minutes == pytest.approx(0.85 / 60)
    raw = load_audio_folder(tmp_path, normalize=False)
    assert raw.transcripts[0] == "Hello, World!"


def test_folder_with_transcript_table_or_without(tmp_path):
    for name in ("x", "y"):
        scipy.io.wavfile.write(tmp_path / f"{name}.wav", 16000, _pcm(_tone(0.1)))
    assert load_audio_folder(tmp_path).transcripts is None
    (tmp_path / "transcripts.tsv").write_text("x\tThe first\n\ny\tthe SECOND\n")
    assert load_audio_folder(tmp_path).transcripts == ["the first", "the second"]
    (tmp_path / "transcripts.tsv").write_text("x\tonly one\n")
    with pytest.raises(ValueError, match=r"1 of 2 audio files .* no transcript.*\['y'\]"):
        load_audio_folder(tmp_path)
    (tmp_path / "transcripts.tsv").write_text("x only one\n")
    with pytest.raises(ValueError, match="line 1: expected 'name<TAB>transcript'"):
        load_audio_folder(tmp_path)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_audio_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no \*.wav files"):
        load_audio_folder(tmp_path)
    stereo = tmp_path / "stereo.wav"
    scipy.io.wavfile.write(stereo, 16000, _pcm(_tone(0.1, channels=2)))
    with pytest.raises(ValueError, match="2 channels: mono audio is needed.*mono='mix'"):
        load_audio_folder(tmp_path)
    mixed = load_audio_folder(tmp_path, mono="mix")
    np.testing.assert_allclose(mixed.audio[0], _tone(0.1), atol=1e-4)
    with pytest.raises(ValueError, match="at 16000 Hz: expected 8000 Hz"):
        load_audio_folder(tmp_path, sample_rate=8000, resample=False, mono="mix")
    with pytest.raises(ValueError, match="mono must be"):
        read_wav(stereo, mono="left")
    empty = tmp_path / "empty.wav"
    scipy.io.wavfile.write(empty, 16000, np.zeros(0, np.int16))
    with pytest.raises(ValueError, match="empty.wav.* is empty"):
        read_wav(empty)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not a wav file at all")
    with pytest.raises(ValueError, match="could not read .*garbage.wav"):
        read_wav(garbage)


# --- TFDS -------------------------------------------------------------------
@pytest.mark.parametrize("name, split", [("speech_commands", "train"),
                                         ("librispeech", "dev_clean")])
def test_tfds_speech(tmp_path, name, split):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        data = load_tfds_speech(name, data_dir=str(tmp_path), split=split)
        capped = load_tfds_speech(name, data_dir=str(tmp_path), split=split, max_examples=2,
                                  text_key=None if name == "librispeech" else "label")
    assert len(data) == 5 and len(capped) == 2
    assert all(x.dtype == np.float32 and x.ndim == 1 and np.abs(x).max() <= 1 for x in data.audio)
    assert len(data.transcripts) == 5 and data.names[0] == f"{name}:{split}:0"
    vocabulary = CharacterVocabulary()
    for text in data.transcripts:
        vocabulary.encode(text)  # normalised to the vocabulary
    if name == "speech_commands":  # class names as transcripts
        assert set(data.transcripts) <= {"down", "go", "left", "no", "off", "on", "right",
                                         "stop", "up", "yes", "silence", "unknown"}


def test_tfds_speech_errors(tmp_path):
    with pytest.raises(ValueError, match="not prepared"):
        load_tfds_speech("speech_commands", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="expected an audio feature"):
        load_tfds_speech("mnist", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no feature 'words'"):
        load_tfds_speech("librispeech", data_dir=str(tmp_path), text_key="words")


# --- speech_dataset ---------------------------------------------------------
def _utterances(count=23, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4000, 40000, count)
    audio = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in lengths]
    words = ["a", "speech", "model", "hears", "it's", "text"]
    transcripts = [" ".join(rng.choice(words, 1 + n // 8000)) for n in lengths]
    return audio, transcripts


def _batches(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


def test_batches_have_bucket_shapes_masks_and_labels():
    audio, transcripts = _utterances()
    boundaries = default_bucket_boundaries([len(x) for x in audio])
    assert boundaries[0] == 8000 and boundaries[-1] >= max(len(x) for x in audio)
    batches = _batches(speech_dataset(audio, transcripts, batch_size=4, shuffle=False))
    vocabulary = CharacterVocabulary()
    seen = []
    shapes = set()
    for batch in batches:
        assert sorted(batch) == ["audio", "label_length", "labels", "padding_mask"]
        assert batch["audio"].dtype == np.float32 and batch["padding_mask"].dtype == bool
        assert batch["labels"].dtype == np.int32 and batch["label_length"].dtype == np.int32
        length = batch["audio"].shape[1]
        assert length in boundaries
        assert batch["labels"].shape[1] % 8 == 0
        shapes.add((length, batch["labels"].shape[1]))
        for row, mask, labels, label_length in zip(batch["audio"], batch["padding_mask"],
                                                    batch["labels"], batch["label_length"]):
            n = int(mask.sum())
            assert mask[:n].all() and not mask[n:].any()  # real samples first
            assert length - 8000 < n <= length  # the right bucket
            assert not row[n:].any()
            assert not labels[label_length:].any()
            seen.append((n, vocabulary.decode(labels)))
    # Every utterance once, labels decoding to its transcript.
    assert sorted(seen) == sorted(zip([len(x) for x in audio], transcripts))
    # One label length per bucket: as many shapes as buckets used.
    assert len(shapes) == len({s[0] for s in shapes}) <= len(boundaries)


def test_shuffling_is_seeded_and_remainders_dropped():
    audio, transcripts = _utterances()

    def order(dataset):
        return [tuple(b["padding_mask"].sum(axis=1)) for b in _batches(dataset)]

    first = order(speech_dataset(audio, batch_size=3, seed=1))
    assert first == order(speech_dataset(audio, batch_size=3, seed=1))
    assert first != order(speech_dataset(audio, batch_size=3, seed=2))
    assert all(len(batch) == 3 for batch in first)  # shuffle: drop_remainder
    everything = order(speech_dataset(audio, batch_size=3, seed=1, drop_remainder=False))
    assert sum(len(b) for b in everything) == len(audio)
    dataset = speech_dataset(audio, batch_size=3, seed=1)
    epochs = [order(dataset), order(dataset)]  # reshuffled every epoch
    assert epochs[0] != epochs[1]


def test_repeat_and_explicit_boundaries():
    audio, transcripts = _utterances(7)
    dataset = speech_dataset(audio, transcripts, batch_size=2, repeat=True,
                             bucket_boundaries=[20000, 40000])
    batches = _batches(dataset.take(12))
    assert len(batches) == 12
    assert {b["audio"].shape for b in batches} <= {(2, 20000), (2, 40000)}
    assert "labels" not in _batches(speech_dataset(audio, batch_size=2).take(1))[0]


def test_speech_dataset_errors():
    audio, transcripts = _utterances(4)
    with pytest.raises(ValueError, match="more than the last bucket boundary 5000"):
        speech_dataset(audio, bucket_boundaries=[5000])
    with pytest.raises(ValueError, match="increasing"):
        speech_dataset(audio, bucket_boundaries=[40000, 20000])
    with pytest.raises(ValueError, match="3 transcripts for 4 utterances"):
        speech_dataset(audio, transcripts[:3])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        speech_dataset(audio, ["UPPER"] * 4)
    with pytest.raises(ValueError, match=r"audio\[1\] has integer dtype"):
        speech_dataset([audio[0], np.zeros(10, np.int16)])
    with pytest.raises(ValueError, match="fewer than min_samples"):
        speech_dataset(audio, min_samples=10 ** 6)
    with pytest.raises(ValueError, match="batch_size"):
        speech_dataset(audio, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        speech_dataset([])


def test_pipeline_on_the_spoken_corpus(tiny_spoken_corpus):
    split = tiny_spoken_corpus.labelled
    vocabulary = CharacterVocabulary()
    batches = _batches(speech_dataset(split.audio, split.transcripts, vocabulary,
                                      batch_size=2, shuffle=False, min_samples=400))
    decoded = [vocabulary.decode(labels) for b in batches for labels in b["labels"]]
    assert sorted(decoded) == sorted(split.transcripts)
    assert all(b["audio"].shape[1] % 8000 == 0 for b in batches)
