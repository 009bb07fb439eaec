"""Streaming speech (`keras_ssl.data.audio_stream`): a nested folder of .wav
files (16-bit PCM, float, another rate, stereo) with transcripts and a local
TFDS speech dataset, decoded and resampled in `tf.data` as `read_wav` does,
held out by name, batched by length, endless and the same from every
iterator; and the speech recipe on a stream."""

import numpy as np
import pytest
import scipy.io.wavfile
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import BACKEND
from keras_ssl.data.audio import load_audio_folder
from keras_ssl.data.audio_stream import (
    AudioStream,
    speech_stream_dataset,
    stream_audio_folder,
    stream_tfds_speech,
)

_SENTENCES = ["Hello, World!", "a quick test", "Speech is here.", "one two three"]


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    """12 short utterances in a nested folder, NAME.txt beside each: 16-bit
    PCM at 16 kHz, at 8 kHz, float32, and stereo."""
    root = tmp_path_factory.mktemp("speech")
    (root / "speaker").mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        x = rng.uniform(-0.5, 0.5, int(rng.integers(3000, 20000)))
        kind = i % 4
        data = {0: (x * 32767).astype(np.int16), 1: (x * 32767).astype(np.int16),
                2: x.astype(np.float32),
                3: np.stack([(x * 32767).astype(np.int16)] * 2, axis=1)}[kind]
        file = root / ("speaker" if i % 2 else "") / f"u{i:02d}.wav"
        scipy.io.wavfile.write(file, 8000 if kind == 1 else 16000, data)
        file.with_suffix(".txt").write_text(_SENTENCES[i % 4])
    return root


def test_folder_stream_decodes_like_read_wav(audio_folder):
    stream = stream_audio_folder(audio_folder, test_fraction=0.25)
    assert stream.labelled and stream.num_train + stream.num_test == 12
    assert stream.num_test > 0
    examples = [*stream.dataset().as_numpy_iterator(),
                *stream.dataset("test").as_numpy_iterator()]
    memory = load_audio_folder(audio_folder, mono="mix")
    expected = {t: [] for t in memory.transcripts}
    for audio, text in zip(memory.audio, memory.transcripts):
        expected[text].append(audio)
    for example in examples:  # decoded, mixed and resampled as in memory
        text = example["transcript"].decode()
        assert any(len(a) == len(example["audio"]) and np.allclose(a, example["audio"], atol=1e-6)
                   for a in expected[text])
    assert {e["transcript"].decode() for e in examples} == set(memory.transcripts)
    held = stream.load("test")
    assert len(held) == stream.num_test and held.transcripts[0] in memory.transcripts
    # Held out by name: the same files in every stream.
    again = stream_audio_folder(audio_folder, test_fraction=0.25)
    assert again.load("test").transcripts == held.transcripts
    # Several channels are an error where asked.
    strict = stream_audio_folder(audio_folder, mono="error", test_fraction=0.0,
                                 transcripts=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multichannel"):
        list(strict.dataset().as_numpy_iterator())
    with pytest.raises(FileNotFoundError):
        stream_audio_folder(audio_folder / "missing")
    with pytest.raises(ValueError, match="no \\*.ogg files"):
        stream_audio_folder(audio_folder, patterns="*.ogg")


def test_docstring_examples():
    import doctest

    from keras_ssl.data import audio_stream

    assert doctest.testmod(audio_stream, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_flac_needs_soundfile(tmp_path):
    try:
        import soundfile
    except ImportError:
        (tmp_path / "a.flac").write_bytes(b"fLaC")
        with pytest.raises(ImportError, match=r"pip install \"keras-ssl\[speech\]\""):
            stream_audio_folder(tmp_path)
        return
    x = (np.sin(np.arange(4000) / 7) * 0.3).astype(np.float32)
    soundfile.write(tmp_path / "a.flac", x, 16000, subtype="PCM_16")
    stream = stream_audio_folder(tmp_path, test_fraction=0.0)
    audio = next(stream.dataset().as_numpy_iterator())["audio"]
    np.testing.assert_allclose(audio, x, atol=1e-4)


def test_stream_batches_are_bucketed_endless_and_resume_with_skip(audio_folder):
    stream = stream_audio_folder(audio_folder, test_fraction=0.25)
    data = speech_stream_dataset(stream, labels=True, batch_size=2, repeat=True,
                                 shuffle=True, seed=1, max_seconds=2.0)
    assert data.cardinality() == tf.data.INFINITE_CARDINALITY
    batches = list(data.take(6).as_numpy_iterator())
    for batch in batches:  # speech_dataset's keys and bucket shapes
        assert set(batch) == {"audio", "padding_mask", "labels", "label_length"}
        assert batch["audio"].shape[1] % 8000 == 0 and batch["labels"].shape[1] % 8 == 0
        np.testing.assert_array_equal(batch["padding_mask"].sum(1) > 0, True)
    resumed = list(speech_stream_dataset(stream, labels=True, batch_size=2, repeat=True,
                                         shuffle=True, seed=1, max_seconds=2.0)
                   .skip(3).take(3).as_numpy_iterator())
    for a, b in zip(batches[3:], resumed):
        np.testing.assert_array_equal(a["audio"], b["audio"])
    # Pre-training crops long utterances; the test part is one counted pass.
    cropped = speech_stream_dataset(stream, batch_size=4, max_seconds=0.5, shuffle=False)
    assert cropped.cardinality() > 0
    assert all(b["audio"].shape[1] == 8000 for b in cropped.as_numpy_iterator())
    unlabelled = stream_audio_folder(audio_folder, transcripts=False)
    with pytest.raises(ValueError, match="no transcripts"):
        speech_stream_dataset(unlabelled, labels=True)
    raw = stream_audio_folder(audio_folder, normalize=False, test_fraction=0.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the vocabulary"):
        list(speech_stream_dataset(raw, labels=True, shuffle=False))


def test_transcripts_normalised_in_tensorflow():
    from keras_ssl.data.audio_stream import normalize_transcript_tf
    from keras_ssl.datasets.speech_corpus import normalize_transcript

    for text in ["The `__init__()` method, e.g. Python's 3rd!", "'quoted' words'' and 'a",
                 "Café naïve façade", "it\u2019s ok", "rock'n'roll '' ' ", ""]:
        assert normalize_transcript_tf(tf.constant(text)).numpy().decode() == (
            normalize_transcript(text))


class TinySpeech(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A local TFDS speech dataset: 8 kHz `speech` with a `text`."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "speech": tfds.features.Audio(sample_rate=8000, dtype=np.int16),
            "text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6), "dev": self._generate_examples(2)}

    def _generate_examples(self, count):
        rng = np.random.default_rng(count)
        for i in range(count):
            audio = rng.integers(-8000, 8000, 2000 + 400 * i).astype(np.int16)
            yield i, {"speech": audio, "text": _SENTENCES[i % 4]}


def test_tfds_speech_stream(tmp_path):
    TinySpeech(data_dir=str(tmp_path)).download_and_prepare()
    stream = stream_tfds_speech("tiny_speech", str(tmp_path), test_fraction=0.5)
    assert isinstance(stream, AudioStream) and stream.labelled
    train = list(stream.dataset().as_numpy_iterator())
    test = stream.load("test")
    assert len(train) == 3 and len(test) == 3  # every other example held out
    assert train[0]["audio"].dtype == np.float32  # resampled 8 → 16 kHz:
    assert {len(e["audio"]) for e in train} <= {2 * (2000 + 400 * i) for i in range(6)}
    assert set(test.transcripts) <= {"hello world", "a quick test", "speech is here",
                                     "one two three"}  # normalised
    dev = stream_tfds_speech("tiny_speech", str(tmp_path), test_split="dev")
    assert len(list(dev.dataset().as_numpy_iterator())) == 6 and len(dev.load("test")) == 2
    with pytest.raises(ValueError, match="no feature 'words'"):
        stream_tfds_speech("tiny_speech", str(tmp_path), text_key="words")


@pytest.mark.skipif(BACKEND != "torch", reason="the speech recipe's runs: torch only")
def test_speech_recipe_on_a_stream(audio_folder):
    from keras_ssl import speech

    stream = stream_audio_folder(audio_folder, test_fraction=0.25)
    config = speech.SpeechConfig(
        conv_channels=8, hidden_dim=16, num_layers=1, num_heads=2,
        intermediate_dim=32, pos_conv_kernel=4, pos_conv_groups=2,
        codebook_size=8, codevector_dim=16, final_dim=16, num_negatives=5,
        steps=2, steps_per_epoch=2, batch_size=2, finetune_steps=2,
        finetune_batch_size=2)
    pretrained = speech.pretrain_wav2vec2(stream, config, verbose=0)
    assert np.isfinite(pretrained.history["loss"]).all()
    assert np.isfinite(float(pretrained.scores["contrastive_loss"]))
    tuned = speech.finetune_ctc(pretrained.model.encoder, stream, config, verbose=0)
    assert np.isfinite(tuned.history["loss"]).all() and tuned.scores["cer"] >= 0
