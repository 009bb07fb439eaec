"""Masked-language-model inputs: BERT's sentence pairs, RoBERTa's
FULL-SENTENCES rows, and seeded 80/10/10 token masking in `tf.data`.

BERT (Devlin et al., 2019) pre-trains on two tasks: "we simply mask some
percentage of the input tokens at random, and then predict those masked
tokens [...] we mask 15% of all WordPiece tokens in each sequence at
random", and "when choosing the sentences A and B for each pre-training
example, 50% of the time B is the actual next sentence that follows A
(labeled as IsNext), and 50% of the time it is a random sentence from the
corpus (labeled as NotNext)". Of the chosen tokens, 80% become `[MASK]`, 10%
a random token and 10% stay unchanged, so that the encoder cannot rely on
`[MASK]` marking the positions it is asked about.

RoBERTa (Liu et al., 2019) keeps the masked LM and changes the data:
FULL-SENTENCES inputs, "packed with full sentences sampled contiguously from
one or more documents, such that the total length is at most 512 tokens.
Inputs may cross document boundaries. When we reach the end of one
document, we begin sampling sentences from the next document and add an
extra separator token between documents. We remove the NSP loss", and
*dynamic* masking: a new mask every time a sequence is fed to the model,
where BERT's data was masked once ("static").

The pieces:

- `tokenize_documents`: documents → per document, per sentence, token ids.
- `nsp_pairs`: BERT's `[CLS] A [SEP] B [SEP]` pairs with `segment_ids` and
  `next_sentence_labels` (NumPy, fixed once from a seed, as BERT's data).
- `pack_full_sentences`: RoBERTa's `<s> ... </s>` rows (NumPy).
- `mask_tokens`: the 80/10/10 masking of a row (TensorFlow, stateless: the
  same seed gives the same mask), with a static number of selections.
- `masked_lm_dataset`: all of it as a `tf.data.Dataset` of dicts, the inputs
  of `keras_ssl.models.MaskedLanguageModel`.

The masking is written with stateless TensorFlow random ops instead of
keras-hub's `MaskedLMMaskGenerator` (whose tensorflow-text selector draws
unseeded): static masking needs the same mask for the same example every
epoch, dynamic masking a reproducible new one, and random replacement
tokens are drawn among the non-special tokens only. The outputs have
`MaskedLMMaskGenerator`'s keys (`token_ids`, `mask_positions`, `mask_ids`,
`mask_weights`).

Example:

```python
from keras_ssl.datasets.text_corpus import load_python_docs
from keras_ssl.data.tokenizers import train_wordpiece
from keras_ssl.data.masked_lm import masked_lm_dataset

corpus = load_python_docs()
tokenizer = train_wordpiece(corpus.documents, vocabulary_size=2000)
bert_data = masked_lm_dataset(corpus.documents, tokenizer, sequence_length=128,
                              batch_size=32)             # MLM + NSP pairs
roberta_data = masked_lm_dataset(corpus.documents, tokenizer, 128, 32,
                                 next_sentence_prediction=False,
                                 packing="full_sentences")
```
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from keras_ssl.data.tokenizers import check_texts, token_id_lists

PACKINGS = ("pairs", "full_sentences")


# --- the tokenizer's special tokens -----------------------------------------
def special_token_ids(tokenizer):
    """The special token ids a masked LM needs, from a keras-hub tokenizer.

    Returns:
        A dict with `start` (`[CLS]` / `<s>`), `end` (`[SEP]` / `</s>`),
        `pad`, `mask` and `unselectable`: every special id (never masked,
        never drawn as a random replacement).

    Raises:
        ValueError: "unknown special tokens" when the tokenizer has no mask
            (or start, end, padding) token, e.g. a `GPT2Tokenizer`.
    """
    def first(*names):
        for name in names:
            value = getattr(tokenizer, name, None)
            if value is not None:
                return int(value)
        return None

    ids = {
        "start": first("cls_token_id", "start_token_id"),
        "end": first("sep_token_id", "end_token_id"),
        "pad": first("pad_token_id"),
        "mask": first("mask_token_id"),
    }
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        raise ValueError(
            f"{type(tokenizer).__name__} has unknown special tokens for a "
            f"masked language model: no {', '.join(missing)} token. Use a "
            "tokenizer with [CLS] [SEP] [PAD] [MASK] (a keras-hub "
            "BertTokenizer, `keras_ssl.data.train_wordpiece`) or <s> </s> "
            "<pad> <mask> (a RobertaTokenizer, `train_byte_bpe(..., "
            "kind='roberta')`)."
        )
    listed = getattr(tokenizer, "special_token_ids", None) or []
    ids["unselectable"] = sorted({int(i) for i in listed} | {
        ids["start"], ids["end"], ids["pad"], ids["mask"]
    })
    return ids


# --- documents → sentences → ids ---------------------------------------------
def tokenize_documents(documents, tokenizer):
    """Token ids of each sentence of each document.

    Sentences come from `keras_ssl.datasets.text_corpus.split_sentences`;
    sentences that tokenize to nothing are dropped.

    Args:
        documents: strings (or a `TextCorpus`, whose `.documents` are used).
        tokenizer: a keras-hub tokenizer.

    Returns:
        A list (documents) of lists (sentences) of lists of int ids.

    Raises:
        ValueError: for an empty corpus or an empty document.
    """
    from keras_ssl.datasets.text_corpus import split_sentences

    documents = check_texts(documents, "masked_lm_dataset")
    per_document = [split_sentences(d) for d in documents]
    flat = [s for sentences in per_document for s in sentences]
    ids = token_id_lists(tokenizer, flat)
    result, start = [], 0
    for i, sentences in enumerate(per_document):
        rows = [r for r in ids[start : start + len(sentences)] if r]
        start += len(sentences)
        if not rows:
            raise ValueError(
                f"Document {i} has no tokens once split into sentences and "
                "tokenized."
            )
        result.append(rows)
    return result


def _over_long(docs, limit, truncate, what):
    """Warns (truncate) or raises for sentences longer than `limit` ids."""
    count, first = 0, None
    for d, sentences in enumerate(docs):
        for s, ids in enumerate(sentences):
            if len(ids) > limit:
                count += 1
                first = first or (d, s, len(ids))
    if not count:
        return
    d, s, n = first
    message = (
        f"{count} sentence(s) are longer than the {limit} tokens that fit in "
        f"{what} (the first: document {d}, sentence {s}, {n} tokens)"
    )
    if not truncate:
        raise ValueError(
            f"{message}. Raise `sequence_length` or pass `truncate=True`."
        )
    warnings.warn(f"{message}; they are truncated.", stacklevel=3)


def _check_length(sequence_length, minimum):
    if int(sequence_length) < minimum:
        raise ValueError(
            f"sequence_length must be at least {minimum} (the special tokens "
            f"and one token of text), got {sequence_length}."
        )
    return int(sequence_length)


def _rows(token_rows, segment_rows, sequence_length, pad_id):
    n = len(token_rows)
    token_ids = np.full((n, sequence_length), pad_id, "int32")
    segment_ids = np.zeros((n, sequence_length), "int32")
    padding_mask = np.zeros((n, sequence_length), bool)
    for i, (ids, segments) in enumerate(zip(token_rows, segment_rows)):
        token_ids[i, : len(ids)] = ids
        segment_ids[i, : len(ids)] = segments
        padding_mask[i, : len(ids)] = True
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }


# --- BERT: sentence pairs -----------------------------------------------------
def _trim_pair(a, b, max_tokens):
    """BERT's `truncate_seq_pair`: trims the longer segment, one token at a
    time, until the pair fits; A loses its first tokens and B its last, so
    the A|B boundary (what NSP is about) stays intact."""
    a_len, b_len = len(a), len(b)
    while a_len + b_len > max_tokens:
        if a_len > b_len:
            a_len -= 1
        else:
            b_len -= 1
    return a[len(a) - a_len :], b[:b_len]


def nsp_pairs(documents, tokenizer, sequence_length, seed=0,
              random_next_probability=0.5, truncate=True):
    """BERT's next-sentence-prediction pairs `[CLS] A [SEP] B [SEP]`.

    As BERT's `create_pretraining_data.py`: sentences of a document are
    accumulated into a chunk until it fills the `sequence_length - 3` tokens
    of text (and holds two sentences); A is its first 1..k−1 sentences (k
    drawn at random) and B, with probability `1 - random_next_probability`,
    the rest of the chunk (IsNext, label 1), else sentences from a random
    position of another document (NotNext, label 0, and the unused
    sentences of the chunk go back to be used next). The last, single-
    sentence chunk of a document always gets a random B. A pair longer than
    the row is trimmed, the longer segment first, A at its start and B at
    its end.

    Args:
        documents: strings (or a `TextCorpus`).
        tokenizer: a keras-hub `BertTokenizer` or `RobertaTokenizer` (see
            `special_token_ids`).
        sequence_length: the row length, special tokens included.
        seed: of the NumPy generator that draws the pairs (fixed once).
        random_next_probability: how often B is a random segment (0 gives
            only true continuations, for sentence-pair inputs without NSP).
        truncate: trim sentences longer than a row with a warning (True) or
            raise (False).

    Returns:
        A dict of NumPy arrays: `token_ids`, `segment_ids` (0 for `[CLS] A
        [SEP]`, 1 for `B [SEP]`), `padding_mask` (bool), all
        `(N, sequence_length)`, and `next_sentence_labels` `(N,)` (1 =
        IsNext).

    Raises:
        ValueError: for an empty corpus or document, a tokenizer without the
            special tokens, random B segments with fewer than 2 documents,
            and (unless `truncate`) over-long sentences.
    """
    special = special_token_ids(tokenizer)
    sequence_length = _check_length(sequence_length, 5)
    docs = tokenize_documents(documents, tokenizer)
    if not 0.0 <= random_next_probability <= 1.0:
        raise ValueError(
            "random_next_probability must be in [0, 1], got "
            f"{random_next_probability}."
        )
    if random_next_probability > 0 and len(docs) < 2:
        raise ValueError(
            "Next-sentence prediction needs at least 2 documents (NotNext "
            f"segments come from another document); got {len(docs)}."
        )
    max_tokens = sequence_length - 3
    _over_long(docs, max_tokens, truncate, f"a pair of sequence_length "
               f"{sequence_length}")
    rng = np.random.default_rng(seed)
    start, end = special["start"], special["end"]
    token_rows, segment_rows, labels = [], [], []

    def other_document(rng, d):
        """A random document other than `d` (NotNext segments come from it)."""
        other = int(rng.integers(len(docs) - 1))
        return docs[other + (other >= d)]

    for d, sentences in enumerate(docs):
        tokens, segments, pair_labels = document_pairs(
            sentences, rng, max_tokens, start, end, random_next_probability,
            lambda rng, d=d: other_document(rng, d))
        token_rows += tokens
        segment_rows += segments
        labels += pair_labels
    arrays = _rows(token_rows, segment_rows, sequence_length, special["pad"])
    arrays["next_sentence_labels"] = np.asarray(labels, "int32")
    return arrays



def document_pairs(sentences, rng, max_tokens, start, end, random_next_probability,
                   partner):
    """BERT's `[CLS] A [SEP] B [SEP]` pairs of one document's tokenised
    `sentences`: `(token_rows, segment_rows, labels)` (1 = IsNext).

    Sentences are gathered until they reach `max_tokens`; A is a random
    prefix of them; B is the rest (IsNext) or, with probability
    `random_next_probability` (and always for a single sentence), a random
    run of sentences of `partner(rng)`, another document (NotNext; the rest
    of the chunk is used next). `partner=None`: no NotNext pairs. A last
    single sentence without a B is a row of A alone."""
    token_rows, segment_rows, labels = [], [], []
    i = 0
    while i < len(sentences):
        chunk, length, j = [], 0, i
        while j < len(sentences):
            chunk.append(sentences[j])
            length += len(sentences[j])
            j += 1
            if length >= max_tokens and len(chunk) >= 2:
                break
        a_end = 1 if len(chunk) == 1 else int(rng.integers(1, len(chunk)))
        a = [t for s in chunk[:a_end] for t in s]
        single = len(chunk) == 1
        if random_next_probability > 0 and partner is not None and (
            single or rng.random() < random_next_probability
        ):
            other = partner(rng)
            target = max(1, max_tokens - len(a))
            k = int(rng.integers(len(other)))
            b = []
            while k < len(other) and len(b) < target:
                b.extend(other[k])
                k += 1
            label = 0
            i += a_end  # the rest of the chunk is used next
        else:
            b = [t for s in chunk[a_end:] for t in s]
            label = 1
            i = j
        if not b:  # a last single sentence without NSP: A alone
            a = a[:max_tokens + 1]
            token_rows.append([start, *a, end])
            segment_rows.append([0] * (len(a) + 2))
            labels.append(1)
            continue
        a, b = _trim_pair(a, b, max_tokens)
        token_rows.append([start, *a, end, *b, end])
        segment_rows.append([0] * (len(a) + 2) + [1] * (len(b) + 1))
        labels.append(label)
    return token_rows, segment_rows, labels

# --- RoBERTa: FULL-SENTENCES ------------------------------------------------------
def pack_full_sentences(documents, tokenizer, sequence_length, truncate=True):
    """RoBERTa's FULL-SENTENCES rows: `<s> sentences </s>`, padded.

    Whole sentences of consecutive documents are packed greedily, in order:
    a row ends when the next sentence does not fit in it (so a row is as full
    as whole sentences allow; only its tail is padding), and a row that
    crosses a document boundary holds one separator (`</s>` / `[SEP]`)
    between the documents. No sentence is split across rows; one longer than
    a row alone is truncated (or raises, `truncate=False`).

    Args:
        documents: strings (or a `TextCorpus`), in order.
        tokenizer: a keras-hub `RobertaTokenizer` or `BertTokenizer`.
        sequence_length: the row length, the two special tokens included.
        truncate: cut over-long sentences with a warning, or raise.

    Returns:
        A dict of NumPy arrays `(N, sequence_length)`: `token_ids`,
        `segment_ids` (all 0) and `padding_mask` (bool).
    """
    special = special_token_ids(tokenizer)
    sequence_length = _check_length(sequence_length, 3)
    docs = tokenize_documents(documents, tokenizer)
    capacity = sequence_length - 2
    _over_long(docs, capacity, truncate, f"a row of sequence_length "
               f"{sequence_length}")
    rows, row, boundary = [], [], False
    for sentences in docs:
        boundary = bool(row)  # a new document after text in this row
        for ids in sentences:
            ids = ids[:capacity]
            needed = len(ids) + (1 if boundary else 0)
            if row and len(row) + needed > capacity:
                rows.append(row)
                row, boundary = [], False
            if boundary:
                row.append(special["end"])
                boundary = False
            row.extend(ids)
    if row:
        rows.append(row)
    token_rows = [[special["start"], *r, special["end"]] for r in rows]
    return _rows(token_rows, [[0] * len(r) for r in token_rows],
                 sequence_length, special["pad"])


# --- masking --------------------------------------------------------------------
def default_mask_selection_length(sequence_length, mask_rate=0.15):
    """Enough selections that a row of `sequence_length` is never capped:
    `ceil(mask_rate · sequence_length)`."""
    return max(1, int(math.ceil(float(mask_rate) * int(sequence_length))))


def mask_tokens(token_ids, seed, vocabulary_size, mask_token_id,
                unselectable_token_ids, mask_selection_length, mask_rate=0.15,
                mask_token_rate=0.8, random_token_rate=0.1):
    """BERT's masking of one row (or a batch of rows), in TensorFlow.

    Of the selectable tokens (not in `unselectable_token_ids`: special tokens
    and padding) `mask_rate` are chosen, uniformly at random: `n·mask_rate`
    rounded up or down at random so that the expected fraction is exactly
    `mask_rate`, at most `mask_selection_length`. Each chosen token becomes
    `mask_token_id` with probability `mask_token_rate`, a random non-special
    token with probability `random_token_rate`, and stays itself otherwise.
    Stateless: the same `seed` gives the same mask.

    Args:
        token_ids: int tensor `(..., L)`.
        seed: int tensor of shape `(2,)`, a stateless seed.
        vocabulary_size: the tokenizer's vocabulary size.
        mask_token_id: the `[MASK]` id.
        unselectable_token_ids: ids never chosen nor drawn as replacements.
        mask_selection_length: `M`, the static number of selection slots.

    Returns:
        A dict: `token_ids` `(..., L)` (masked), `mask_positions` `(..., M)`
        (ascending, 0 in unused slots), `mask_ids` `(..., M)` (the original
        ids, 0 in unused slots) and `mask_weights` `(..., M)` float32 (1 for
        a used slot).
    """
    import tensorflow as tf

    token_ids = tf.cast(tf.convert_to_tensor(token_ids), tf.int32)
    length = token_ids.shape[-1]
    m = int(mask_selection_length)
    if length is None or m > length:
        raise ValueError(
            f"mask_selection_length ({m}) must be at most the (static) row "
            f"length ({length})."
        )
    unselectable = sorted({int(i) for i in unselectable_token_ids})
    candidates = np.setdiff1d(np.arange(int(vocabulary_size)), unselectable)
    if not 0 <= int(mask_token_id) < int(vocabulary_size) or not len(candidates):
        raise ValueError(
            f"mask_token_id ({mask_token_id}) must be in [0, "
            f"{vocabulary_size}) and some ids must be selectable."
        )
    seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), num=4
    )
    shape = tf.shape(token_ids)
    selectable = tf.reduce_all(
        tf.not_equal(token_ids[..., None], tf.constant(unselectable, tf.int32)),
        axis=-1,
    )
    num_selectable = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=-1)
    expected = float(mask_rate) * num_selectable
    jitter = tf.random.stateless_uniform(tf.shape(expected), seeds[0])
    num_chosen = tf.minimum(tf.cast(tf.floor(expected + jitter), tf.int32), m)
    scores = tf.random.stateless_uniform(shape, seeds[1])
    scores = tf.where(selectable, scores, -1.0)
    top = tf.math.top_k(scores, k=m).indices  # highest scores first
    slots = tf.range(m)
    used = slots < num_chosen[..., None]
    positions = tf.sort(tf.where(used, top, length), axis=-1)
    used = positions < length  # sorted: used slots first
    positions = tf.where(used, positions, 0)
    originals = tf.gather(token_ids, positions, batch_dims=len(token_ids.shape) - 1)
    choice = tf.random.stateless_uniform(tf.shape(positions), seeds[2])
    random_ids = tf.gather(
        tf.constant(candidates, tf.int32),
        tf.random.stateless_uniform(
            tf.shape(positions), seeds[3], maxval=len(candidates), dtype=tf.int32
        ),
    )
    replacement = tf.where(
        choice < mask_token_rate,
        tf.cast(mask_token_id, tf.int32),
        tf.where(choice < mask_token_rate + random_token_rate, random_ids,
                 originals),
    )
    # Scatter the replacements into the row (one-hot, any batch rank).
    hits = tf.one_hot(positions, length, dtype=tf.int32) * tf.cast(
        used, tf.int32
    )[..., None]
    changed = tf.reduce_max(hits, axis=-2) > 0
    values = tf.reduce_sum(hits * replacement[..., None], axis=-2)
    weights = tf.cast(used, tf.float32)
    return {
        "token_ids": tf.where(changed, values, token_ids),
        "mask_positions": positions,
        "mask_ids": originals * tf.cast(used, tf.int32),
        "mask_weights": weights,
    }


# --- the tf.data pipeline ---------------------------------------------------------
def masked_lm_dataset(documents, tokenizer, sequence_length, batch_size,
                      next_sentence_prediction=True, packing="pairs",
                      dynamic_masking=True, mask_rate=0.15,
                      mask_selection_length=None, seed=0, shuffle=True,
                      repeat=False, truncate=True, drop_remainder=True):
    """A `tf.data.Dataset` of masked-LM batches for `MaskedLanguageModel`.

    Args:
        documents: strings, one per document (or a `TextCorpus`).
        tokenizer: a keras-hub `BertTokenizer` (WordPiece) or
            `RobertaTokenizer` (byte-level BPE); its own special tokens are
            used (`special_token_ids`).
        sequence_length: the row length in tokens, special tokens included.
        batch_size: rows per batch.
        next_sentence_prediction: BERT's NSP: `[CLS] A [SEP] B [SEP]` pairs
            with a random B half the time and `next_sentence_labels`. False
            with `packing="pairs"` gives only true continuations.
        packing: "pairs" (BERT, `nsp_pairs`) or "full_sentences" (RoBERTa,
            `pack_full_sentences`, no NSP).
        dynamic_masking: draw a new mask every time a row is seen (RoBERTa);
            False masks each row once, the same every epoch (BERT's static
            masking).
        mask_rate: the fraction of selectable tokens chosen (0.15).
        mask_selection_length: the static number of prediction slots per row
            (default `default_mask_selection_length`, never capped).
        seed: of the pairs, the shuffling and the masks.
        shuffle: reshuffle the rows every epoch.
        repeat: repeat forever (give `steps_per_epoch` to `fit`).
        truncate: truncate over-long sentences with a warning, or raise.
        drop_remainder: drop the last incomplete batch (static shapes).

    Returns:
        A dataset of dicts: `token_ids`, `segment_ids` (int32) and
        `padding_mask` (bool) `(B, L)`; `mask_positions`, `mask_ids` (int32)
        and `mask_weights` (float32) `(B, M)`; with NSP,
        `next_sentence_labels` (int32) `(B,)`.
    """
    import tensorflow as tf

    if packing not in PACKINGS:
        raise ValueError(f"packing must be one of {PACKINGS}, got {packing!r}.")
    if packing == "full_sentences" and next_sentence_prediction:
        raise ValueError(
            "FULL-SENTENCES packing has no sentence pairs to predict: pass "
            "next_sentence_prediction=False (RoBERTa), or packing='pairs'."
        )
    if not 0.0 < float(mask_rate) < 1.0:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}.")
    special = special_token_ids(tokenizer)
    if packing == "pairs":
        arrays = nsp_pairs(
            documents, tokenizer, sequence_length, seed=seed,
            random_next_probability=0.5 if next_sentence_prediction else 0.0,
            truncate=truncate,
        )
        if not next_sentence_prediction:
            del arrays["next_sentence_labels"]
    else:
        arrays = pack_full_sentences(
            documents, tokenizer, sequence_length, truncate=truncate
        )
    size = len(arrays["token_ids"])
    if drop_remainder and not repeat and batch_size > size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the data ({size} rows) "
            "and drop_remainder=True: the dataset would have no batch."
        )
    if mask_selection_length is None:
        mask_selection_length = default_mask_selection_length(
            sequence_length, mask_rate
        )
    vocabulary_size = int(tokenizer.vocabulary_size())
    data = {k: tf.constant(v) for k, v in arrays.items()}

    def example(index, seed_pair):
        row = {k: tf.gather(v, index) for k, v in data.items()}
        masked = mask_tokens(
            row["token_ids"], seed_pair, vocabulary_size, special["mask"],
            special["unselectable"], mask_selection_length, mask_rate,
        )
        row.update(masked)
        return row

    rows = tf.data.Dataset.range(size)
    if shuffle:
        rows = rows.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        rows = rows.repeat()
    if dynamic_masking:
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(rows, draws).map(
            lambda i, r: example(i, tf.stack([r, i])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:  # the row's index alone fixes its mask
        dataset = rows.map(
            lambda i: example(i, tf.stack([tf.constant(seed, tf.int64), i])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
