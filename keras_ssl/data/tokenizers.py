"""Tokenizers trained offline on the user's corpus, as keras-hub tokenizers.

Each language model saves its tokenizer with it (`.keras` assets, keras-hub
preset files), so a trained vocabulary travels with the weights:

- `train_wordpiece` → `keras_hub.tokenizers.BertTokenizer` (BERT): WordPiece,
  trained by keras-hub's `compute_word_piece_vocabulary` (tensorflow-text).
- `train_byte_bpe` → `GPT2Tokenizer` or `RobertaTokenizer` (GPT-2, RoBERTa):
  byte-level BPE (never an unknown token), trained by Hugging Face
  `tokenizers` (a keras-hub dependency) with GPT-2's byte-to-unicode map and
  pre-tokenisation, so keras-hub's `BytePairTokenizer` reads its vocabulary
  and merges unchanged.
- `train_sentencepiece` → `T5Tokenizer` (T5): a SentencePiece unigram model
  with `<pad>`=0, `</s>`=1, `<unk>`=2 and the span-corruption sentinels
  `<extra_id_0>`, `<extra_id_1>`, ... as user-defined pieces.

Example:

>>> texts = ["The quick brown fox jumps over the lazy dog."] * 50
>>> tokenizer = train_wordpiece(texts, vocabulary_size=60)
>>> tokenizer.id_to_token(0), tokenizer.cls_token_id
('[PAD]', 2)
"""

from __future__ import annotations

#: BERT's special tokens, in id order ([PAD] is 0: padding masks are ids ≠ 0).
WORDPIECE_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: RoBERTa's special tokens, in fairseq's id order.
ROBERTA_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
GPT2_SPECIAL_TOKENS = ("<|endoftext|>",)


def check_texts(texts, who, item="document"):
    """`texts` as a list of non-empty strings (one string, or a
    `TextCorpus`'s documents, also accepted), or a `ValueError` naming `who`
    and the offending `item` by index."""
    texts = getattr(texts, "documents", texts)  # a TextCorpus
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError(f"{who}: the corpus is empty: got no strings ({item}s).")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"{who} takes strings: {item} {i} is a {type(text).__name__}."
            )
        if not text.strip():
            raise ValueError(
                f"{who}: {item} {i} is an empty string; drop empty {item}s first."
            )
    return texts


def token_id_lists(tokenizer, texts):
    """The token ids of each string of `texts` as lists of ints, from one
    tokenizer call (keras-hub returns a ragged tensor, a dense tensor,
    arrays or lists depending on the backend and the lengths)."""
    texts = list(texts)
    if not texts:
        return []
    ids = tokenizer(texts)
    if hasattr(ids, "to_list"):  # tf.RaggedTensor
        ids = ids.to_list()
    elif hasattr(ids, "numpy"):
        ids = ids.numpy()
    import numpy as np

    return [[int(i) for i in np.asarray(row).reshape(-1)] for row in ids]


def _check_texts(texts):
    if isinstance(texts, str):
        texts = [texts]
    texts = [t for t in texts if isinstance(t, str)]
    if not texts or not any(t.strip() for t in texts):
        raise ValueError(
            "cannot train a tokenizer on no text: got an empty corpus (or only "
            "empty strings)"
        )
    return [t for t in texts if t.strip()]


def train_wordpiece(texts, vocabulary_size=2000, lowercase=True):
    """A WordPiece `BertTokenizer` trained on `texts`.

    Args:
        texts: strings (documents, paragraphs or sentences).
        vocabulary_size: the largest vocabulary, the five
            `WORDPIECE_SPECIAL_TOKENS` included (the result may be smaller).
        lowercase: lowercase and strip accents first ("uncased" BERT).
    """
    import keras_hub
    import tensorflow as tf

    texts = _check_texts(texts)
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(texts).batch(256),
        vocabulary_size=int(vocabulary_size),
        lowercase=lowercase,
        strip_accents=lowercase,
        reserved_tokens=list(WORDPIECE_SPECIAL_TOKENS),
    )
    return keras_hub.tokenizers.BertTokenizer(
        vocabulary=vocabulary, lowercase=lowercase
    )


def train_byte_bpe(texts, vocabulary_size=2000, kind="gpt2", min_frequency=2):
    """A byte-level BPE tokenizer trained on `texts`.

    Args:
        texts: strings.
        vocabulary_size: the vocabulary size: the 256 byte symbols, the
            special tokens and the learned merges.
        kind: "gpt2" (`<|endoftext|>` with the last id, as GPT-2, a
            `GPT2Tokenizer`) or "roberta"
            (`<s> <pad> </s> <unk> <mask>`, a `RobertaTokenizer`).
        min_frequency: merge only pairs seen at least this often.
    """
    import keras_hub
    from tokenizers import ByteLevelBPETokenizer

    kinds = {
        "gpt2": (GPT2_SPECIAL_TOKENS, keras_hub.tokenizers.GPT2Tokenizer),
        "roberta": (ROBERTA_SPECIAL_TOKENS, keras_hub.tokenizers.RobertaTokenizer),
    }
    if kind not in kinds:
        raise ValueError(f"kind must be one of {sorted(kinds)}, got {kind!r}")
    specials, cls = kinds[kind]
    if vocabulary_size < 256 + len(specials):
        raise ValueError(
            f"vocabulary_size must be at least {256 + len(specials)} (the 256 "
            f"byte symbols and {len(specials)} special tokens), got "
            f"{vocabulary_size}"
        )
    texts = _check_texts(texts)
    trainer = ByteLevelBPETokenizer(add_prefix_space=False)
    trainer.train_from_iterator(
        texts,
        vocab_size=int(vocabulary_size),
        min_frequency=int(min_frequency),
        special_tokens=list(specials),
        show_progress=False,
    )
    state = __import__("json").loads(trainer.to_str())["model"]
    merges = [
        m if isinstance(m, str) else " ".join(m) for m in state["merges"]
    ]
    vocabulary = dict(state["vocab"])
    if kind == "gpt2":
        # GPT-2's <|endoftext|> has the last id (50256): keras-hub pads GPT-2
        # rows with id 0 and stops generating at the first <|endoftext|>, so
        # it must not be 0 (where the trainer puts special tokens).
        order = sorted((i, t) for t, i in vocabulary.items() if t not in specials)
        vocabulary = {t: n for n, (_, t) in enumerate(order)}
        vocabulary[specials[0]] = len(vocabulary)
    return cls(vocabulary=vocabulary, merges=merges)


def sentinel_token(i):
    """The i-th span-corruption sentinel, as T5 names it."""
    return f"<extra_id_{int(i)}>"


def train_sentencepiece(texts, vocabulary_size=1000, num_sentinels=32,
                        model_type="unigram", lowercase=False):
    """A SentencePiece `T5Tokenizer` trained on `texts`.

    Args:
        texts: strings.
        vocabulary_size: the vocabulary size, `<pad> </s> <unk>` and the
            sentinels included.
        num_sentinels: how many `<extra_id_N>` sentinels to reserve (T5 has
            100; a span-corrupted row of L tokens needs about
            `0.15 L / 3 + 1`).
        model_type: "unigram" (T5) or "bpe".
    """
    import io

    import keras_hub
    import sentencepiece

    texts = _check_texts(texts)
    if vocabulary_size <= 3 + num_sentinels:
        raise ValueError(
            f"vocabulary_size ({vocabulary_size}) must exceed the 3 special "
            f"tokens and the {num_sentinels} sentinels"
        )
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=proto,
        vocab_size=int(vocabulary_size),
        model_type=model_type,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        user_defined_symbols=[sentinel_token(i) for i in range(num_sentinels)],
        normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return keras_hub.tokenizers.T5Tokenizer(proto=proto.getvalue())


def sentinel_ids(tokenizer):
    """The ids of `<extra_id_0>`, `<extra_id_1>`, ... in `tokenizer`'s
    vocabulary, in order (empty when it has none)."""
    vocabulary = set(tokenizer.get_vocabulary())
    ids, i = [], 0
    while sentinel_token(i) in vocabulary:
        ids.append(int(tokenizer.token_to_id(sentinel_token(i))))
        i += 1
    return ids
