"""The embedded speech corpus: real English sentences, spoken by eSpeak NG.

`load_spoken_corpus` synthesises speech for sentences of the embedded text
corpus (`text_corpus.load_python_docs`, the Python language reference) with
the eSpeak NG formant synthesiser that the `espeakng-loader` wheel ships
(its shared library and voice data; nothing is downloaded). Each utterance
is 5-11 words (about 1.5-4.5 s), spoken by one of several voice variants
and English accents at a random rate (140-210 words per minute), pitch and
pitch range, then passed through a random room (a short, exponentially
decaying impulse response), mixed with coloured noise at a random SNR
(15-35 dB), peak-normalised to 0.9 and stored as 16-bit audio at 16 kHz.

The text is normalised *before* it is spoken (`normalize_transcript`:
lowercase, only a-z, space and apostrophe), so the transcript is exactly
what the audio says, in the 28-character alphabet `ALPHABET`.

Splits:

* `pretrain`: the large pool for self-supervised pretraining. It keeps its
  transcripts (for analysis), but a self-supervised method must not use
  them.
* `labelled`: a small labelled set for fine-tuning (10 minutes by default,
  like the 10-minute Libri-light subset of wav2vec 2.0). Its sentences are
  not in `pretrain`; its voices are the same ones.
* `test`: held out twice over: voice variants that `pretrain` and
  `labelled` never use, and sentences from the text corpus's held-out
  paragraphs (none of them is also a training sentence).

Everything is drawn from seeded streams, so a parameter set always gives the
same audio; the result is cached as one compressed `.npz` under
`~/.cache/keras_ssl/speech/` (or `$KERAS_SSL_CACHE/speech/`, or `cache_dir`)
and later calls just load it.

Example:

>>> corpus = load_spoken_corpus(pretrain_minutes=0.2, labelled_minutes=0.1,
...                             test_minutes=0.1, verbose=0)
>>> corpus.sample_rate, corpus.labelled.audio[0].dtype
(16000, dtype('float32'))
>>> set("".join(corpus.test.transcripts)) <= set(ALPHABET)
True
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import sys
import threading
import time
import unicodedata
import warnings

import numpy as np

#: The characters of every transcript: space, apostrophe and a-z.
ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"

#: Sample rate of the corpus audio, in Hz.
SAMPLE_RATE = 16000

#: eSpeak NG voice variants (in `espeak-ng-data/voices/!v`) of the training
#: splits (`pretrain` and `labelled`) and of the `test` split: disjoint.
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3",
                  "klatt", "klatt2", "croak")
TEST_VARIANTS = ("m7", "m8", "f4", "f5", "klatt3")

#: English accents every split draws from.
ACCENTS = ("en-us", "en", "en-gb-x-rp")

# Bump when the synthesis changes, so stale caches are not reused.
_FORMAT_VERSION = 1
_WORDS = (5, 11)  # words per utterance
_RATE = (140, 210)  # words per minute
_PITCH = (30, 70)  # eSpeak base pitch, 0-100
_PITCH_RANGE = (30, 90)  # eSpeak pitch range, 0-100
_SNR_DB = (15.0, 35.0)
_REVERB_PROBABILITY = 0.8
_RT60_SECONDS = (0.1, 0.5)  # time for the room response to decay by 60 dB
_WET = (0.05, 0.4)  # reverberant to direct energy
_PEAK = 0.9
_SPLITS = ("pretrain", "labelled", "test")

# espeak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_AUTO = 0
_RATE_PARAMETER, _PITCH_PARAMETER, _RANGE_PARAMETER = 1, 3, 4


@dataclasses.dataclass
class SpeechSplit:
    """One split of the spoken corpus.

    Attributes:
        audio: one 1-D float32 array per utterance, in `[-1, 1]`.
        transcripts: what each utterance says (characters of `ALPHABET`).
        voices: the eSpeak voice of each utterance, `"<accent>+<variant>"`,
            e.g. `"en-us+m3"`.
        sample_rate: in Hz.
    """

    audio: list
    transcripts: list
    voices: list
    sample_rate: int = SAMPLE_RATE

    @property
    def minutes(self) -> float:
        """Total duration in minutes."""
        return sum(len(x) for x in self.audio) / self.sample_rate / 60.0

    @property
    def variants(self) -> set:
        """The voice variants used (`voices` without their accents)."""
        return {voice.partition("+")[2] for voice in self.voices}

    def __len__(self) -> int:
        return len(self.audio)

    def head(self, minutes: float) -> "SpeechSplit":
        """The first utterances, until they reach `minutes` (the same rule
        as `load_spoken_corpus`: at most one utterance longer). A smaller
        labelled budget is thus a prefix of a larger one.

        >>> split = SpeechSplit([np.zeros(16000)] * 6, list("abcdef"), ["v"] * 6)
        >>> split.head(2 / 60).transcripts
        ['a', 'b']

        Raises:
            ValueError: `minutes` not positive, or more than the split holds.
        """
        minutes = float(minutes)
        if not minutes > 0:
            raise ValueError(f"head needs minutes > 0; got {minutes}.")
        if minutes > self.minutes + 1e-9:
            raise ValueError(
                f"asked for the first {minutes:g} minutes of a split of "
                f"{self.minutes:.2f} minutes; load a larger one "
                "(e.g. load_spoken_corpus(labelled_minutes=...))."
            )
        target, total, count = minutes * 60.0 * self.sample_rate, 0, 0
        while count < len(self.audio) and total < target:
            total += len(self.audio[count])
            count += 1
        return dataclasses.replace(
            self, audio=self.audio[:count], transcripts=self.transcripts[:count],
            voices=self.voices[:count])

    def __repr__(self) -> str:
        return (f"SpeechSplit({len(self)} utterances, {self.minutes:.1f} min, "
                f"{len(set(self.voices))} voices)")


@dataclasses.dataclass
class SpeechCorpus:
    """The spoken corpus: `pretrain`, `labelled` and `test` splits.

    Attributes:
        pretrain: unlabelled pretraining pool (its transcripts are kept for
            analysis only: self-supervised methods must not use them).
        labelled: small labelled fine-tuning set, same voices as `pretrain`,
            other sentences.
        test: held-out voices speaking held-out sentences.
        sample_rate: 16000.
        cache_path: the `.npz` the corpus was loaded from or saved to
            (None when caching is off).

    Example:

    >>> corpus = load_spoken_corpus(0.2, 0.1, 0.1, verbose=0)
    >>> [len(split) > 0 for split in (corpus.pretrain, corpus.test)]
    [True, True]
    """

    pretrain: SpeechSplit
    labelled: SpeechSplit
    test: SpeechSplit
    sample_rate: int = SAMPLE_RATE
    cache_path: str | None = None

    def with_labelled_minutes(self, minutes: float) -> "SpeechCorpus":
        """This corpus with only the first `minutes` of its labelled split
        (`SpeechSplit.head`); `pretrain` and `test` are unchanged. Load
        the largest budget once, then compare smaller ones on the same
        pre-training pool and test set."""
        return dataclasses.replace(self, labelled=self.labelled.head(minutes))

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{name}={len(split)} utts/{split.minutes:.1f} min"
            for name, split in zip(_SPLITS, (self.pretrain, self.labelled, self.test))
        )
        return f"SpeechCorpus({parts}, sample_rate={self.sample_rate})"


def normalize_transcript(text: str) -> str:
    """`text` as the corpus speaks and transcribes it: accents stripped,
    lowercase, only a-z, space and in-word apostrophes; everything else
    (digits, punctuation, symbols) becomes a word break; spaces collapsed.

    >>> normalize_transcript("The `__init__()` method, e.g. Python's 3rd!")
    "the init method e g python's rd"
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("\u2019", "'")
    text = re.sub(r"[^a-z' ]+", " ", text)
    text = re.sub(r"(?<![a-z])'+|'+(?![a-z])", " ", text)
    return " ".join(text.split())


def sentence_chunks(paragraphs, min_words=_WORDS[0], max_words=_WORDS[1]):
    """Normalised utterance texts of `min_words`-`max_words` words cut from
    the sentences of `paragraphs`: short sentences are joined with the next
    ones of their paragraph (a paragraph's short tail is dropped), long
    ones cut into near-equal pieces. Repeats are dropped (first one kept).

    >>> sentence_chunks(["One two three. Four five six seven eight. Nine."], 4, 6)
    ['one two three four', 'five six seven eight']
    """
    from keras_ssl.datasets.text_corpus import split_sentences

    chunks, seen = [], set()

    def add(words):
        text = " ".join(words)
        if text and text not in seen:
            seen.add(text)
            chunks.append(text)

    for paragraph in paragraphs:
        pending = []
        for sentence in split_sentences(paragraph):
            pending += normalize_transcript(sentence).split()
            if len(pending) < min_words:
                continue
            pieces = math.ceil(len(pending) / max_words)
            bounds = np.linspace(0, len(pending), pieces + 1).round().astype(int)
            for start, stop in zip(bounds[:-1], bounds[1:]):
                add(pending[start:stop])
            pending = []
        # A paragraph's last words, if fewer than `min_words`, are dropped.
    return chunks


class _Espeak:
    """The eSpeak NG library of `espeakng-loader`, in this process.

    eSpeak keeps state from one utterance to the next (random voicing noise
    and sample counts drift, whatever seeds are set), so the same call
    gives other samples later in a process; only a fresh process replaying
    the same calls is reproducible. The corpus therefore speaks through
    `_EspeakProcess`, a fresh worker process per split."""

    _lock = threading.Lock()

    def __init__(self):
        import espeakng_loader  # checked by _synthesise, in the parent

        self.data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with data {self.data_path}")
        self._chunks = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        # Kept on self: ctypes must not free the callback while eSpeak holds it.
        self._callback = callback_type(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        variants = pathlib.Path(self.data_path, "voices", "!v")
        missing = [v for v in TRAIN_VARIANTS + TEST_VARIANTS if not (variants / v).is_file()]
        if missing:
            raise RuntimeError(f"eSpeak NG data {self.data_path} lacks voice variants {missing}")

    def _collect(self, wav, num_samples, events):
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def speak(self, text, voice, rate, pitch, pitch_range):
        """int16 samples at `self.sample_rate` of `text` spoken by `voice`."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
            for parameter, value in ((_RATE_PARAMETER, rate), (_PITCH_PARAMETER, pitch),
                                     (_RANGE_PARAMETER, pitch_range)):
                self.lib.espeak_SetParameter(parameter, int(value), 0)
            self._chunks = []
            data = text.encode("utf-8")
            buffer = ctypes.create_string_buffer(data)
            status = self.lib.espeak_Synth(buffer, len(data) + 1, 0, _POS_CHARACTER, 0,
                                           _CHARS_AUTO, None, None)
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if status != 0 or not chunks:
            raise RuntimeError(f"eSpeak NG failed (status {status}) to speak {text!r}")
        return np.concatenate(chunks)


class _EspeakProcess:
    """`_Espeak` in a fresh worker process (this file run as a script, so
    the worker imports only NumPy): `speak` sends one request and reads
    back the samples."""

    def __init__(self):
        import subprocess

        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--espeak-worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.sample_rate = self._read_header("start")

    def _read_header(self, what):
        header = self._process.stdout.read(8)
        if len(header) < 8:
            error = self._process.stderr.read().decode(errors="replace").strip()
            self.close()
            raise RuntimeError(f"the eSpeak NG worker failed to {what}: {error[-2000:]}")
        return int(np.frombuffer(header, "<i8")[0])

    def speak(self, text, voice, rate, pitch, pitch_range):
        request = [text, voice, int(rate), int(pitch), int(pitch_range)]
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()
        count = self._read_header(f"speak {text!r}")
        data = self._process.stdout.read(2 * count)
        return np.frombuffer(data, "<i2").astype(np.int16)

    def close(self):
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=30)
        self._process.stdout.close()
        self._process.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _worker():
    """The worker loop: a JSON request per stdin line, answered on stdout
    by an int64 sample count and the int16 samples (little-endian)."""
    engine = _Espeak()
    out = sys.stdout.buffer
    out.write(np.int64(engine.sample_rate).astype("<i8").tobytes())
    out.flush()
    for line in sys.stdin.buffer:
        text, voice, rate, pitch, pitch_range = json.loads(line)
        samples = engine.speak(text, voice, rate, pitch, pitch_range)
        out.write(np.int64(len(samples)).astype("<i8").tobytes())
        out.write(samples.astype("<i2").tobytes())
        out.flush()


def _room(audio, rng):
    """`audio` through a random small room: the direct sound plus an
    exponentially decaying noise tail (length kept)."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(*_RT60_SECONDS)
    n = max(int(rt60 * SAMPLE_RATE), 2)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)  # -60 dB at rt60
    tail[0] = 0.0
    tail *= math.sqrt(rng.uniform(*_WET) / max(np.sum(tail ** 2), 1e-12))
    tail[0] = 1.0
    return fftconvolve(audio, tail)[: len(audio)]


def _coloured_noise(n, rng):
    """Unit-power noise with a 1/f^alpha spectrum, alpha in [0, 1.5]."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n)
    frequencies[0] = frequencies[1] if n > 1 else 1.0
    spectrum *= frequencies ** (-rng.uniform(0.0, 1.5) / 2)
    noise = np.fft.irfft(spectrum, n)
    return noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)


def _utterance(engine, text, variants, rng):
    """`(int16 audio at 16 kHz, voice)` of `text` with random voice,
    prosody, room and noise drawn from `rng`."""
    from scipy.signal import resample_poly

    voice = f"{rng.choice(ACCENTS)}+{rng.choice(variants)}"
    rate = rng.integers(_RATE[0], _RATE[1] + 1)
    pitch = rng.integers(_PITCH[0], _PITCH[1] + 1)
    pitch_range = rng.integers(_PITCH_RANGE[0], _PITCH_RANGE[1] + 1)
    samples = engine.speak(text, voice, rate, pitch, pitch_range).astype(np.float64)
    gcd = math.gcd(SAMPLE_RATE, engine.sample_rate)
    audio = resample_poly(samples / 32768.0, SAMPLE_RATE // gcd, engine.sample_rate // gcd)
    reverb = rng.random() < _REVERB_PROBABILITY
    if reverb:
        audio = _room(audio, rng)
    snr = rng.uniform(*_SNR_DB)
    power = np.mean(audio ** 2)
    audio = audio + _coloured_noise(len(audio), rng) * math.sqrt(power / 10 ** (snr / 10))
    audio *= _PEAK / max(np.abs(audio).max(), 1e-12)
    return np.round(audio * 32767).astype(np.int16), voice


def _parameters(pretrain_minutes, labelled_minutes, test_minutes, seed):
    try:
        from importlib.metadata import version

        espeak_version = version("espeakng-loader")
    except Exception:  # noqa: BLE001 - only part of the cache key
        espeak_version = "unknown"
    return {
        "format": _FORMAT_VERSION,
        "espeakng_loader": espeak_version,
        "pretrain_minutes": float(pretrain_minutes),
        "labelled_minutes": float(labelled_minutes),
        "test_minutes": float(test_minutes),
        "seed": int(seed),
    }


def default_cache_dir() -> pathlib.Path:
    """`$KERAS_SSL_CACHE/speech` if that variable is set, else
    `~/.cache/keras_ssl/speech`."""
    root = os.environ.get("KERAS_SSL_CACHE")
    base = pathlib.Path(root).expanduser() if root else pathlib.Path.home() / ".cache" / "keras_ssl"
    return base / "speech"


def load_spoken_corpus(
    pretrain_minutes: float = 60.0,
    labelled_minutes: float = 10.0,
    test_minutes: float = 5.0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    cache: bool = True,
    verbose: int = 1,
) -> SpeechCorpus:
    """The embedded spoken corpus (see the module docstring), synthesised on
    the first call and loaded from the on-disk cache afterwards.

    Each split holds utterances until it reaches its requested duration (so
    it is at most one utterance longer). `labelled` takes the first
    sentences of a seeded shuffle of the training sentences and `pretrain`
    the following ones, so changing `pretrain_minutes` leaves `labelled`
    and `test` unchanged. The training text has about 2.5 hours of speech
    worth of sentences (~27 k words; the held-out text ~20 minutes); beyond
    that, sentences are reused, spoken anew.

    Args:
        pretrain_minutes: duration of the unlabelled `pretrain` split.
        labelled_minutes: duration of the labelled `labelled` split.
        test_minutes: duration of the `test` split.
        seed: seed of the sentence order, voices, prosody, rooms and noise.
        cache_dir: where the `.npz` cache lives; default
            `default_cache_dir()` (`$KERAS_SSL_CACHE/speech` or
            `~/.cache/keras_ssl/speech`).
        cache: False to neither read nor write the cache.
        verbose: 1 shows a progress bar while synthesising, 0 is silent.

    Returns:
        A `SpeechCorpus` of 16 kHz float32 audio.

    Raises:
        ValueError: a duration that is negative (or zero for `pretrain` or
            `test`), or a negative seed.
        ImportError: espeakng-loader is not installed (the `[speech]` extra).

    Example:

    >>> corpus = load_spoken_corpus(0.2, 0.1, 0.1, verbose=0)
    >>> corpus.test.variants.isdisjoint(corpus.pretrain.variants)
    True
    """
    for name, value, positive in (("pretrain_minutes", pretrain_minutes, True),
                                  ("labelled_minutes", labelled_minutes, False),
                                  ("test_minutes", test_minutes, True)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
            value > 0 if positive else value >= 0
        ) or not math.isfinite(value):
            bound = "positive" if positive else "non-negative"
            raise ValueError(f"{name} must be a {bound} number of minutes, got {value!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    parameters = _parameters(pretrain_minutes, labelled_minutes, test_minutes, seed)
    key = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:16]
    path = None
    if cache:
        directory = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else (
            default_cache_dir())
        path = directory / f"spoken_corpus-{key}.npz"
        if path.is_file():
            try:
                return _load(path)
            except Exception as error:  # noqa: BLE001 - a broken cache is rebuilt
                warnings.warn(f"rebuilding the unreadable speech cache {path}: {error}")
    splits = _synthesise(parameters, verbose)
    if path is not None:
        _save(path, splits, parameters)
    return _corpus(splits, path)


def _synthesise(parameters, verbose):
    """`{split: (int16 audio list, transcripts, voices)}`."""
    from keras_ssl._optional import require
    from keras_ssl.datasets.text_corpus import load_python_docs

    require("espeakng_loader", "speech",
            "synthesising the embedded spoken corpus (eSpeak NG and its voices)", load=False)

    text = load_python_docs()
    train_pool = sentence_chunks(p for doc in text.train_paragraphs for p in doc)
    seen = set(train_pool)
    test_pool = [c for c in sentence_chunks(p for doc in text.test_paragraphs for p in doc)
                 if c not in seen]
    seed = parameters["seed"]
    targets = {name: parameters[f"{name}_minutes"] * 60.0 for name in _SPLITS}
    progress = None
    if verbose:
        import keras

        print(f"Synthesising the spoken corpus ({sum(targets.values()) / 60:.1f} min of "
              "speech, once; then cached)")
        progress = keras.utils.Progbar(int(math.ceil(sum(targets.values()))), unit_name="s")

    def sentences(pool, stream):
        """The pool's sentences in seeded shuffled orders, endlessly."""
        rng = np.random.default_rng([seed, 0, stream])
        while True:
            yield from (pool[i] for i in rng.permutation(len(pool)))

    train_sentences = sentences(train_pool, 0)
    test_sentences = sentences(test_pool, 1)
    done = 0.0
    splits = {}
    # `labelled` first: it takes the first training sentences.
    for name in ("labelled", "pretrain", "test"):
        code = _SPLITS.index(name)
        pool = test_sentences if name == "test" else train_sentences
        variants = TEST_VARIANTS if name == "test" else TRAIN_VARIANTS
        audio, transcripts, voices = [], [], []
        seconds = 0.0
        # A fresh eSpeak per split: the split's calls replay identically.
        with _EspeakProcess() as engine:
            while seconds < targets[name]:
                transcript = next(pool)
                rng = np.random.default_rng([seed, code + 1, len(audio)])
                samples, voice = _utterance(engine, transcript, variants, rng)
                audio.append(samples)
                transcripts.append(transcript)
                voices.append(voice)
                seconds += len(samples) / SAMPLE_RATE
                if progress is not None:
                    progress.update(int(min(done + seconds, progress.target)))
        done += targets[name]
        splits[name] = (audio, transcripts, voices)
    if progress is not None:
        progress.update(progress.target, finalize=True)
    return splits


def _save(path, splits, parameters):
    arrays = {"parameters": np.array(json.dumps(parameters, sort_keys=True))}
    for name, (audio, transcripts, voices) in splits.items():
        lengths = np.array([len(x) for x in audio], np.int64)
        arrays[f"{name}_audio"] = (np.concatenate(audio) if audio
                                   else np.zeros(0, np.int16))
        arrays[f"{name}_offsets"] = np.concatenate([[0], np.cumsum(lengths)])
        arrays[f"{name}_transcripts"] = np.array(transcripts, dtype=np.str_)
        arrays[f"{name}_voices"] = np.array(voices, dtype=np.str_)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{time.time_ns()}.tmp")
    try:
        with open(temporary, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _load(path):
    splits = {}
    with np.load(path, allow_pickle=False) as data:
        for name in _SPLITS:
            audio = data[f"{name}_audio"]
            offsets = data[f"{name}_offsets"]
            splits[name] = (
                [audio[a:b] for a, b in zip(offsets[:-1], offsets[1:])],
                [str(t) for t in data[f"{name}_transcripts"]],
                [str(v) for v in data[f"{name}_voices"]],
            )
    return _corpus(splits, path)


def _corpus(splits, path):
    def split(name):
        audio, transcripts, voices = splits[name]
        floats = [np.asarray(x, np.float32) / np.float32(32768.0) for x in audio]
        return SpeechSplit(floats, list(transcripts), list(voices), SAMPLE_RATE)

    return SpeechCorpus(split("pretrain"), split("labelled"), split("test"), SAMPLE_RATE,
                        None if path is None else str(path))


if __name__ == "__main__" and sys.argv[1:] == ["--espeak-worker"]:
    _worker()
