"""Causal language modelling input: documents as rows of GPT-2 token ids.

GPT-2 (Radford et al., 2019) trains on documents separated by its one
special token, `<|endoftext|>`, and "packed" into rows of a fixed context
length, so no position is padding. `causal_lm_dataset` does the same with a
byte-level BPE `GPT2Tokenizer` (`keras_ssl.data.train_byte_bpe`): every
document is preceded by `<|endoftext|>`, which is also what
`keras_hub.models.GPT2CausalLMPreprocessor` puts before a prompt, so a
trained model sees at generation time the start it saw in training.

- `packing=True`: the token stream `<|endoftext|> doc_1 <|endoftext|> doc_2
  ...` is cut into rows of `sequence_length` tokens that overlap by one
  token: the model predicts tokens 1..L-1 of a row from tokens 0..L-2, so
  with a stride of `L - 1` every token after the first is a target exactly
  once. Only the last row can have padding.
- `packing=False`: one row per string (a document, a paragraph, a
  sentence): `<|endoftext|> text <|endoftext|>` then padding (the model
  learns to end). A text longer than the row is cut (with a warning) or
  rejected, by `truncate`.

Tokenization runs once, eagerly, into NumPy arrays: that is where empty and
over-long texts fail, with their index, rather than inside a `tf.data`
graph. The rows are `{"token_ids", "padding_mask"}` dicts (int32), what
`keras_ssl.models.CausalLanguageModel` and keras-hub's `GPT2Backbone` take;
padding positions hold the pad id (GPT-2's is `<|endoftext|>` too), so the
`padding_mask`, not the ids, says what is text.
"""

from __future__ import annotations

import warnings

import numpy as np

from keras_ssl.data.tokenizers import check_texts, token_id_lists

_TOKENIZER_API = ("end_token_id", "pad_token_id", "vocabulary_size", "detokenize")


def check_tokenizer(tokenizer, who="causal_lm_dataset"):
    """Raises a clear `ValueError` unless `tokenizer` is a GPT-2 style
    tokenizer (keras-hub `GPT2Tokenizer`: an end and a pad token)."""
    missing = [name for name in _TOKENIZER_API if not hasattr(tokenizer, name)]
    if tokenizer is None or missing or getattr(tokenizer, "end_token_id", None) is None:
        raise ValueError(
            f"{who} needs a byte-level BPE `keras_hub.tokenizers.GPT2Tokenizer` "
            "(e.g. `keras_ssl.data.train_byte_bpe(texts, kind='gpt2')`), with "
            f"an `<|endoftext|>` token; got {type(tokenizer).__name__}."
        )


def end_token_last(tokenizer):
    """A copy of a `GPT2Tokenizer` whose `<|endoftext|>` has the last id, as
    in GPT-2 (50256), the other ids moved down by one.

    keras-hub's `GPT2Tokenizer` pads with id 0 and generation stops at the
    first `<|endoftext|>` after the prompt, padding included: with
    `<|endoftext|>` at id 0 (where BPE trainers put special tokens), a
    `GPT2CausalLM` stops before its first new token. The text is tokenized
    the same; only the special token's id moves.
    """
    check_tokenizer(tokenizer, "end_token_last")
    import keras_hub

    end = tokenizer.id_to_token(tokenizer.end_token_id)
    vocabulary = dict(tokenizer.vocabulary)
    order = sorted((i, t) for t, i in vocabulary.items() if t != end)
    remapped = {t: n for n, (_, t) in enumerate(order)}
    remapped[end] = len(remapped)
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary=remapped, merges=list(tokenizer.merges)
    )


def tokenize_documents(tokenizer, documents, who="tokenize_documents"):
    """Token ids of each document, as lists of ints (no special tokens).

    Raises:
        ValueError: for an empty corpus, an empty or non-string document, or
            a tokenizer that is not GPT-2 style.
    """
    check_tokenizer(tokenizer, who)
    documents = check_texts(documents, who)
    token_ids = token_id_lists(tokenizer, documents)
    for i, ids in enumerate(token_ids):
        if not ids:
            raise ValueError(f"{who}: document {i} has no tokens.")
    return token_ids


def pack_token_ids(token_ids, sequence_length, separator_id, pad_id):
    """`(token_ids, padding_mask)` arrays `(rows, sequence_length)`: the
    documents' ids, each preceded by `separator_id`, concatenated and cut
    into rows that overlap by one token (stride `sequence_length - 1`); the
    last row is padded with `pad_id`."""
    if int(sequence_length) < 2:
        raise ValueError(
            f"sequence_length must be at least 2 (an input and its next-token "
            f"target), got {sequence_length}."
        )
    stream = np.asarray(
        [t for ids in token_ids for t in [separator_id, *ids]], "int32"
    )
    length, stride = int(sequence_length), int(sequence_length) - 1
    num_rows = max(1, -(-(len(stream) - 1) // stride))
    ids = np.full((num_rows, length), pad_id, "int32")
    mask = np.zeros((num_rows, length), "int32")
    for row in range(num_rows):
        piece = stream[row * stride : row * stride + length]
        ids[row, : len(piece)] = piece
        mask[row, : len(piece)] = 1
    return ids, mask


def pad_token_ids(token_ids, sequence_length, separator_id, pad_id,
                  truncate=True, who="causal_lm_dataset"):
    """`(token_ids, padding_mask)`: one row per document, `separator doc
    separator` then `pad_id`; over-long rows cut (a warning) or, with
    `truncate=False`, a `ValueError`."""
    if int(sequence_length) < 2:
        raise ValueError(
            f"sequence_length must be at least 2 (an input and its next-token "
            f"target), got {sequence_length}."
        )
    length = int(sequence_length)
    ids = np.full((len(token_ids), length), pad_id, "int32")
    mask = np.zeros((len(token_ids), length), "int32")
    cut = []
    for i, doc in enumerate(token_ids):
        row = [separator_id, *doc, separator_id]
        if len(row) > length:
            if not truncate:
                raise ValueError(
                    f"{who}: document {i} has {len(doc)} tokens, more than the "
                    f"{length - 2} that fit a row of {length} with its two "
                    "<|endoftext|> tokens. Pass truncate=True, a longer "
                    "sequence_length, packing=True, or split the document "
                    "(e.g. into paragraphs)."
                )
            cut.append(i)
            row = row[:length]
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    if cut:
        warnings.warn(
            f"{who}: {len(cut)} of {len(token_ids)} documents are longer than "
            f"a row of {length} tokens and were cut (the first: document "
            f"{cut[0]}). Use packing=True to keep all the text.",
            stacklevel=3,
        )
    return ids, mask


def causal_lm_arrays(documents, tokenizer, sequence_length, packing=True,
                     truncate=True):
    """The rows of `causal_lm_dataset` as NumPy arrays: a dict
    `{"token_ids": (rows, L), "padding_mask": (rows, L)}` of int32."""
    who = "causal_lm_dataset"
    token_ids = tokenize_documents(tokenizer, documents, who)
    separator = int(tokenizer.end_token_id)
    pad = int(tokenizer.pad_token_id)
    if packing:
        ids, mask = pack_token_ids(token_ids, sequence_length, separator, pad)
    else:
        ids, mask = pad_token_ids(
            token_ids, sequence_length, separator, pad, truncate, who
        )
    return {"token_ids": ids, "padding_mask": mask}


def causal_lm_dataset(documents, tokenizer, sequence_length, batch_size,
                      packing=True, seed=0, repeat=False, truncate=True,
                      shuffle=True, drop_remainder=False):
    """A `tf.data.Dataset` of `{"token_ids", "padding_mask"}` batches for a
    causal language model (see the module docstring).

    Args:
        documents: a string or strings (documents, paragraphs, sentences).
        tokenizer: a keras-hub `GPT2Tokenizer` (`train_byte_bpe(...,
            kind="gpt2")`).
        sequence_length: tokens per row (the model's context; at most the
            backbone's `max_sequence_length`).
        batch_size: rows per batch.
        packing: pack the token stream into full rows (True) or one padded
            row per string (False).
        seed: of the row shuffling.
        repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
        truncate: with `packing=False`, cut over-long strings (a warning)
            instead of raising.
        shuffle: shuffle the rows (each epoch anew).
        drop_remainder: drop a last, smaller batch (fixed shapes).

    Returns:
        A batched `tf.data.Dataset`; its `num_rows` attribute holds the
        number of rows.

    Raises:
        ValueError: for an empty corpus, an empty string, `sequence_length <
            2`, an over-long string with `packing=False, truncate=False`, or a
            tokenizer without `<|endoftext|>`.

    Example:

    >>> from keras_ssl.datasets.text_corpus import load_python_docs
    >>> from keras_ssl.data.tokenizers import train_byte_bpe
    >>> corpus = load_python_docs()
    >>> tokenizer = train_byte_bpe(corpus.documents, 800, kind="gpt2")
    >>> data = causal_lm_dataset(corpus.documents, tokenizer, 32, 16)
    >>> batch = next(iter(data))
    >>> tuple(batch["token_ids"].shape)
    (16, 32)
    """
    import tensorflow as tf

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    rows = causal_lm_arrays(documents, tokenizer, sequence_length, packing,
                            truncate)
    num_rows = len(rows["token_ids"])
    dataset = tf.data.Dataset.from_tensor_slices(rows)
    if shuffle:
        dataset = dataset.shuffle(num_rows, seed=seed,
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(int(batch_size), drop_remainder=drop_remainder)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.num_rows = num_rows
    return dataset
