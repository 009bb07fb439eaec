"""Caption tokenization: a WordPiece vocabulary trained offline on the corpus,
and captions packed as `[SOT] tokens [EOT] [PAD]...` id rows.

The tokenizer is keras-hub's `WordPieceTokenizer`, so it runs inside
`tf.data` on every backend and saves its vocabulary with a `.keras` model
(as an asset). Captions are tokenized once, eagerly, into a NumPy array:
that is where empty and over-long captions fail, with the caption's index,
instead of deep inside a `tf.data` graph.
"""

from __future__ import annotations

import numpy as np

#: Reserved tokens, in id order: padding is id 0.
PAD, UNK, SOT, EOT = "[PAD]", "[UNK]", "[SOT]", "[EOT]"
SPECIAL_TOKENS = (PAD, UNK, SOT, EOT)


def train_caption_tokenizer(texts, vocabulary_size=1000, lowercase=True):
    """Trains a WordPiece vocabulary on `texts` and returns its tokenizer.

    Args:
        texts: a sequence of strings (the training captions).
        vocabulary_size: the largest vocabulary to learn (the result may be
            smaller when the texts hold fewer word pieces); it includes the
            four `SPECIAL_TOKENS` (`[PAD]` is id 0).
        lowercase: lowercase before splitting (CLIP's BPE lowercases too).

    Returns:
        A `keras_hub.tokenizers.WordPieceTokenizer` with `[UNK]` for unknown
        words.

    Example:

    >>> tokenizer = train_caption_tokenizer(["a red seven", "a blue two"] * 20)
    >>> tokenizer.id_to_token(0), tokenizer.token_to_id("[EOT]")
    ('[PAD]', 3)
    """
    import keras_hub
    import tensorflow as tf

    texts = _check_captions(texts)
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(list(texts)).batch(1024),
        vocabulary_size=int(vocabulary_size),
        lowercase=lowercase,
        reserved_tokens=list(SPECIAL_TOKENS),
    )
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary, lowercase=lowercase, oov_token=UNK
    )


def tokenize_captions(tokenizer, captions, sequence_length, truncate=False):
    """Token ids of `captions`, one row each: `[SOT] tokens [EOT]`, padded.

    Args:
        tokenizer: a keras-hub tokenizer whose vocabulary holds
            `SPECIAL_TOKENS` (see `train_caption_tokenizer`).
        captions: a string or a sequence of strings.
        sequence_length: the row length (the text encoder's context).
        truncate: cut over-long captions (keeping `[EOT]` last) instead of
            raising.

    Returns:
        An int32 array `(len(captions), sequence_length)`; padding is the
        `[PAD]` id.

    Raises:
        ValueError: for an empty caption, a caption longer than
            `sequence_length - 2` tokens (unless `truncate`), or a tokenizer
            without the special tokens.

    Example:

    >>> tokenizer = train_caption_tokenizer(["a red seven", "a blue two"] * 20)
    >>> ids = tokenize_captions(tokenizer, ["a red seven"], 7)
    >>> [tokenizer.id_to_token(i) for i in ids[0]]
    ['[SOT]', 'a', 'red', 'seven', '[EOT]', '[PAD]', '[PAD]']
    """
    if isinstance(captions, str):
        captions = [captions]
    captions = _check_captions(captions)
    sequence_length = int(sequence_length)
    if sequence_length < 3:
        raise ValueError(
            f"sequence_length must be >= 3 ([SOT], a token, [EOT]); got "
            f"{sequence_length}."
        )
    ids = {}
    for token in SPECIAL_TOKENS:
        try:
            ids[token] = int(tokenizer.token_to_id(token))
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"the tokenizer has no {token} token; build it with "
                "`keras_ssl.data.train_caption_tokenizer`."
            ) from error
    pieces = tokenizer(list(captions))
    pieces = pieces.to_list() if hasattr(pieces, "to_list") else pieces
    rows = np.full((len(captions), sequence_length), ids[PAD], dtype="int32")
    room = sequence_length - 2
    for index, tokens in enumerate(pieces):
        tokens = [int(t) for t in np.asarray(tokens).reshape(-1)]
        if not tokens:
            raise ValueError(
                f"caption {index} ({captions[index]!r}) has no tokens."
            )
        if len(tokens) > room:
            if not truncate:
                raise ValueError(
                    f"caption {index} is too long: {len(tokens)} tokens plus "
                    f"[SOT] and [EOT], and the text encoder takes "
                    f"{sequence_length} (its sequence_length). Shorten it or "
                    "pass truncate=True."
                )
            tokens = tokens[:room]
        row = [ids[SOT], *tokens, ids[EOT]]
        rows[index, : len(row)] = row
    return rows


def _check_captions(captions):
    """A list of non-empty strings, or a ValueError naming the bad one."""
    if isinstance(captions, str) or not hasattr(captions, "__len__"):
        raise ValueError(
            f"captions must be a sequence of strings, got {type(captions).__name__}."
        )
    captions = [
        c.decode("utf-8") if isinstance(c, (bytes, np.bytes_)) else c
        for c in captions
    ]
    if not captions:
        raise ValueError("no captions given.")
    for index, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise ValueError(
                f"caption {index} must be a string, got {type(caption).__name__}."
            )
        if not caption.strip():
            raise ValueError(f"caption {index} is empty.")
    return captions
