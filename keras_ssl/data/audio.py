"""Speech data: a character vocabulary for CTC, audio loaders, and bucketed
`tf.data` batches of fixed shapes.

* `CharacterVocabulary`: id 0 is the CTC blank (and label padding), then
  space, apostrophe and a-z: the alphabet of the embedded spoken corpus
  (`keras_ssl.datasets.load_spoken_corpus`).
* `load_audio_folder`: a folder of `.wav` files with transcripts;
  `load_tfds_speech`: a TFDS speech dataset prepared in a local `data_dir`
  (LibriSpeech, Speech Commands, ...). Both give an `AudioData` of float32
  mono waveforms at one sample rate (16 kHz by default).
* `check_audio`: one waveform checked, with errors that say what is wrong.
* `speech_dataset`: utterances grouped by length into buckets and each
  batch padded to its bucket's fixed length, so a compiled training step
  sees a few distinct shapes only.

Example:

>>> vocabulary = CharacterVocabulary()
>>> ids = vocabulary.encode("hi there")
>>> ids.tolist(), vocabulary.decode(ids)
([10, 11, 1, 22, 10, 7, 20, 7], 'hi there')
>>> audio = [np.full(n, 0.1, np.float32) for n in (12000, 14000, 7000)]
>>> dataset = speech_dataset(audio, ["a", "bc", "d"], batch_size=2, shuffle=False)
>>> [tuple(batch["audio"].shape) for batch in dataset]  # buckets of 0.5 s
[(2, 16000), (1, 8000)]
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence

import numpy as np

from keras_ssl.datasets.speech_corpus import ALPHABET, SAMPLE_RATE, normalize_transcript

#: The token of id 0, the CTC blank (also the label padding).
BLANK = "<blank>"

_TRANSCRIPT_FILES = ("transcripts.tsv", "transcripts.txt")
_AUDIO_KEYS = ("speech", "audio")
_TEXT_KEYS = ("text", "transcript", "sentence", "label")


class CharacterVocabulary:
    """Characters to ids and back for CTC: id 0 is the blank, ids 1.. the
    characters (by default space, apostrophe and a-z: 29 ids in all).

    Args:
        characters: the characters, in id order from 1; distinct.

    Example:

    >>> vocabulary = CharacterVocabulary()
    >>> vocabulary.size, vocabulary.tokens[:4]
    (29, ['<blank>', ' ', "'", 'a'])
    >>> vocabulary.ctc_decode([0, 10, 10, 0, 11, 11, 0])
    'hi'
    """

    def __init__(self, characters: str = ALPHABET):
        characters = "".join(characters)
        if not characters or len(set(characters)) != len(characters):
            raise ValueError(f"characters must be distinct and non-empty, got {characters!r}")
        self.characters = characters
        self._ids = {c: i + 1 for i, c in enumerate(characters)}

    @property
    def size(self) -> int:
        """Number of ids, the blank included (the CTC output width)."""
        return len(self.characters) + 1

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def tokens(self) -> list:
        """`[BLANK, characters...]`, indexed by id."""
        return [BLANK, *self.characters]

    def encode(self, text: str) -> np.ndarray:
        """The int32 ids of `text`'s characters.

        Raises:
            ValueError: characters outside the vocabulary (named), with a
                hint to normalise the text first.
        """
        if not isinstance(text, str):
            raise ValueError(f"expected a transcript string, got {type(text).__name__}")
        unknown = sorted(set(text) - set(self._ids))
        if unknown:
            raise ValueError(
                f"transcript {text[:60]!r} has characters outside the vocabulary: "
                f"{''.join(unknown)!r} (expected only {self.characters!r}); normalise "
                "it first, e.g. with keras_ssl.data.audio.normalize_transcript"
            )
        return np.fromiter((self._ids[c] for c in text), np.int32, len(text))

    def decode(self, ids) -> str:
        """The text of `ids`; blanks (0, also the label padding) are dropped.

        Raises:
            ValueError: an id outside `[0, size)`.
        """
        ids = np.asarray(ids).reshape(-1).astype(np.int64)
        bad = ids[(ids < 0) | (ids >= self.size)]
        if bad.size:
            raise ValueError(f"ids {sorted(set(bad.tolist()))} are outside [0, {self.size})")
        return "".join(self.characters[i - 1] for i in ids.tolist() if i != 0)

    def ctc_decode(self, frame_ids) -> str:
        """Greedy CTC decoding of per-frame ids (e.g. the argmax of the
        logits): repeats collapsed, then blanks dropped."""
        ids = np.asarray(frame_ids).reshape(-1)
        if ids.size:
            ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
        return self.decode(ids)

    def get_config(self) -> dict:
        return {"characters": self.characters}

    @classmethod
    def from_config(cls, config: dict) -> "CharacterVocabulary":
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, CharacterVocabulary) and other.characters == self.characters

    def __repr__(self) -> str:
        return f"CharacterVocabulary(characters={self.characters!r})"


@dataclasses.dataclass
class AudioData:
    """Mono float32 waveforms at one sample rate, with their transcripts.

    Attributes:
        audio: one 1-D float32 array per utterance.
        transcripts: one string per utterance, or None (no transcripts).
        names: one name per utterance (file stem, or TFDS id).
        sample_rate: in Hz.
    """

    audio: list
    transcripts: list | None
    names: list
    sample_rate: int = SAMPLE_RATE

    @property
    def minutes(self) -> float:
        return sum(len(x) for x in self.audio) / self.sample_rate / 60.0

    def __len__(self) -> int:
        return len(self.audio)

    def __repr__(self) -> str:
        labelled = "with" if self.transcripts is not None else "without"
        return (f"AudioData({len(self)} utterances, {self.minutes:.2f} min at "
                f"{self.sample_rate} Hz, {labelled} transcripts)")


def check_audio(audio, min_samples: int = 1, name: str = "audio") -> np.ndarray:
    """`audio` as a 1-D float32 NumPy waveform, or a `ValueError` saying
    what is wrong with it.

    Args:
        audio: a waveform (NumPy array or any tensor NumPy can convert).
        min_samples: the fewest samples accepted, e.g. the receptive field
            of the model's feature encoder (400 for wav2vec 2.0).
        name: how errors call it.

    Raises:
        ValueError: not 1-D (multichannel audio: mix it down), an integer
            (PCM) or other non-float dtype, empty, shorter than
            `min_samples`, or with NaN or infinite values.

    Example:

    >>> check_audio(np.zeros(16000)).dtype
    dtype('float32')
    >>> check_audio(np.zeros((16000, 2), np.float32))
    Traceback (most recent call last):
    ...
    ValueError: audio has shape (16000, 2): 2-channel audio? Expected a mono 1-D waveform: mix it down, e.g. audio.mean(axis=1)
    """
    x = np.asarray(audio)
    if x.ndim == 2:
        channel_axis = int(np.argmin(x.shape))
        channels = x.shape[channel_axis]
        hint = ("audio.reshape(-1)" if channels == 1 else f"audio.mean(axis={channel_axis})")
        raise ValueError(
            f"{name} has shape {x.shape}: {channels}-channel audio? Expected a mono 1-D "
            f"waveform: {'drop the channel axis' if channels == 1 else 'mix it down'}, "
            f"e.g. {hint}"
        )
    if x.ndim != 1:
        raise ValueError(f"{name} has shape {x.shape}: expected a mono 1-D waveform")
    if np.issubdtype(x.dtype, np.integer):
        scale = 2 ** (8 * x.dtype.itemsize - 1)
        raise ValueError(
            f"{name} has integer dtype {x.dtype}: expected float samples in [-1, 1]; "
            f"convert PCM with audio.astype('float32') / {scale}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} has dtype {x.dtype}: expected float samples in [-1, 1]")
    if x.size == 0:
        raise ValueError(f"{name} is empty: expected at least {max(min_samples, 1)} samples")
    if len(x) < min_samples:
        raise ValueError(
            f"{name} has {len(x)} samples, fewer than min_samples={min_samples} "
            "(the model's receptive field): drop or pad such short utterances"
        )
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        raise ValueError(f"{name} has {int((~finite).sum())} NaN or infinite samples")
    return x


def _resample(x, source_rate, sample_rate, resample, what):
    if source_rate == sample_rate:
        return x
    if not resample:
        raise ValueError(
            f"{what} is at {source_rate} Hz: expected {sample_rate} Hz "
            "(pass resample=True to resample it)"
        )
    from scipy.signal import resample_poly

    gcd = math.gcd(int(sample_rate), int(source_rate))
    return resample_poly(x, sample_rate // gcd, source_rate // gcd).astype(np.float32)


def _as_float(data, what):
    """PCM or float samples as float32 in [-1, 1]."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32)
    raise ValueError(f"{what} has samples of type {data.dtype}: expected PCM or float")


def _mono(x, mono, what):
    if x.ndim == 1:
        return x
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if mono == "mix":
        return x.mean(axis=1)
    raise ValueError(
        f"{what} has {x.shape[1]} channels: mono audio is needed; mix it down "
        "(pass mono='mix' to average the channels)"
    )


def read_wav(path, sample_rate: int = SAMPLE_RATE, resample: bool = True,
             mono: str = "error") -> np.ndarray:
    """One `.wav` file (8/16/24/32-bit PCM or float) as float32 mono at
    `sample_rate`. See `load_audio_folder` for the arguments and errors.

    >>> import tempfile, scipy.io.wavfile
    >>> file = tempfile.mktemp(suffix=".wav")
    >>> scipy.io.wavfile.write(file, 8000, np.zeros(800, np.int16))
    >>> read_wav(file).shape
    (1600,)
    """
    import scipy.io.wavfile

    if mono not in ("error", "mix"):
        raise ValueError(f"mono must be 'error' or 'mix', got {mono!r}")
    what = f"audio file {str(path)!r}"
    try:
        rate, data = scipy.io.wavfile.read(path)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoding failure
        raise ValueError(
            f"could not read {what}: {error} (expected a PCM or float WAV file)"
        ) from None
    x = _mono(_as_float(np.asarray(data), what), mono, what)
    if x.size == 0:
        raise ValueError(f"{what} is empty: it has no samples")
    return _resample(x, int(rate), int(sample_rate), resample, what)


def _folder_transcripts(root, files, names):
    """Transcripts by name from `transcripts.tsv`/`.txt`, or from a `.txt`
    next to each file; None when there are none."""
    table = {}
    for listing in _TRANSCRIPT_FILES:
        file = root / listing
        if file.is_file():
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                key, tab, text = line.partition("\t")
                if not tab:
                    raise ValueError(
                        f"{file}, line {number}: expected 'name<TAB>transcript', got {line!r}"
                    )
                table[key.strip()] = text.strip()
            break
    transcripts = []
    for file, name in zip(files, names):
        sibling = file.with_suffix(".txt")
        if name in table:
            transcripts.append(table[name])
        elif file.stem in table:
            transcripts.append(table[file.stem])
        elif sibling.is_file() and sibling.name not in _TRANSCRIPT_FILES:
            transcripts.append(sibling.read_text(encoding="utf-8").strip())
        else:
            transcripts.append(None)
    missing = [n for n, t in zip(names, transcripts) if t is None]
    if len(missing) == len(names):
        return None
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(names)} audio files in {str(root)!r} have no "
            f"transcript, e.g. {missing[:3]}: expected a <name>.txt next to each file or "
            f"a line 'name<TAB>text' in {_TRANSCRIPT_FILES[0]}"
        )
    return transcripts


def load_audio_folder(
    path,
    sample_rate: int = SAMPLE_RATE,
    resample: bool = True,
    mono: str = "error",
    normalize: bool = True,
    pattern: str = "*.wav",
) -> AudioData:
    """The `.wav` files under a folder (searched recursively, sorted), with
    their transcripts if it has them.

    Transcripts come from `transcripts.tsv` (or `transcripts.txt`) in the
    folder, one `name<TAB>text` line per file (`name` is the path relative
    to the folder without `.wav`, or just the file stem), or else from a
    `<name>.txt` file next to each `<name>.wav`.

    Args:
        path: the folder.
        sample_rate: the rate of the returned audio, in Hz.
        resample: resample files at other rates (else they are an error).
        mono: "error" (default) for multichannel files, or "mix" to
            average their channels.
        normalize: normalise transcripts (`normalize_transcript`: lowercase,
            a-z, space, apostrophe) to suit `CharacterVocabulary`.
        pattern: the file names to read.

    Returns:
        An `AudioData` (`transcripts` None when the folder has none).

    Raises:
        FileNotFoundError: no such folder.
        ValueError: no audio files; a file that cannot be read, is empty,
            multichannel (with `mono="error"`) or at another rate (with
            `resample=False`); transcripts for only some files.

    Example:

    >>> import tempfile, scipy.io.wavfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> scipy.io.wavfile.write(folder / "a.wav", 16000, np.zeros(1600, np.int16))
    >>> _ = (folder / "a.txt").write_text("Hello, World!")
    >>> data = load_audio_folder(folder)
    >>> data.names, data.transcripts, data.audio[0].shape
    (['a'], ['hello world'], (1600,))
    """
    root = pathlib.Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {str(root)!r} not found")
    files = sorted(p for p in root.rglob(pattern) if p.is_file())
    if not files:
        raise ValueError(f"audio folder {str(root)!r} has no {pattern} files")
    names = [str(p.relative_to(root).with_suffix("")) for p in files]
    audio = [read_wav(p, sample_rate, resample, mono) for p in files]
    transcripts = _folder_transcripts(root, files, names)
    if transcripts is not None and normalize:
        transcripts = [normalize_transcript(t) for t in transcripts]
    return AudioData(audio, transcripts, names, int(sample_rate))



def tfds_speech_features(builder, name, audio_key, text_key, sample_rate):
    """`(audio_key, text_key, source_rate, class_names)` of a TFDS speech
    builder: the audio feature (default: the first of `_AUDIO_KEYS`), the
    transcript or label feature (default: the first of `_TEXT_KEYS`, or
    None), the audio's rate and, for a class label, its names."""
    from keras_ssl._optional import require

    tfds = require("tensorflow_datasets", "tfds", f"the TFDS dataset {name!r}")

    features = builder.info.features
    if audio_key is None:
        audio_key = next((k for k in _AUDIO_KEYS if k in features), None)
    if audio_key is None or audio_key not in features:
        raise ValueError(
            f"TFDS dataset {name!r} has features {sorted(features)}: expected an audio "
            f"feature {'/'.join(_AUDIO_KEYS)} (pass audio_key=)"
        )
    if text_key is None:
        text_key = next((k for k in _TEXT_KEYS if k in features), None)
    elif text_key not in features:
        raise ValueError(f"TFDS dataset {name!r} has no feature {text_key!r}: "
                         f"it has {sorted(features)}")
    source_rate = getattr(features[audio_key], "sample_rate", None) or sample_rate
    label = features[text_key] if text_key is not None else None
    class_names = label.names if isinstance(label, tfds.features.ClassLabel) else None
    return audio_key, text_key, source_rate, class_names

def load_tfds_speech(
    name: str,
    data_dir: str | None = None,
    split: str = "train",
    max_examples: int | None = None,
    audio_key: str | None = None,
    text_key: str | None = None,
    sample_rate: int = SAMPLE_RATE,
    resample: bool = True,
    normalize: bool = True,
) -> AudioData:
    """A TFDS speech dataset prepared in a local `data_dir` (nothing is
    downloaded), e.g. `"librispeech"` (features `speech` and `text`) or
    `"speech_commands"` (`audio` and the class `label`, whose name becomes
    the transcript).

    Args:
        name: the TFDS name.
        data_dir: the local TFDS data directory (None: the TFDS default).
        split: e.g. "train", "test" or "train_clean100".
        max_examples: read at most this many examples.
        audio_key: the audio feature; default the first of "speech",
            "audio".
        text_key: the transcript feature (text or class label); default
            the first of "text", "transcript", "sentence", "label"; None
            when there is none (then `transcripts` is None).
        sample_rate: the rate of the returned audio; the dataset's own rate
            comes from its `Audio` feature (assumed equal if unset).
        resample: resample audio at another rate (else an error).
        normalize: normalise transcripts with `normalize_transcript`.

    Raises:
        ValueError: not registered or not prepared in `data_dir`, or
            without an audio feature.

    Example (with a prepared copy of LibriSpeech):

    >>> data = load_tfds_speech("librispeech", "/data/tfds", "dev_clean")  # doctest: +SKIP
    """
    from keras_ssl.data.images import tfds_builder, tfds_split

    builder, where = tfds_builder(name, data_dir)
    audio_key, text_key, source_rate, class_names = tfds_speech_features(
        builder, name, audio_key, text_key, sample_rate)
    dataset = tfds_split(builder, name, where, split, max_examples)
    audio, transcripts, names = [], [], []
    for i, example in enumerate(dataset.as_numpy_iterator()):
        what = f"{name}:{split} example {i}"
        x = _mono(_as_float(np.asarray(example[audio_key]), what), "mix", what)
        if x.size == 0:
            raise ValueError(f"{what} has empty audio")
        audio.append(_resample(x, int(source_rate), int(sample_rate), resample, what))
        names.append(f"{name}:{split}:{i}")
        if text_key is not None:
            value = example[text_key]
            if class_names is not None:
                text = class_names[int(value)]
            else:
                text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            transcripts.append(normalize_transcript(text) if normalize else text)
    if not audio:
        raise ValueError(f"TFDS dataset {name!r} split {split!r} has no examples")
    return AudioData(audio, transcripts if text_key is not None else None, names,
                     int(sample_rate))


def default_bucket_boundaries(lengths, sample_rate: int = SAMPLE_RATE,
                              bucket_seconds: float = 0.5) -> list:
    """Bucket lengths every `bucket_seconds` from the shortest to the
    longest of `lengths` (in samples): the ones `speech_dataset` uses.

    >>> default_bucket_boundaries([7000, 12000, 20000])
    [8000, 16000, 24000]
    """
    step = int(round(bucket_seconds * sample_rate))
    if step < 1:
        raise ValueError(f"bucket_seconds must give at least one sample, got {bucket_seconds}")
    lengths = np.asarray(lengths)
    low = int(math.ceil(lengths.min() / step))
    high = int(math.ceil(lengths.max() / step))
    return [step * k for k in range(max(low, 1), max(high, 1) + 1)]


def speech_dataset(
    audio: Sequence,
    transcripts: Sequence | None = None,
    vocabulary: CharacterVocabulary | None = None,
    batch_size: int = 8,
    bucket_boundaries: Sequence[int] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool | None = None,
    min_samples: int = 1,
    sample_rate: int = SAMPLE_RATE,
    bucket_seconds: float = 0.5,
    label_multiple: int = 8,
):
    """A `tf.data.Dataset` of length-bucketed, fixed-shape speech batches.

    Each utterance goes to the first bucket at least as long as it and is
    batched only with utterances of its bucket; the batch is padded to the
    bucket's length. So batches have one of a few shapes (one per bucket,
    plus smaller last batches unless `drop_remainder`), never one per batch.

    Elements are dicts:

    * `"audio"`: float32 `[B, L]`, zero-padded; `L` is a bucket length.
    * `"padding_mask"`: bool `[B, L]`, True on real samples.
    * with `transcripts`: `"labels"`: int32 `[B, U]`, the character ids
      padded with 0 (the blank) to the bucket's label length `U` (its
      longest transcript rounded up to a multiple of `label_multiple`),
      and `"label_length"`: int32 `[B]`.

    Args:
        audio: 1-D float waveforms (checked with `check_audio`).
        transcripts: one string per utterance (or id sequence), or None.
        vocabulary: encodes the transcripts (default `CharacterVocabulary()`).
        batch_size: utterances per batch.
        bucket_boundaries: increasing bucket lengths in samples; default
            `default_bucket_boundaries` (every `bucket_seconds`). An
            utterance longer than the last one is an error.
        shuffle: shuffle the utterances every epoch (seeded by `seed`).
        seed: seed of the shuffle: equal seeds give equal batches.
        repeat: repeat forever.
        drop_remainder: drop each bucket's last, smaller batch; default
            `shuffle` (training pipelines get fixed batch sizes, evaluation
            ones every utterance).
        min_samples: shortest utterance accepted (e.g. the model's
            receptive field).
        sample_rate: sample rate of `audio` (for the default buckets).
        bucket_seconds: width of the default buckets.
        label_multiple: label lengths are rounded up to a multiple of it.

    Raises:
        ValueError: bad audio, transcripts or arguments.

    Example:

    >>> audio = [np.full(n, 0.1, np.float32) for n in (3000, 5000, 9000, 4000)]
    >>> dataset = speech_dataset(audio, ["ab", "cd", "efg", "h"], batch_size=2,
    ...                          bucket_boundaries=[5000, 10000], shuffle=False)
    >>> for batch in dataset:
    ...     print(batch["audio"].shape, batch["labels"].shape, batch["label_length"].numpy())
    (2, 5000) (2, 8) [2 2]
    (1, 5000) (1, 8) [1]
    (1, 10000) (1, 8) [3]
    """
    import tensorflow as tf

    if isinstance(audio, np.ndarray) and audio.ndim != 1 and audio.dtype != object:
        audio = list(audio)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if len(audio) == 0:
        raise ValueError("audio is empty: expected at least one utterance")
    waves = [check_audio(x, min_samples, f"audio[{i}]") for i, x in enumerate(audio)]
    lengths = np.array([len(x) for x in waves], np.int64)
    if bucket_boundaries is None:
        boundaries = np.array(default_bucket_boundaries(lengths, sample_rate, bucket_seconds),
                              np.int64)
    else:
        boundaries = np.asarray(list(bucket_boundaries), np.int64)
        if boundaries.ndim != 1 or not boundaries.size or boundaries[0] < 1 or (
                np.diff(boundaries) <= 0).any():
            raise ValueError(
                f"bucket_boundaries must be increasing positive lengths, got {bucket_boundaries!r}"
            )
        longest = int(lengths.argmax())
        if lengths[longest] > boundaries[-1]:
            raise ValueError(
                f"audio[{longest}] has {lengths[longest]} samples, more than the last bucket "
                f"boundary {boundaries[-1]}: add a larger boundary or crop the audio"
            )
    buckets = np.searchsorted(boundaries, lengths, side="left").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = tf.constant(np.concatenate(waves))
    tables = {"audio": tf.constant(boundaries)}
    elements = {"offsets": tf.constant(offsets), "buckets": tf.constant(buckets)}
    if transcripts is not None:
        if len(transcripts) != len(waves):
            raise ValueError(f"{len(transcripts)} transcripts for {len(waves)} utterances")
        vocabulary = vocabulary or CharacterVocabulary()
        labels = [vocabulary.encode(t) if isinstance(t, str) else np.asarray(t, np.int32)
                  for t in transcripts]
        for i, ids in enumerate(labels):
            if ids.ndim != 1 or (ids.size and (ids.min() < 0 or ids.max() >= vocabulary.size)):
                raise ValueError(f"transcripts[{i}] is not a sequence of vocabulary ids")
        label_lengths = np.array([len(ids) for ids in labels], np.int64)
        multiple = max(int(label_multiple), 1)
        longest = np.zeros(len(boundaries), np.int64)
        np.maximum.at(longest, buckets, label_lengths)
        tables["labels"] = tf.constant(np.maximum(-(-longest // multiple), 1) * multiple)
        elements["label_offsets"] = tf.constant(
            np.concatenate([[0], np.cumsum(label_lengths)]).astype(np.int64))
        label_values = tf.constant(np.concatenate(labels).astype(np.int32))
    if drop_remainder is None:
        drop_remainder = bool(shuffle)

    def load(i):
        start, stop = elements["offsets"][i], elements["offsets"][i + 1]
        element = {"audio": values[start:stop], "length": tf.cast(stop - start, tf.int32),
                   "bucket": elements["buckets"][i]}
        if transcripts is not None:
            start, stop = elements["label_offsets"][i], elements["label_offsets"][i + 1]
            element["labels"] = label_values[start:stop]
            element["label_length"] = tf.cast(stop - start, tf.int32)
        return element

    def batch(bucket, window):
        shapes = {"audio": tf.reshape(tf.gather(tables["audio"], bucket), [1]), "length": []}
        if transcripts is not None:
            shapes["labels"] = tf.reshape(tf.gather(tables["labels"], bucket), [1])
            shapes["label_length"] = []
        window = window.map(lambda e: {k: v for k, v in e.items() if k != "bucket"})
        return window.padded_batch(batch_size, shapes, drop_remainder=drop_remainder)

    def finish(element):
        length = element.pop("length")
        element["padding_mask"] = tf.sequence_mask(length, tf.shape(element["audio"])[1])
        return element

    dataset = tf.data.Dataset.range(len(waves))
    if shuffle:
        dataset = dataset.shuffle(len(waves), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.group_by_window(lambda e: e["bucket"], batch, window_size=batch_size)
    return dataset.map(finish).prefetch(tf.data.AUTOTUNE)
