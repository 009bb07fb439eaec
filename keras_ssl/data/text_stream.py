"""Streaming text: files, folders and TFDS text read from disk by `tf.data`,
tokenised, packed and masked in the pipeline, never held in memory whole.

The embedded corpus is small and lives in memory (`keras_ssl.datasets.
text_corpus.TextCorpus`); a real corpus is a folder of files far larger than
memory. `stream_text_files` and `stream_tfds_text` give a `TextStream`:

- **Documents are paragraphs**, as in the in-memory corpus: files are read
  line by line (`tf.data.TextLineDataset`), consecutive non-blank lines are
  joined (a paragraph ends at a blank line, or once it holds
  `max_paragraph_chars` characters, so one file without blank lines is
  still read in bounded pieces), and the rules of
  `text_corpus.split_paragraphs` apply: heading underlines dropped and,
  unless `keep_code`, indented blocks (code, grammar) and short headings
  too. A TFDS example is split into paragraphs the same way.
  `unit="line"` makes every non-blank line a document instead (corpora
  stored one document per line).
- **The held-out part** is defined by the text alone: a paragraph is held
  out when the hash of its text (`tf.strings.to_hash_bucket_fast`,
  FarmHash) falls in the first `test_fraction` of the buckets. Nothing is
  read to decide it, a paragraph repeated anywhere in the corpus is on
  the same side every time, and the split is the same in every run and
  on every machine. Evaluation reads its first `max_test_documents` held-
  out paragraphs.
- **The tokenizer's sample**: WordPiece, BPE and SentencePiece training
  need text in memory. `TextStream.sample_texts()` reads the first
  `tokenizer_sample_bytes` (16 MiB by default) of training paragraphs in
  the seeded order of the training stream (files shuffled, eight read in
  turn), so the sample comes from many files, not only the first one.
- **Order**: the training stream is endless and the same from every new
  iterator for a given seed (what `ResumableBackup`'s `dataset.skip(step)`
  needs to resume exactly): each pass shuffles the files with the
  stateless seed `(seed, pass)`, reads eight at a time in turn, and a
  seeded shuffle buffer of paragraphs (`shuffle_buffer`) mixes them; TFDS
  is read in its stored order with the same buffer.

The pipelines `causal_lm_stream` (GPT), `masked_lm_stream` (BERT pairs with
NSP, RoBERTa FULL-SENTENCES) and `span_corruption_stream` (T5) take a
`tf.data.Dataset` of documents (a `TextStream`'s `dataset()`, or any) and
give batches of the same structure as their in-memory counterparts
(`causal_lm_dataset`, `masked_lm_dataset`, `span_corruption_dataset`); the
tokenizer runs inside `tf.data` (keras-hub tokenizers are TensorFlow ops).
What differs from the in-memory pipelines, and why:

- GPT: the same packing (rows overlapping by one token, `<|endoftext|>`
  before each document); an endless stream has no last, padded row.
- RoBERTa: the same FULL-SENTENCES packing. Sentences are split by the
  rule of `text_corpus.split_sentences` written in RE2 (TensorFlow's
  regular expressions).
- BERT: pairs are made per document as in `nsp_pairs` (its NumPy code, in
  a `tf.numpy_function`: the one Python step of these pipelines), but a
  NotNext segment B comes from the previous document of the (shuffled)
  stream, not from a random document of the whole corpus, which a stream
  cannot reach. Static masking (`dynamic_masking=False`) seeds each row's
  mask by a hash of its tokens, so the same row gets the same mask every
  pass.
- T5: the same rows (`span_corruption_rows`); the corruption is T5's own
  TensorFlow code (`random_spans_noise_mask_tf`, `spans_to_sentinels_tf`:
  the same masks' statistics and sentinels as the NumPy functions), each
  row's noise drawn from `(seed, row number)`, new in every pass.

A TensorFlow limitation to know: a Python process may hang at exit while
an iterator over a pipeline with a Python step (BERT's pairs) is still
alive; let iterators go out of scope before exiting (`fit` does).

Example:

```python
from keras_ssl.data.text_stream import stream_text_files, causal_lm_stream
from keras_ssl.data.tokenizers import train_byte_bpe

stream = stream_text_files("corpus/")         # .txt and .md files, recursively
tokenizer = train_byte_bpe(stream.sample_texts(), 8000, kind="gpt2")
data = causal_lm_stream(stream.dataset(repeat=True, shuffle=True), tokenizer,
                        sequence_length=256, batch_size=32)
```

`keras_ssl.language.pretrain_language(stream, config)` does all of it.
"""

from __future__ import annotations

import pathlib
import weakref

import numpy as np

#: The files `stream_text_files` reads in a folder (recursively).
TEXT_PATTERNS = ("*.txt", "*.md")
#: Unit of a streamed document.
UNITS = ("paragraph", "line")
#: Default held-out fraction of the paragraphs, and how many of them an
#: evaluation reads.
DEFAULT_TEST_FRACTION = 0.05
DEFAULT_MAX_TEST_DOCUMENTS = 2000
#: Default size of the tokenizer's training sample.
DEFAULT_TOKENIZER_SAMPLE_BYTES = 16 * 2**20
#: Paragraphs in the training stream's shuffle buffer, and rows in the
#: pipelines' shuffle buffer.
DEFAULT_SHUFFLE_BUFFER = 10_000
DEFAULT_ROW_SHUFFLE_BUFFER = 2_000
#: Files read in turn by a shuffled stream.
CYCLE_LENGTH = 8

_HASH_BUCKETS = 1_000_000
# `text_corpus._UNDERLINE` without its back-reference (RE2 has none).
_UNDERLINE = r"\s*(\*{3,}|={3,}|-{3,}|~{3,}|\^{3,}|\"{3,}|'{3,}|#{3,}|\+{3,})\s*"
# `text_corpus._SENTENCE_END` and `_ABBREVIATIONS`, without look-arounds.
_ABBREVIATION = r"(e\.g|i\.e|etc|cf|vs|Mr|Dr|No)\."
_SENTENCE_END = r"([.!?])[\"')\]]*\s+([A-Z\"'(\[])"
_GUARD, _CUT = "\x1f", "\x1e"  # placeholders never in text


def _plain(function):
    """`function` for `tf.data` without AutoGraph: these are plain TensorFlow
    ops (their Python `if`s test Python values), and converting them, the
    tokenizer's code included, is most of a pipeline's build time."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(function)


# --- paragraphs in TensorFlow -------------------------------------------------
def _paragraphs_of_blocks(blocks, keep_code):
    """The paragraphs of blank-line-free `blocks` (1-D strings of lines
    joined by newlines), as `text_corpus.split_paragraphs` makes them; the
    dropped ones (empty, code, headings) left out."""
    import tensorflow as tf

    lines = tf.strings.split(tf.strings.regex_replace(blocks, "\r", ""), "\n")
    keep = tf.logical_not(
        tf.strings.regex_full_match(lines, _UNDERLINE)
        | tf.strings.regex_full_match(lines, r"\s*")
    )
    lines = tf.ragged.boolean_mask(lines, keep)
    count = lines.row_lengths()
    text = tf.strings.reduce_join(tf.strings.strip(lines), axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    wanted = count > 0
    if not keep_code:
        indented = tf.reduce_all(
            tf.strings.regex_full_match(lines, r"[ \t].*"), axis=-1
        )
        words = tf.strings.split(text).row_lengths()
        heading = (
            (count == 1) & (words <= 8)
            & tf.logical_not(tf.strings.regex_full_match(text, r".*[.:?!]"))
        )
        wanted &= tf.logical_not(indented) & tf.logical_not(heading)
    return tf.boolean_mask(text, wanted)


def paragraphs_of_text(text, keep_code=True):
    """The paragraphs of one document string (a TFDS example), in TF: a 1-D
    string tensor, by the rules of `text_corpus.split_paragraphs`."""
    import tensorflow as tf

    text = tf.strings.regex_replace(text, "\r\n", "\n")
    blocks = tf.strings.split(tf.strings.regex_replace(text, r"\n\s*\n", _CUT), _CUT)
    return _paragraphs_of_blocks(blocks, keep_code)


def _lines_of_text(text):
    import tensorflow as tf

    lines = tf.strings.split(tf.strings.regex_replace(text, "\r", ""), "\n")
    lines = tf.strings.strip(tf.strings.regex_replace(lines, r"\s+", " "))
    return tf.boolean_mask(lines, tf.strings.length(lines) > 0)


def _file_paragraphs(path, unit, keep_code, max_chars):
    """A dataset of the paragraphs (or lines) of one text file, read line by
    line; invalid UTF-8 is replaced (U+FFFD)."""
    import tensorflow as tf

    lines = tf.data.TextLineDataset(path).map(_plain(
        lambda line: tf.strings.unicode_transcode(
            line, "UTF-8", "UTF-8", errors="replace"
        )
    ))
    if unit == "line":
        return lines.map(_plain(_lines_of_text)).unbatch()
    # A last blank line flushes the file's last block.
    lines = lines.concatenate(tf.data.Dataset.from_tensors(tf.constant("")))

    def step(block, line):
        blank = tf.strings.regex_full_match(line, r"\s*")
        grown = tf.where(tf.strings.length(block) > 0, block + "\n" + line, line)
        block = tf.where(blank, block, grown)
        emit = blank | (tf.strings.length(block) >= max_chars)
        return tf.where(emit, tf.constant(""), block), (
            emit & (tf.strings.length(block) > 0), block
        )

    blocks = lines.scan(tf.constant(""), _plain(step))
    blocks = blocks.filter(_plain(lambda emit, block: emit)).map(
        _plain(lambda emit, block: block))
    return blocks.map(_plain(
        lambda block: _paragraphs_of_blocks(block[None], keep_code)
    )).unbatch()


def _held_out(text, test_fraction):
    import tensorflow as tf

    bucket = tf.strings.to_hash_bucket_fast(text, _HASH_BUCKETS)
    return bucket < int(round(float(test_fraction) * _HASH_BUCKETS))


def _epoch_order(count, seed, epoch):
    """A stateless permutation of `range(count)` for pass `epoch`."""
    import tensorflow as tf

    noise = tf.random.stateless_uniform(
        [count], tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    )
    return tf.argsort(noise)


# --- the stream ---------------------------------------------------------------
class TextStream:
    """Text read from disk as a `tf.data` stream of paragraphs, with a
    held-out part. Made by `stream_text_files` and `stream_tfds_text`; see
    the module docstring.

    Attributes:
        name: what it reads (a path, or `tfds:NAME`).
        files: the text files (empty for TFDS).
        test_fraction: the held-out fraction of the paragraphs.
        max_test_documents: how many held-out paragraphs an evaluation
            reads.
        tokenizer_sample_bytes: the size of `sample_texts()`.
        shuffle_buffer: paragraphs in the training stream's shuffle buffer.
        row_shuffle_buffer: packed rows in the training pipelines' shuffle
            buffer (`keras_ssl.language.language_dataset`).
    """

    def __init__(self, name, passes, files=(), test_fraction=DEFAULT_TEST_FRACTION,
                 max_test_documents=DEFAULT_MAX_TEST_DOCUMENTS,
                 tokenizer_sample_bytes=DEFAULT_TOKENIZER_SAMPLE_BYTES,
                 shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
                 row_shuffle_buffer=DEFAULT_ROW_SHUFFLE_BUFFER, test_pass=None):
        if not 0.0 <= float(test_fraction) < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        for value, what in ((max_test_documents, "max_test_documents"),
                            (tokenizer_sample_bytes, "tokenizer_sample_bytes")):
            if int(value) < 1:
                raise ValueError(f"{what} must be positive, got {value}")
        self.name = name
        self.files = list(files)
        self.test_fraction = float(test_fraction)
        self.max_test_documents = int(max_test_documents)
        self.tokenizer_sample_bytes = int(tokenizer_sample_bytes)
        self.shuffle_buffer = int(shuffle_buffer)
        self.row_shuffle_buffer = int(row_shuffle_buffer)
        # passes(shuffle, seed, epoch) -> a dataset of paragraphs, one pass;
        # test_pass() -> the held-out paragraphs when they are another split.
        self._passes = passes
        self._test_pass = test_pass

    def dataset(self, split="train", repeat=False, shuffle=False, seed=0):
        """The paragraphs of `split` ("train" or "test") as a `tf.data.Dataset`
        of scalar strings.

        Args:
            split: "train" (the paragraphs not held out) or "test" (the
                held-out ones; at most `max_test_documents`, never
                repeated nor shuffled).
            repeat: pass over the data forever.
            shuffle: shuffle the files in each pass (seeded by `(seed,
                pass)`), read `CYCLE_LENGTH` in turn, and mix the
                paragraphs in a seeded buffer of `shuffle_buffer`.
            seed: of the shuffling. Equal seeds give equal streams, from
                every new iterator.
        """
        import tensorflow as tf

        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if split == "test":
            if self._test_pass is not None:
                data = self._test_pass()
            else:
                data = self._passes(False, seed, tf.constant(0, tf.int64))
                data = data.filter(_plain(lambda t: _held_out(t, self.test_fraction)))
            return data.take(self.max_test_documents)
        epochs = tf.data.Dataset.range(2**62 if repeat else 1)
        data = epochs.flat_map(_plain(lambda epoch: self._passes(shuffle, seed, epoch)))
        if self._test_pass is None and self.test_fraction > 0:
            data = data.filter(_plain(
                lambda t: tf.logical_not(_held_out(t, self.test_fraction))
            ))
        if shuffle and self.shuffle_buffer > 1:
            data = data.shuffle(self.shuffle_buffer, seed=seed,
                                reshuffle_each_iteration=False)
        return data

    def sample_texts(self, max_bytes=None, seed=0):
        """The tokenizer's training text: the first `max_bytes` (default
        `tokenizer_sample_bytes`) of training paragraphs, in the seeded
        order of a shuffled pass, as a list of strings."""
        import tensorflow as tf

        budget = int(max_bytes or self.tokenizer_sample_bytes)
        data = tf.data.Dataset.range(1).flat_map(_plain(
            lambda epoch: self._passes(True, seed, epoch)
        ))
        if self._test_pass is None and self.test_fraction > 0:
            data = data.filter(_plain(
                lambda t: tf.logical_not(_held_out(t, self.test_fraction))
            ))
        texts, size = [], 0
        for batch in data.batch(256).as_numpy_iterator():
            for value in batch:
                texts.append(value.decode("utf-8", errors="replace"))
                size += len(value)
                if size >= budget:
                    return texts
        if not texts:
            raise ValueError(f"{self.name} has no text (no training paragraphs)")
        return texts

    def test_texts(self):
        """The held-out paragraphs an evaluation reads, as a list."""
        return [t.decode("utf-8", errors="replace")
                for t in self.dataset("test").as_numpy_iterator()]

    def __repr__(self):
        files = f"{len(self.files)} files, " if self.files else ""
        return (f"TextStream({self.name!r}, {files}{self.test_fraction:.0%} "
                "held out)")


def is_text_stream(data):
    """Whether `data` is streamed text: a `TextStream` or a `tf.data.Dataset`."""
    if isinstance(data, TextStream):
        return True
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(data, tf.data.Dataset)


def _text_files(path, patterns):
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        files = sorted({p for pattern in patterns for p in path.rglob(pattern)
                        if p.is_file()})
        if not files:
            raise FileNotFoundError(
                f"no {' or '.join(patterns)} files under {path}")
        return files
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"no such text file or folder: {path}")


def stream_text_files(path, patterns=TEXT_PATTERNS, unit="paragraph",
                      keep_code=False, test_fraction=DEFAULT_TEST_FRACTION,
                      max_test_documents=DEFAULT_MAX_TEST_DOCUMENTS,
                      tokenizer_sample_bytes=DEFAULT_TOKENIZER_SAMPLE_BYTES,
                      shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
                      row_shuffle_buffer=DEFAULT_ROW_SHUFFLE_BUFFER,
                      max_paragraph_chars=20_000):
    """A `TextStream` of a UTF-8 text file or a folder of them (searched
    recursively for `patterns`; only the list of file names is held).

    Args:
        path: a file or a folder.
        patterns: the file names read in a folder (default `.txt` and
            `.md`).
        unit: "paragraph" (blank-line separated, wrapped lines joined; the
            in-memory corpus' unit) or "line" (one document per line).
        keep_code: keep indented blocks and short headings.
        test_fraction: the held-out fraction (by hash of the text).
        max_test_documents: held-out paragraphs an evaluation reads.
        tokenizer_sample_bytes: the size of `sample_texts()`.
        shuffle_buffer: paragraphs in the training stream's shuffle buffer.
        row_shuffle_buffer: packed rows in the training pipelines' buffer.
        max_paragraph_chars: a paragraph is cut after about this many
            characters (bounded memory for files without blank lines).

    Raises:
        FileNotFoundError: no such path, or a folder without matching files.
        ValueError: only empty files, or bad arguments.

    Example:

    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("First paragraph,\\nwrapped.\\n\\nSecond one.\\n")
    >>> stream = stream_text_files(folder, test_fraction=0.0)
    >>> [t.decode() for t in stream.dataset().as_numpy_iterator()]
    ['First paragraph, wrapped.', 'Second one.']
    """
    import tensorflow as tf

    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if int(max_paragraph_chars) < 1:
        raise ValueError(f"max_paragraph_chars must be positive, got {max_paragraph_chars}")
    files = _text_files(path, patterns)
    if not any(f.stat().st_size for f in files):
        raise ValueError(f"{path}: every file is empty")
    names = tf.constant([str(f) for f in files])
    count = len(files)

    def passes(shuffle, seed, epoch):
        order = names
        if shuffle and count > 1:
            order = tf.gather(names, _epoch_order(count, seed, epoch))
        cycle = min(CYCLE_LENGTH, count) if shuffle else 1
        parallel = dict(num_parallel_calls=cycle, deterministic=True) if cycle > 1 else {}
        return tf.data.Dataset.from_tensor_slices(order).interleave(
            _plain(lambda f: _file_paragraphs(f, unit, keep_code,
                                              int(max_paragraph_chars))),
            cycle_length=cycle, block_length=1, **parallel,
        )

    return TextStream(str(path), passes, files, test_fraction, max_test_documents,
                      tokenizer_sample_bytes, shuffle_buffer, row_shuffle_buffer)


def stream_tfds_text(name, data_dir=None, split="train", text_key="text",
                     unit="paragraph", keep_code=True, test_split=None,
                     test_fraction=DEFAULT_TEST_FRACTION,
                     max_test_documents=DEFAULT_MAX_TEST_DOCUMENTS,
                     tokenizer_sample_bytes=DEFAULT_TOKENIZER_SAMPLE_BYTES,
                     shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
                     row_shuffle_buffer=DEFAULT_ROW_SHUFFLE_BUFFER, max_examples=None):
    """A `TextStream` of a TFDS text dataset prepared in a local `data_dir`
    (nothing is downloaded), read with `builder.as_dataset`.

    Args:
        name: the TFDS name, e.g. "imdb_reviews" or "wikipedia/20230601.en".
        data_dir: the local TFDS data directory (None: TFDS' default).
        split: the split to train on.
        text_key: the feature that holds the text.
        unit: "paragraph" (each example split into paragraphs, as
            `load_tfds_text`) or "line".
        keep_code: keep indented blocks and short headings (as
            `load_tfds_text`, True).
        test_split: a split to hold out instead (e.g. "test"); None holds
            out `test_fraction` of `split`'s paragraphs by hash.
        max_examples: read at most this many examples of each split.
        test_fraction, max_test_documents, tokenizer_sample_bytes,
            shuffle_buffer, row_shuffle_buffer: as `stream_text_files`.

    Raises:
        ValueError: a dataset neither registered nor prepared in
            `data_dir`, or without the feature `text_key`.
    """
    import tensorflow as tf

    from keras_ssl.data.images import tfds_builder, tfds_split

    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    builder, where = tfds_builder(name, data_dir)
    features = builder.info.features
    if text_key not in features:
        raise ValueError(
            f"{name} has no feature {text_key!r}; it has {sorted(features)}: "
            "pass text_key="
        )

    def read(which):
        data = tfds_split(builder, name, where, which, max_examples)
        to_text = _lines_of_text if unit == "line" else (
            lambda t: paragraphs_of_text(t, keep_code))
        return data.map(
            _plain(lambda example: to_text(tf.strings.unicode_transcode(
                example[text_key], "UTF-8", "UTF-8", errors="replace"))),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        ).unbatch()

    train = read(split)  # checks that the split is prepared
    test_pass = None
    if test_split is not None:
        read(test_split)
        test_pass = lambda: read(test_split)  # noqa: E731
        test_fraction = 0.0

    def passes(shuffle, seed, epoch):
        return train

    return TextStream(f"tfds:{name}", passes, (), test_fraction, max_test_documents,
                      tokenizer_sample_bytes, shuffle_buffer, row_shuffle_buffer,
                      test_pass=test_pass)


def documents_dataset(documents, split="train", repeat=False, shuffle=False, seed=0):
    """`documents` (a `TextStream`, a `tf.data.Dataset` of strings, or a list
    of strings) as a `tf.data.Dataset` of strings."""
    import tensorflow as tf

    if isinstance(documents, TextStream):
        return documents.dataset(split, repeat=repeat, shuffle=shuffle, seed=seed)
    if not isinstance(documents, tf.data.Dataset):
        from keras_ssl.data.tokenizers import check_texts

        documents = tf.data.Dataset.from_tensor_slices(
            check_texts(documents, "documents_dataset"))
    if repeat:
        documents = documents.repeat()
    return documents


# --- sentences and tokens in TensorFlow -----------------------------------------
def split_sentences_tf(text):
    """The sentences of a paragraph (a scalar string tensor) as a 1-D string
    tensor: `text_corpus.split_sentences`' rule (a sentence ends at `.`, `!`
    or `?` before whitespace and a capital, a quote or a bracket, not after
    a common abbreviation) in RE2."""
    import tensorflow as tf

    guarded = tf.strings.regex_replace(text, _ABBREVIATION, r"\1" + _GUARD)
    cut = tf.strings.regex_replace(guarded, _SENTENCE_END, r"\1" + _CUT + r"\2")
    pieces = tf.strings.split(cut, _CUT)
    pieces = tf.strings.strip(tf.strings.regex_replace(pieces, _GUARD, "."))
    return tf.boolean_mask(pieces, tf.strings.length(pieces) > 0)


def _ids(tokenized):
    """Token ids as int32 (a tokenizer may return a ragged or dense tensor)."""
    import tensorflow as tf

    return tf.cast(tokenized, tf.int32)


_TOKENIZE_FUNCTIONS = weakref.WeakKeyDictionary()


def tokenize_function(tokenizer):
    """`tokenizer` on a 1-D string tensor → ragged int32 ids, as one
    `tf.function` traced once per tokenizer: every pipeline that tokenises
    with it reuses the graph (keras-hub's byte-level BPE takes seconds to
    trace)."""
    import tensorflow as tf

    try:
        return _TOKENIZE_FUNCTIONS[tokenizer]
    except (KeyError, TypeError):
        pass

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(texts):
        ids = tokenizer(texts)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        return _ids(ids)

    try:
        _TOKENIZE_FUNCTIONS[tokenizer] = tokenize
    except TypeError:  # not weakly referable: traced per pipeline
        pass
    return tokenize


def _tokenize_documents(documents, tokenizer, batch=64):
    """A dataset of 1-D int32 token ids, one per document."""
    import tensorflow as tf

    tokenize = tokenize_function(tokenizer)
    return documents.batch(batch).map(
        _plain(tokenize), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).unbatch()


def _tokenize_sentences(documents, tokenizer):
    """A dataset of per-document ragged `[sentences, None]` int32 ids
    (documents without tokens left out)."""
    import tensorflow as tf

    tokenize_sentences = tokenize_function(tokenizer)

    def tokenize(text):
        ids = tokenize_sentences(split_sentences_tf(text))
        return tf.ragged.boolean_mask(ids, ids.row_lengths() > 0)

    data = documents.map(_plain(tokenize), num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=True)
    return data.filter(_plain(lambda ids: ids.nrows() > 0))


def _with_flush(data, empty):
    """`data`'s elements marked `False`, then one `(empty, True)`: the
    packers' signal that a finite stream ended."""
    import tensorflow as tf

    flush = tf.data.Dataset.from_tensors((empty, tf.constant(True)))
    return data.map(_plain(lambda x: (x, tf.constant(False)))).concatenate(flush)


def _shuffle_rows(rows, shuffle_buffer, seed):
    if shuffle_buffer and int(shuffle_buffer) > 1:
        rows = rows.shuffle(int(shuffle_buffer), seed=seed,
                            reshuffle_each_iteration=False)
    return rows


def _check_batch(batch_size):
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _pack_stride(ids, length, stride, separator, pad_id):
    """Rows of `length` tokens every `stride` tokens over a stream of
    documents (each preceded by `separator` when given), in a `scan`: the
    full rows as they fill, and the last partial one (padded) when the
    stream ends. A dataset of `(token_ids, padding_mask)` int32 rows."""
    import tensorflow as tf

    prefix = tf.constant([] if separator is None else [int(separator)], tf.int32)

    def step(buffer, element):
        doc, flush = element
        stream = tf.cond(flush, lambda: buffer,
                         lambda: tf.concat([buffer, prefix, doc], 0))
        size = tf.shape(stream)[0]
        full = tf.maximum(size - (length - stride), 0) // stride
        starts = tf.range(full) * stride
        rows = tf.gather(stream, starts[:, None] + tf.range(length)[None, :])
        rest = stream[full * stride:]
        masks = tf.ones_like(rows)
        # A finite stream's tail: one padded row if it holds a new token.
        tail = flush & (tf.shape(rest)[0] > length - stride)
        padded = tf.pad(rest, [[0, length - tf.shape(rest)[0]]],
                        constant_values=pad_id)[None, :length]
        tail_mask = tf.sequence_mask(tf.shape(rest)[0], length, tf.int32)[None]
        rows = tf.cond(tail, lambda: tf.concat([rows, padded], 0), lambda: rows)
        masks = tf.cond(tail, lambda: tf.concat([masks, tail_mask], 0),
                        lambda: masks)
        return rest, (rows, masks)

    packed = _with_flush(ids, tf.zeros([0], tf.int32)).scan(
        tf.zeros([0], tf.int32), _plain(step))
    return packed.unbatch()


# --- GPT ------------------------------------------------------------------------
def causal_lm_stream(documents, tokenizer, sequence_length, batch_size, seed=0,
                     shuffle_buffer=DEFAULT_ROW_SHUFFLE_BUFFER,
                     drop_remainder=True):
    """`causal_lm_dataset(..., packing=True)` over a stream: batches of
    `{"token_ids", "padding_mask"}` (int32 `(B, L)`).

    Args:
        documents: a `tf.data.Dataset` of strings (endless for training).
        tokenizer: a keras-hub `GPT2Tokenizer`.
        sequence_length, batch_size: rows of `L` tokens overlapping by one.
        seed, shuffle_buffer: a seeded buffer of rows (0: keep the order).
        drop_remainder: drop a last smaller batch.
    """
    import tensorflow as tf

    from keras_ssl.data.causal_lm import check_tokenizer

    check_tokenizer(tokenizer, "causal_lm_stream")
    length = int(sequence_length)
    if length < 2:
        raise ValueError(
            f"sequence_length must be at least 2 (an input and its next-token "
            f"target), got {sequence_length}.")
    rows = _pack_stride(_tokenize_documents(documents, tokenizer), length, length - 1,
                        int(tokenizer.end_token_id), int(tokenizer.pad_token_id))
    rows = _shuffle_rows(rows, shuffle_buffer, seed).map(
        _plain(lambda ids, mask: {"token_ids": ids, "padding_mask": mask}))
    data = rows.batch(_check_batch(batch_size), drop_remainder=drop_remainder)
    return data.prefetch(tf.data.AUTOTUNE)


# --- BERT and RoBERTa ----------------------------------------------------------
def _nsp_rows(flat, lengths, partner_flat, partner_lengths, seed, index,
              sequence_length, start, end, random_next_probability):
    """`nsp_pairs`' pairs of one document (NumPy, in a `tf.numpy_function`);
    a NotNext B comes from `partner`."""
    from keras_ssl.data.masked_lm import document_pairs

    def split(values, sizes):
        cuts = np.cumsum(sizes)[:-1]
        return [s.tolist() for s in np.split(values, cuts)] if len(sizes) else []

    sentences = split(flat, lengths)
    partner = split(partner_flat, partner_lengths)
    rng = np.random.default_rng([int(seed), int(index)])
    token_rows, segment_rows, labels = document_pairs(
        sentences, rng, int(sequence_length) - 3, start, end,
        random_next_probability, (lambda rng: partner) if partner else None)
    n, length = len(token_rows), int(sequence_length)
    ids = np.zeros((n, length), np.int32)
    segments = np.zeros((n, length), np.int32)
    mask = np.zeros((n, length), bool)
    for r, (row, seg) in enumerate(zip(token_rows, segment_rows)):
        ids[r, : len(row)] = row
        segments[r, : len(row)] = seg
        mask[r, : len(row)] = True
    return ids, segments, mask, np.asarray(labels, np.int32)


def _pair_rows(sentences, special, sequence_length, seed, random_next_probability):
    """BERT's pairs over a stream of per-document sentence ids: a dataset of
    row dicts (`token_ids`, `segment_ids`, `padding_mask`,
    `next_sentence_labels`)."""
    import tensorflow as tf

    length = int(sequence_length)
    empty = (tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))

    def remember(previous, ids):
        current = (ids.flat_values, ids.row_lengths())
        return current, (current, previous)

    docs = sentences.scan(empty, _plain(remember)).enumerate()
    if random_next_probability > 0:  # the first document has no partner
        docs = docs.filter(_plain(lambda i, d: tf.size(d[1][1]) > 0))

    def pairs(index, docs):
        (flat, lengths), (partner_flat, partner_lengths) = docs
        ids, segments, mask, labels = tf.numpy_function(
            lambda *a: _nsp_rows(*a, length, special["start"], special["end"],
                                 float(random_next_probability)),
            [flat, lengths, partner_flat, partner_lengths,
             tf.constant(int(seed), tf.int64), index],
            [tf.int32, tf.int32, tf.bool, tf.int32], stateful=False,
        )
        ids.set_shape([None, length])
        segments.set_shape([None, length])
        mask.set_shape([None, length])
        labels.set_shape([None])
        return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask,
                "next_sentence_labels": labels}

    return docs.map(_plain(pairs), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True).unbatch()


def _full_sentence_rows(sentences, special, sequence_length):
    """RoBERTa's FULL-SENTENCES rows over a stream of per-document sentence
    ids (`pack_full_sentences` in a `scan`)."""
    import tensorflow as tf

    length = int(sequence_length)
    capacity = length - 2
    end = tf.constant([special["end"]], tf.int32)

    def per_sentence(ids):
        values, splits = ids.flat_values, ids.row_splits
        return tf.data.Dataset.range(ids.nrows()).map(
            _plain(lambda i: (values[splits[i]:splits[i + 1]], i == 0)))

    stream = sentences.flat_map(_plain(per_sentence))
    stream = stream.map(_plain(lambda ids, first: (ids[:capacity], first)))
    flush = tf.data.Dataset.from_tensors(
        ((tf.zeros([0], tf.int32), tf.constant(False)), tf.constant(True)))
    stream = stream.map(
        _plain(lambda ids, first: ((ids, first), tf.constant(False))))
    stream = stream.concatenate(flush)

    def step(row, element):
        (ids, first), done = element
        size = tf.shape(row)[0]
        boundary = first & (size > 0)
        needed = tf.shape(ids)[0] + tf.cast(boundary, tf.int32)
        full = (size > 0) & (size + needed > capacity)
        emit = tf.where(done, size > 0, full)
        joined = tf.cond(boundary, lambda: tf.concat([row, end, ids], 0),
                         lambda: tf.concat([row, ids], 0))
        new = tf.cond(done, lambda: tf.zeros([0], tf.int32),
                      lambda: tf.cond(full, lambda: ids, lambda: joined))
        return new, (emit, row)

    rows = stream.scan(tf.zeros([0], tf.int32), _plain(step))
    rows = rows.filter(_plain(lambda emit, row: emit))

    def pad(emit, row):
        row = tf.concat([[special["start"]], row, [special["end"]]], 0)
        size = tf.shape(row)[0]
        return {
            "token_ids": tf.reshape(tf.pad(row, [[0, length - size]],
                                           constant_values=special["pad"]), [length]),
            "segment_ids": tf.zeros([length], tf.int32),
            "padding_mask": tf.sequence_mask(size, length),
        }

    return rows.map(_plain(pad))


def masked_lm_stream(documents, tokenizer, sequence_length, batch_size,
                     next_sentence_prediction=True, packing="pairs",
                     dynamic_masking=True, mask_rate=0.15,
                     mask_selection_length=None, seed=0,
                     shuffle_buffer=DEFAULT_ROW_SHUFFLE_BUFFER,
                     drop_remainder=True):
    """`masked_lm_dataset` over a stream of documents: batches of the same
    dicts (`token_ids`, `segment_ids`, `padding_mask`, `mask_positions`,
    `mask_ids`, `mask_weights`, and with NSP `next_sentence_labels`).

    Args:
        documents: a `tf.data.Dataset` of strings (endless for training).
        tokenizer: a keras-hub `BertTokenizer` or `RobertaTokenizer`.
        packing: "pairs" (BERT; NotNext segments from the previous
            document) or "full_sentences" (RoBERTa).
        dynamic_masking: a new mask for every row read (seeded by `(seed,
            row number)`); False: the mask is fixed by the row's tokens.
        seed, shuffle_buffer: a seeded buffer of rows (0: keep the order).
        The other arguments are `masked_lm_dataset`'s.
    """
    import tensorflow as tf

    from keras_ssl.data.masked_lm import (
        PACKINGS,
        default_mask_selection_length,
        mask_tokens,
        special_token_ids,
    )

    if packing not in PACKINGS:
        raise ValueError(f"packing must be one of {PACKINGS}, got {packing!r}.")
    if packing == "full_sentences" and next_sentence_prediction:
        raise ValueError(
            "FULL-SENTENCES packing has no sentence pairs to predict: pass "
            "next_sentence_prediction=False (RoBERTa), or packing='pairs'.")
    if not 0.0 < float(mask_rate) < 1.0:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}.")
    special = special_token_ids(tokenizer)
    length = int(sequence_length)
    if length < (5 if packing == "pairs" else 3):
        raise ValueError(f"sequence_length is too short: {sequence_length}.")
    batch_size = _check_batch(batch_size)
    if mask_selection_length is None:
        mask_selection_length = default_mask_selection_length(length, mask_rate)
    sentences = _tokenize_sentences(documents, tokenizer)
    if packing == "pairs":
        rows = _pair_rows(sentences, special, length, seed,
                          0.5 if next_sentence_prediction else 0.0)
        if not next_sentence_prediction:
            rows = rows.map(_plain(lambda r: {k: v for k, v in r.items()
                                              if k != "next_sentence_labels"}))
    else:
        rows = _full_sentence_rows(sentences, special, length)
    rows = _shuffle_rows(rows, shuffle_buffer, seed).enumerate()
    vocabulary_size = int(tokenizer.vocabulary_size())

    def mask(index, row):
        if dynamic_masking:
            key = index
        else:  # the row's tokens fix its mask
            key = tf.strings.to_hash_bucket_fast(
                tf.strings.reduce_join(tf.strings.as_string(row["token_ids"]),
                                       separator=" "), 2**62)
        seed_pair = tf.stack([tf.constant(int(seed), tf.int64), key])
        row = dict(row)
        row.update(mask_tokens(row["token_ids"], seed_pair, vocabulary_size,
                               special["mask"], special["unselectable"],
                               mask_selection_length, mask_rate))
        return row

    data = rows.map(_plain(mask), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.batch(batch_size, drop_remainder=drop_remainder)
    return data.prefetch(tf.data.AUTOTUNE)


# --- T5 -------------------------------------------------------------------------
def random_spans_noise_mask_tf(length, noise_density, mean_span_length, seed):
    """`span_corruption.random_spans_noise_mask` in TensorFlow (T5's own
    `random_spans_noise_mask`), for a (dynamic) scalar `length` and a
    stateless `seed` of shape `(2,)`: a bool `(length,)` mask of
    `round(length · noise_density)` noise tokens in `round(num_noise /
    mean_span_length)` spans, alternating with as many non-noise spans,
    non-noise first."""
    import tensorflow as tf

    original = tf.cast(length, tf.int32)
    if float(noise_density) == 0.0:
        return tf.zeros([original], tf.bool)
    length = tf.maximum(original, 2)
    num_noise = tf.cast(tf.round(tf.cast(length, tf.float32) * float(noise_density)),
                        tf.int32)
    num_noise = tf.clip_by_value(num_noise, 1, length - 1)
    num_spans = tf.cast(tf.round(tf.cast(num_noise, tf.float32)
                                 / float(mean_span_length)), tf.int32)
    num_spans = tf.minimum(tf.maximum(num_spans, 1), length - num_noise)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)

    def segmentation(num_items, num_segments, seed):
        # `num_segments` non-empty segments of `num_items`, uniformly.
        starts = tf.cast(tf.range(num_items - 1) < num_segments - 1, tf.int32)
        order = tf.argsort(tf.random.stateless_uniform([num_items - 1], seed))
        first = tf.pad(tf.gather(starts, order), [[1, 0]])
        segment = tf.cumsum(first)
        return tf.math.unsorted_segment_sum(tf.ones_like(segment), segment, num_segments)

    noise = segmentation(num_noise, num_spans, seeds[0])
    nonnoise = segmentation(length - num_noise, num_spans, seeds[1])
    interleaved = tf.reshape(tf.stack([nonnoise, noise], axis=1), [-1])
    starts = tf.cumsum(interleaved)[:-1]
    indicator = tf.math.unsorted_segment_sum(tf.ones_like(starts), starts, length)
    return tf.equal(tf.cumsum(indicator) % 2, 1)[:original]


def spans_to_sentinels_tf(tokens, mask, sentinel_ids):
    """T5's `noise_span_to_unique_sentinel` in TensorFlow: each run of `mask`
    in `tokens` replaced by the next of `sentinel_ids` (as
    `span_corruption._spans_to_sentinels`)."""
    import tensorflow as tf

    sentinels = tf.constant(list(sentinel_ids), tf.int32)
    previous = tf.concat([[False], mask[:-1]], 0)
    first = mask & tf.logical_not(previous)
    index = tf.clip_by_value(tf.cumsum(tf.cast(first, tf.int32)) - 1, 0,
                             len(sentinel_ids) - 1)
    replaced = tf.where(first, tf.gather(sentinels, index), tokens)
    return tf.boolean_mask(replaced, tf.logical_not(mask & previous))


def span_corruption_stream(documents, tokenizer, inputs_length, targets_length=None,
                           batch_size=32, noise_density=0.15, mean_span_length=3.0,
                           seed=0, shuffle_buffer=DEFAULT_ROW_SHUFFLE_BUFFER,
                           drop_remainder=True):
    """`span_corruption_dataset` over a stream of documents: batches of
    `(x, y, sample_weight)` of the same structure. The documents' tokens are
    concatenated and cut into rows (`span_corruption_rows`) in a `scan`;
    each row's noise is drawn from `(seed, row number)` and the corruption
    made in TensorFlow (`random_spans_noise_mask_tf`,
    `spans_to_sentinels_tf`), without Python in the pipeline.

    Args:
        documents: a `tf.data.Dataset` of strings (endless for training).
        tokenizer: a T5-style keras-hub tokenizer with sentinels.
        seed, shuffle_buffer: a seeded buffer of rows (0: keep the order).
        The other arguments are `span_corruption_dataset`'s.
    """
    import tensorflow as tf

    from keras_ssl.data.span_corruption import (
        _num_noise_and_spans,
        _sentinels,
        _special_ids,
        span_corruption_lengths,
    )

    pad_id, eos_id = _special_ids(tokenizer)
    sentinels = _sentinels(tokenizer)
    tokens_length, needed = span_corruption_lengths(
        inputs_length, noise_density, mean_span_length)
    inputs_length = int(inputs_length)
    targets_length = needed if targets_length is None else int(targets_length)
    if targets_length < needed:
        raise ValueError(
            f"targets_length={targets_length} is too short: rows corrupted to "
            f"inputs_length={inputs_length} have targets of {needed} tokens; "
            f"pass targets_length >= {needed} or None.")
    _, num_spans = _num_noise_and_spans(tokens_length, noise_density, mean_span_length)
    if num_spans > len(sentinels):
        raise ValueError(
            f"span corruption of rows of {tokens_length} tokens makes {num_spans} "
            f"spans, but the tokenizer has only {len(sentinels)} sentinels: "
            "train it with more (`num_sentinels=`) or lower inputs_length.")
    batch_size = _check_batch(batch_size)
    rows = _pack_stride(_tokenize_documents(documents, tokenizer), tokens_length,
                        tokens_length, None, pad_id)
    rows = rows.map(_plain(lambda ids, mask: ids[: tf.reduce_sum(mask)]))
    rows = _shuffle_rows(rows, shuffle_buffer, seed).enumerate()

    def example(index, ids):
        seed_pair = tf.stack([tf.constant(int(seed), tf.int64), index])
        mask = random_spans_noise_mask_tf(tf.size(ids), noise_density,
                                          mean_span_length, seed_pair)
        eos = tf.constant([eos_id], tf.int32)
        inputs = tf.concat([spans_to_sentinels_tf(ids, mask, sentinels), eos], 0)
        targets = tf.concat(
            [spans_to_sentinels_tf(ids, tf.logical_not(mask), sentinels), eos], 0)

        def pad(values, length):
            return tf.reshape(tf.pad(values, [[0, length - tf.size(values)]],
                                     constant_values=pad_id), [length])

        weights = tf.sequence_mask(tf.size(targets), targets_length, tf.int32)
        x = {
            "encoder_token_ids": pad(inputs, inputs_length),
            "encoder_padding_mask": tf.sequence_mask(tf.size(inputs), inputs_length,
                                                     tf.int32),
            # T5 starts decoding from its pad id.
            "decoder_token_ids": pad(tf.concat([[pad_id], targets[:-1]], 0),
                                     targets_length),
            "decoder_padding_mask": weights,
        }
        return x, pad(targets, targets_length), weights

    data = rows.map(_plain(example), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.batch(batch_size, drop_remainder=drop_remainder)
    return data.prefetch(tf.data.AUTOTUNE)
