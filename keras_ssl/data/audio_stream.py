"""Streaming speech: folders of .wav/.flac files and TFDS speech read from
disk by `tf.data`, decoded and resampled to 16 kHz in the pipeline, then
cropped and batched by length like `speech_dataset`.

The embedded spoken corpus is small and lives in memory
(`keras_ssl.datasets.load_spoken_corpus`, `load_audio_folder`); a real one
is a folder of files far larger than memory. `stream_audio_folder` and
`stream_tfds_speech` give an `AudioStream`, which holds only the list of
files (and their transcripts, a few bytes each):

- **Decoding** happens in `tf.data`: 16-bit PCM WAV with
  `tf.audio.decode_wav`; other WAV encodings (8/24/32-bit, float) with
  SciPy, and FLAC with the `soundfile` package (`keras-ssl[speech]`),
  both inside a `tf.numpy_function`. TensorFlow itself decodes no FLAC.
  Several channels are averaged (`mono="mix"`, the default) or are an
  error (`mono="error"`). Audio at another rate is resampled to
  `sample_rate` with SciPy's polyphase filter (`resample_poly`, as
  `read_wav` does).
- **Transcripts** of a folder are found as `load_audio_folder` finds
  them: `transcripts.tsv` (`name<TAB>text` lines) or `NAME.txt` beside
  `NAME.wav`; they are normalised (`normalize_transcript`; TFDS ones in
  TensorFlow, `normalize_transcript_tf`) and encoded for
  `CharacterVocabulary` with a lookup table in the pipeline.
- **The held-out part** of a folder is defined by the file names alone: a
  file is held out when the hash of its path relative to the folder falls
  in the first `test_fraction`; of TFDS, another split (`test_split`) or
  every k-th example of the split (k = 1 / `test_fraction`). Evaluation
  reads its first `max_test_utterances` utterances.
- **Batches** (`speech_stream_dataset`) have the keys and shapes of
  `speech_dataset`'s: `audio` and `padding_mask` `(B, L)` with `L` a
  multiple of `bucket_seconds`, and with labels `labels` `(B, U)` and
  `label_length` `(B,)`. The buckets run up to `max_seconds` (15.6 s, the
  250,000 samples to which wav2vec 2.0 crops), since a stream's lengths
  are not known in advance: longer utterances are cropped at a random
  (seeded) place for pre-training and skipped for CTC (a crop would cut
  the transcript), and a bucket's label length is what `chars_per_second`
  characters per second fill; a transcript longer than that is skipped
  too (CTC could not align it at wav2vec 2.0's 50 frames per second).
  Utterances shorter than `min_samples` (the model's receptive field) are
  skipped.
- **Order**: the training stream is endless and the same from every new
  iterator for a given seed (what `ResumableBackup`'s `dataset.skip(step)`
  needs to resume exactly): each pass reads the files in the order of the
  stateless seed `(seed, pass)`; TFDS is read in its stored order through
  a seeded shuffle buffer.

16-bit PCM WAV at `sample_rate` is decoded without Python. The other cases
(FLAC, other WAV encodings, resampling) call Python from `tf.data`, and a
TensorFlow limitation follows: a Python process may hang at exit while an
iterator over such a pipeline is still alive; let iterators go out of
scope before exiting (`fit` does). Converting a corpus once to 16 kHz
16-bit WAV also makes its reading faster.

Example:

```python
from keras_ssl.data.audio_stream import stream_audio_folder, speech_stream_dataset

stream = stream_audio_folder("LibriSpeech/train-clean-100")
data = speech_stream_dataset(stream, batch_size=8, repeat=True, shuffle=True)
```

`keras_ssl.speech.pretrain_wav2vec2(stream, config)` and
`finetune_ctc(encoder, stream, config)` take a stream in place of the
embedded corpus.
"""

from __future__ import annotations

import hashlib
import math
import pathlib

import numpy as np

from keras_ssl.datasets.speech_corpus import SAMPLE_RATE, normalize_transcript

#: The files `stream_audio_folder` reads (recursively).
AUDIO_PATTERNS = ("*.wav", "*.flac")
#: wav2vec 2.0 crops pre-training audio to 250,000 samples (15.6 s).
DEFAULT_MAX_SECONDS = 250_000 / SAMPLE_RATE
DEFAULT_TEST_FRACTION = 0.05
DEFAULT_MAX_TEST_UTTERANCES = 200
#: wav2vec 2.0's receptive field: the shortest utterance it can encode.
DEFAULT_MIN_SAMPLES = 400
#: A bucket's label length: this many characters per second of audio.
DEFAULT_CHARS_PER_SECOND = 30.0
#: Waveforms in a TFDS stream's shuffle buffer.
DEFAULT_SHUFFLE_BUFFER = 64
_HASH_SCALE = 2**32


def _soundfile(what="FLAC files"):
    from keras_ssl._optional import require

    return require("soundfile", "speech", f"reading {what} (TensorFlow decodes only WAV)")


def _plain(function):
    """`function` for `tf.data` without AutoGraph (plain TensorFlow ops)."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(function)


# --- decoding -------------------------------------------------------------------
def _read_any(path):
    """`(samples [n, channels] float32, rate int32)` of a file TensorFlow
    does not decode itself (not 16-bit PCM WAV): SciPy for WAV, soundfile
    for FLAC (and other formats it reads)."""
    from keras_ssl.data.audio import _as_float

    path = path.decode("utf-8") if isinstance(path, bytes) else str(path)
    what = f"audio file {path!r}"
    try:
        if path.lower().endswith(".wav"):
            import scipy.io.wavfile

            rate, data = scipy.io.wavfile.read(path)
            x = _as_float(np.asarray(data), what)
        else:
            data, rate = _soundfile().read(path, dtype="float32", always_2d=True)
            x = np.asarray(data, np.float32)
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoding failure
        raise ValueError(f"could not read {what}: {error}") from None
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    return x.astype(np.float32), np.int32(rate)


def _resample_np(x, source_rate, sample_rate):
    from scipy.signal import resample_poly

    source_rate, sample_rate = int(source_rate), int(sample_rate)
    gcd = math.gcd(sample_rate, source_rate)
    return resample_poly(x, sample_rate // gcd, source_rate // gcd).astype(np.float32)


def _resample_tf(audio, rate, sample_rate):
    """`audio` (1-D) at `rate` resampled to `sample_rate` (SciPy's
    `resample_poly` in a `numpy_function` when the rates differ)."""
    import tensorflow as tf

    def convert():
        out = tf.numpy_function(
            lambda x, r: _resample_np(x, r, sample_rate), [audio, rate], tf.float32,
            stateful=False)
        out.set_shape([None])
        return out

    return tf.cond(tf.equal(tf.cast(rate, tf.int64), int(sample_rate)),
                   lambda: audio, convert)


def _mono_tf(samples, mono, what):
    """`[n, channels]` → `[n]`: the channels averaged, or one required."""
    import tensorflow as tf

    if mono == "mix":
        return tf.reduce_mean(samples, axis=1)
    check = tf.debugging.Assert(
        tf.equal(tf.shape(samples)[1], 1),
        ["multichannel audio: mono audio is needed (pass mono='mix' to average "
         "the channels):", what])
    with tf.control_dependencies([check]):
        return tf.identity(samples[:, 0])


def decode_audio_file(path, sample_rate=SAMPLE_RATE, mono="mix"):
    """One audio file (a scalar string tensor, its path) decoded in
    TensorFlow to a 1-D float32 waveform in [-1, 1] at `sample_rate`.

    16-bit PCM WAV goes through `tf.audio.decode_wav`; anything else
    through SciPy (WAV) or soundfile (FLAC) in a `tf.numpy_function` (see
    the module docstring)."""
    import tensorflow as tf

    if mono not in ("error", "mix"):
        raise ValueError(f"mono must be 'error' or 'mix', got {mono!r}")
    data = tf.io.read_file(path)
    head = tf.strings.substr(data, 0, 36) + tf.constant(b"\0" * 36)

    def u16(offset):
        return tf.cast(tf.io.decode_raw(tf.strings.substr(head, offset, 2),
                                        tf.uint16)[0], tf.int32)

    pcm16 = (
        tf.strings.regex_full_match(tf.strings.lower(path), r".*\.wav")
        & tf.equal(tf.strings.substr(head, 0, 4), "RIFF")
        & tf.equal(tf.strings.substr(head, 8, 8), "WAVEfmt ")
        & tf.equal(u16(20), 1) & tf.equal(u16(34), 16)
    )

    def fast():
        samples, rate = tf.audio.decode_wav(data)
        return samples, tf.cast(rate, tf.int32)

    def other():
        samples, rate = tf.numpy_function(_read_any, [path], [tf.float32, tf.int32],
                                          stateful=False)
        samples.set_shape([None, None])
        rate.set_shape([])
        return samples, rate

    samples, rate = tf.cond(pcm16, fast, other)
    audio = _mono_tf(samples, mono, path)
    return _resample_tf(audio, rate, sample_rate)


def normalize_transcript_tf(text):
    """`normalize_transcript` in TensorFlow (a string tensor): accents
    stripped, lowercase, only a-z, space and in-word apostrophes."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    text = tf_text.normalize_utf8(text, "NFKD")
    text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, "\u2019", "'")
    text = tf.strings.regex_replace(text, r"[^a-z' ]+", " ")
    text = tf.strings.regex_replace(text, r"(^| )'+", r"\1 ")
    text = tf.strings.regex_replace(text, r"'+( |$)", r" \1")
    return tf.strings.strip(tf.strings.regex_replace(text, r" +", " "))


def _label_encoder(vocabulary):
    """A function: transcript (scalar string) → int32 ids of `vocabulary`,
    with a lookup table; a character outside it fails, naming the
    transcript."""
    import tensorflow as tf

    characters = list(vocabulary.characters)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(characters), tf.range(1, len(characters) + 1, dtype=tf.int32)),
        default_value=-1)

    def encode(text):
        ids = table.lookup(tf.strings.unicode_split(text, "UTF-8"))
        check = tf.debugging.Assert(
            tf.reduce_all(ids >= 0),
            ["a transcript has characters outside the vocabulary (normalise it, "
             "e.g. with normalize=True):", text])
        with tf.control_dependencies([check]):
            return tf.identity(ids)

    return encode


# --- the stream -------------------------------------------------------------------
class AudioStream:
    """Speech read from disk as a `tf.data` stream, with a held-out part.
    Made by `stream_audio_folder` and `stream_tfds_speech`; see the module
    docstring.

    Attributes:
        name: what it reads (a folder, or `tfds:NAME`).
        labelled: whether it has transcripts.
        sample_rate: of the decoded audio, in Hz.
        max_test_utterances: how many held-out utterances an evaluation
            reads.
        num_train, num_test: utterances in each part (None when unknown).
    """

    def __init__(self, name, passes, labelled, sample_rate=SAMPLE_RATE,
                 max_test_utterances=DEFAULT_MAX_TEST_UTTERANCES,
                 num_train=None, num_test=None):
        if int(max_test_utterances) < 1:
            raise ValueError(
                f"max_test_utterances must be positive, got {max_test_utterances}")
        self.name = name
        self.labelled = bool(labelled)
        self.sample_rate = int(sample_rate)
        self.max_test_utterances = int(max_test_utterances)
        self.num_train, self.num_test = num_train, num_test
        # passes(split, shuffle, seed, repeat) -> a dataset of
        # {"audio"[, "transcript"]}.
        self._passes = passes

    def dataset(self, split="train", repeat=False, shuffle=False, seed=0):
        """Decoded utterances of `split` ("train" or "test"): a dataset of
        dicts with `audio` (1-D float32 at `sample_rate`) and, when
        `labelled`, `transcript` (a normalised string). The test part is
        at most `max_test_utterances`, never shuffled nor repeated."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if split == "test":
            return self._passes("test", False, seed, False).take(
                self.max_test_utterances)
        return self._passes("train", shuffle, seed, repeat)

    def load(self, split="test", max_utterances=None):
        """The utterances of `split` in memory, as an `AudioData` (at most
        `max_utterances`; the test part is bounded anyway): what CER/WER
        scoring (`Wav2Vec2CTC.transcribe`) takes."""
        from keras_ssl.data.audio import AudioData

        data = self.dataset(split)
        if max_utterances is not None:
            data = data.take(int(max_utterances))
        audio, transcripts = [], []
        for example in data.as_numpy_iterator():
            audio.append(example["audio"])
            if self.labelled:
                transcripts.append(example["transcript"].decode("utf-8"))
        if not audio:
            raise ValueError(f"{self.name} has no {split} utterances")
        names = [f"{self.name}:{split}:{i}" for i in range(len(audio))]
        return AudioData(audio, transcripts if self.labelled else None, names,
                         self.sample_rate)

    def __repr__(self):
        parts = [] if self.num_train is None else [
            f"{self.num_train} train", f"{self.num_test} test utterances"]
        labelled = "with" if self.labelled else "without"
        return (f"AudioStream({self.name!r}, {', '.join(parts) + ', ' if parts else ''}"
                f"{labelled} transcripts)")


def is_audio_stream(data):
    return isinstance(data, AudioStream)


def _held_out_name(name, test_fraction):
    digest = hashlib.sha1(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") < test_fraction * _HASH_SCALE


def _epoch_order(count, seed, epoch):
    import tensorflow as tf

    noise = tf.random.stateless_uniform(
        [count], tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)]))
    return tf.argsort(noise)


def stream_audio_folder(path, sample_rate=SAMPLE_RATE, mono="mix", normalize=True,
                        patterns=AUDIO_PATTERNS, test_fraction=DEFAULT_TEST_FRACTION,
                        max_test_utterances=DEFAULT_MAX_TEST_UTTERANCES,
                        transcripts=True):
    """An `AudioStream` of the audio files under a folder (recursively,
    `.wav` and `.flac` by default), with their transcripts if it has them.

    Args:
        path: the folder.
        sample_rate: the rate of the decoded audio (files at other rates
            are resampled).
        mono: "mix" (average the channels) or "error" (multichannel
            files fail).
        normalize: normalise transcripts with `normalize_transcript`.
        patterns: the file names read.
        test_fraction: the held-out fraction of the files (by hash of
            their names).
        max_test_utterances: held-out utterances an evaluation reads.
        transcripts: look for transcripts (`transcripts.tsv`, or `NAME.txt`
            beside each file); False streams the audio alone.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: no audio files, transcripts for only some files, or a
            held-out part or training part without files.
        ImportError: FLAC files without the `soundfile` package
            (`pip install "keras-ssl[speech]"`).

    Example:

    >>> import tempfile, scipy.io.wavfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in "abc":
    ...     scipy.io.wavfile.write(folder / f"{name}.wav", 8000, np.zeros(800, np.int16))
    >>> stream = stream_audio_folder(folder, test_fraction=0.0, transcripts=False)
    >>> [x["audio"].shape for x in stream.dataset().as_numpy_iterator()]
    [(1600,), (1600,), (1600,)]
    """
    import tensorflow as tf

    from keras_ssl.data.audio import _folder_transcripts

    if mono not in ("error", "mix"):
        raise ValueError(f"mono must be 'error' or 'mix', got {mono!r}")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    root = pathlib.Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {str(root)!r} not found")
    patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    files = sorted({p for pattern in patterns for p in root.rglob(pattern)
                    if p.is_file()})
    if not files:
        raise ValueError(f"audio folder {str(root)!r} has no {' or '.join(patterns)} files")
    if any(f.suffix.lower() != ".wav" for f in files):
        _soundfile(f"the non-WAV files in {str(root)!r} (e.g. "
                   f"{next(f.name for f in files if f.suffix.lower() != '.wav')})")
    names = [str(f.relative_to(root).with_suffix("")) for f in files]
    texts = _folder_transcripts(root, files, names) if transcripts else None
    if texts is not None and normalize:
        texts = [normalize_transcript(t) for t in texts]
    held = [_held_out_name(n, float(test_fraction)) for n in names]
    parts = {}
    for split, wanted in (("train", False), ("test", True)):
        index = [i for i, h in enumerate(held) if h == wanted]
        parts[split] = ([str(files[i]) for i in index],
                        [texts[i] for i in index] if texts is not None else None)
    if not parts["train"][0]:
        raise ValueError(f"audio folder {str(root)!r}: every file is held out; "
                         "lower test_fraction")

    def passes(split, shuffle, seed, repeat):
        paths, labels = parts[split]
        if not paths:
            raise ValueError(
                f"audio folder {str(root)!r} has no held-out files (test_fraction="
                f"{test_fraction}): raise test_fraction")
        table = {"path": tf.constant(paths)}
        if labels is not None:
            table["transcript"] = tf.constant(labels)
        count = len(paths)

        def one_pass(epoch):
            rows = tf.data.Dataset.from_tensor_slices(table)
            if shuffle and count > 1:
                order = _epoch_order(count, seed, epoch)
                rows = tf.data.Dataset.from_tensor_slices(
                    {k: tf.gather(v, order) for k, v in table.items()})
            return rows

        epochs = tf.data.Dataset.range(2**62 if repeat else 1)
        rows = epochs.flat_map(_plain(one_pass))

        def decode(row):
            example = {"audio": decode_audio_file(row["path"], sample_rate, mono)}
            if "transcript" in row:
                example["transcript"] = row["transcript"]
            return example

        return rows.map(_plain(decode), num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)

    return AudioStream(str(root), passes, texts is not None, sample_rate,
                       max_test_utterances, len(parts["train"][0]),
                       len(parts["test"][0]))


def stream_tfds_speech(name, data_dir=None, split="train", test_split=None,
                       audio_key=None, text_key=None, sample_rate=SAMPLE_RATE,
                       normalize=True, test_fraction=DEFAULT_TEST_FRACTION,
                       max_test_utterances=DEFAULT_MAX_TEST_UTTERANCES,
                       max_examples=None, shuffle_buffer=DEFAULT_SHUFFLE_BUFFER):
    """An `AudioStream` of a TFDS speech dataset prepared in a local
    `data_dir` (nothing is downloaded), e.g. "librispeech" (`speech`,
    `text`) or "speech_commands" (`audio`, the class `label`).

    Args:
        name, data_dir, split, audio_key, text_key, sample_rate, normalize:
            as `load_tfds_speech`. Integer audio is taken as 16-bit PCM
            values (what TFDS' `Audio` feature stores), float audio as
            samples in [-1, 1].
        test_split: a split to hold out (e.g. "dev_clean"); None holds out
            every k-th example of `split` (k = round(1 / test_fraction)).
        max_examples: read at most this many examples of each split.
        max_test_utterances: held-out utterances an evaluation reads.
        shuffle_buffer: waveforms in the training stream's shuffle buffer.

    Raises:
        ValueError: not registered or not prepared in `data_dir`, without
            an audio feature, or without the named `text_key`.
    """
    import tensorflow as tf

    from keras_ssl.data.audio import tfds_speech_features
    from keras_ssl.data.images import tfds_builder, tfds_split

    builder, where = tfds_builder(name, data_dir)
    audio_key, text_key, source_rate, class_names = tfds_speech_features(
        builder, name, audio_key, text_key, sample_rate)
    every = None
    if test_split is None:
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(
                f"test_fraction must be in (0, 1) without a test_split, got {test_fraction}")
        every = max(2, int(round(1.0 / float(test_fraction))))

    def convert(example):
        audio = example[audio_key]
        if audio.dtype.is_integer:
            audio = tf.cast(audio, tf.float32) / 32768.0
        else:
            audio = tf.cast(audio, tf.float32)
        if audio.shape.rank == 2:
            audio = tf.reduce_mean(audio, axis=1)
        out = {"audio": audio if int(source_rate) == int(sample_rate) else
               _resample_tf(audio, tf.constant(int(source_rate)), sample_rate)}
        if text_key is not None:
            value = example[text_key]
            if class_names is not None:
                value = tf.gather(tf.constant(class_names), tf.cast(value, tf.int32))
            out["transcript"] = normalize_transcript_tf(value) if normalize else value
        return out

    def read(which):
        return tfds_split(builder, name, where, which, max_examples)

    read(split)  # fails now if the split is not prepared
    if test_split is not None:
        read(test_split)

    def passes(part, shuffle, seed, repeat):
        if part == "test" and test_split is not None:
            data = read(test_split)
        else:
            data = read(split)
            if every is not None:
                keep = (lambda i, _: tf.equal(i % every, 0)) if part == "test" else (
                    lambda i, _: tf.not_equal(i % every, 0))
                data = data.enumerate().filter(_plain(keep)).map(
                    _plain(lambda i, example: example))
        if repeat:
            data = data.repeat()
        data = data.map(_plain(convert), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if shuffle and shuffle_buffer > 1:
            data = data.shuffle(int(shuffle_buffer), seed=seed,
                                reshuffle_each_iteration=False)
        return data

    return AudioStream(f"tfds:{name}", passes, text_key is not None, sample_rate,
                       max_test_utterances)


# --- batches -------------------------------------------------------------------------
def stream_bucket_boundaries(max_samples, sample_rate=SAMPLE_RATE, bucket_seconds=0.5):
    """Bucket lengths every `bucket_seconds` up to (and covering)
    `max_samples`.

    >>> stream_bucket_boundaries(20000)
    [8000, 16000, 24000]
    """
    step = int(round(bucket_seconds * sample_rate))
    if step < 1:
        raise ValueError(f"bucket_seconds must give at least one sample, got {bucket_seconds}")
    return [step * k for k in range(1, max(1, -(-int(max_samples) // step)) + 1)]


def _finite(data):
    """A finite dataset with its number of elements known (cached once)."""
    import tensorflow as tf

    data = data.cache()
    count = int(data.reduce(0, _plain(lambda count, _: count + 1)))
    return data.apply(tf.data.experimental.assert_cardinality(count))


def speech_stream_dataset(
    stream,
    split="train",
    labels=False,
    vocabulary=None,
    batch_size=8,
    shuffle=True,
    seed=0,
    repeat=False,
    drop_remainder=None,
    bucket_seconds=0.5,
    max_seconds=DEFAULT_MAX_SECONDS,
    min_samples=DEFAULT_MIN_SAMPLES,
    label_multiple=8,
    chars_per_second=DEFAULT_CHARS_PER_SECOND,
):
    """Length-bucketed, fixed-shape batches of an `AudioStream`, with the
    structure of `speech_dataset`'s (see the module docstring for what a
    stream does differently).

    Args:
        stream: an `AudioStream`.
        split: "train" or "test".
        labels: add `labels` and `label_length` (CTC; the stream needs
            transcripts). Utterances longer than `max_seconds` are then
            skipped rather than cropped.
        vocabulary: encodes the transcripts (default `CharacterVocabulary()`).
        batch_size: utterances per batch.
        shuffle: shuffle (seeded by `seed`), and crop long utterances at a
            random place (else at their start).
        repeat: an endless stream (its cardinality infinite, what
            `ResumableBackup` needs); else one pass, its number of batches
            counted once (a bounded part, such as the test part).
        drop_remainder: drop each bucket's last smaller batch; default
            `repeat`.
        bucket_seconds: bucket width; max_seconds: the longest bucket.
        min_samples: shorter utterances are skipped.
        label_multiple, chars_per_second: a bucket's label length.

    Raises:
        ValueError: bad arguments, or labels of a stream without
            transcripts.
    """
    import tensorflow as tf

    from keras_ssl.data.audio import CharacterVocabulary

    if not isinstance(stream, AudioStream):
        raise ValueError(f"expected an AudioStream, got {type(stream).__name__}")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    if labels and not stream.labelled:
        raise ValueError(
            f"{stream.name} has no transcripts (transcripts.tsv, or NAME.txt beside "
            "NAME.wav; a TFDS text_key): CTC fine-tuning needs them")
    rate = stream.sample_rate
    max_samples = int(round(float(max_seconds) * rate))
    if max_samples < max(int(min_samples), 1):
        raise ValueError(f"max_seconds={max_seconds} is shorter than min_samples")
    boundaries = stream_bucket_boundaries(max_samples, rate, bucket_seconds)
    multiple = max(int(label_multiple), 1)
    label_lengths = [max(1, -(-math.ceil(b / rate * chars_per_second) // multiple)) * multiple
                     for b in boundaries]
    if drop_remainder is None:
        drop_remainder = bool(repeat)
    encode = _label_encoder(vocabulary or CharacterVocabulary())

    data = stream.dataset(split, repeat=repeat, shuffle=shuffle, seed=seed)
    data = data.filter(_plain(lambda e: tf.shape(e["audio"])[0] >= int(min_samples)))
    if labels:
        data = data.filter(_plain(lambda e: tf.shape(e["audio"])[0] <= max_samples))
    else:
        data = data.enumerate().map(_plain(
            lambda i, e: {"audio": _crop(e["audio"], max_samples, shuffle, seed, i)}))
    bounds = tf.constant(boundaries, tf.int32)

    def annotate(e):
        length = tf.shape(e["audio"])[0]
        element = {"audio": e["audio"], "length": length,
                   "bucket": tf.cast(tf.searchsorted(bounds, length[None],
                                                     side="left")[0], tf.int64)}
        if labels:
            ids = encode(e["transcript"])
            element["labels"] = ids
            element["label_length"] = tf.shape(ids)[0]
        return element

    data = data.map(_plain(annotate), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    tables = {"audio": bounds, "labels": tf.constant(label_lengths, tf.int32)}
    if labels:
        data = data.filter(_plain(
            lambda e: e["label_length"] <= tf.gather(tables["labels"], e["bucket"])))

    def batch(bucket, window):
        shapes = {"audio": tf.reshape(tf.cast(tf.gather(tables["audio"], bucket), tf.int64), [1]),
                  "length": []}
        if labels:
            shapes["labels"] = tf.reshape(
                tf.cast(tf.gather(tables["labels"], bucket), tf.int64), [1])
            shapes["label_length"] = []
        window = window.map(_plain(lambda e: {k: v for k, v in e.items() if k != "bucket"}))
        return window.padded_batch(batch_size, shapes, drop_remainder=drop_remainder)

    def finish(element):
        length = element.pop("length")
        element["padding_mask"] = tf.sequence_mask(length, tf.shape(element["audio"])[1])
        return element

    data = data.group_by_window(_plain(lambda e: e["bucket"]), _plain(batch),
                                window_size=batch_size)
    data = data.map(_plain(finish))
    data = data.repeat() if repeat else _finite(data)
    return data.prefetch(tf.data.AUTOTUNE)


def _crop(audio, max_samples, random, seed, index):
    """`audio` cut to `max_samples`: at a random place drawn from `(seed,
    index)`, or at its start."""
    import tensorflow as tf

    length = tf.shape(audio)[0]
    room = tf.maximum(length - max_samples, 0)
    if random:
        start = tf.random.stateless_uniform(
            [], tf.stack([tf.constant(int(seed), tf.int64), index]),
            maxval=tf.int32.max, dtype=tf.int32) % (room + 1)
    else:
        start = 0
    return audio[start:start + max_samples]
