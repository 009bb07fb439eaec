"""Tokenizers trained offline on the embedded corpus, as keras-hub tokenizers."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_ssl.data.tokenizers import (
    sentinel_ids,
    sentinel_token,
    train_byte_bpe,
    train_sentencepiece,
    train_wordpiece,
)

SAMPLE = 'The "if" statement is used for conditional execution.'


def _ids(tokenizer, text):
    return np.asarray(keras.ops.convert_to_numpy(tokenizer(text))).tolist()


def test_wordpiece_bert_tokenizer(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    assert isinstance(tok, keras_hub.tokenizers.BertTokenizer)
    assert [tok.id_to_token(i) for i in range(5)] == [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    ]
    ids = _ids(tok, SAMPLE)
    assert tok.token_to_id("[UNK]") not in ids  # the corpus' own words
    assert str(tok.detokenize(ids)).lower().startswith("the \" if \" statement")
    assert 500 < tok.vocabulary_size() <= 800


@pytest.mark.parametrize("kind", ["gpt2", "roberta"])
def test_byte_bpe_round_trips_any_text(kind, gpt2_tokenizer, roberta_tokenizer):
    tok = {"gpt2": gpt2_tokenizer, "roberta": roberta_tokenizer}[kind]
    assert tok.vocabulary_size() == 800
    for text in (SAMPLE, "Ünïcödé and emoji 🙂 never go unknown."):
        ids = _ids(tok, text)
        detok = tok.detokenize(ids)
        detok = detok.numpy().decode() if hasattr(detok, "numpy") else detok
        assert detok == text
    # Learned merges: common words are one token.
    assert len(_ids(tok, " statement")) == 1
    if kind == "roberta":
        assert (tok.start_token_id, tok.pad_token_id, tok.end_token_id) == (0, 1, 2)
        assert tok.mask_token_id == 4
    else:  # GPT-2's <|endoftext|> is the last id
        assert tok.end_token_id == tok.vocabulary_size() - 1


def test_sentencepiece_t5_tokenizer_has_sentinels(t5_tokenizer):
    tok = t5_tokenizer
    assert isinstance(tok, keras_hub.tokenizers.T5Tokenizer)
    assert [tok.id_to_token(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    sentinels = sentinel_ids(tok)
    assert len(sentinels) == 16
    assert tok.id_to_token(sentinels[3]) == sentinel_token(3) == "<extra_id_3>"
    # A sentinel written in text is one piece.
    assert sentinels[0] in _ids(tok, "Thank you <extra_id_0> me.")
    assert str(tok.detokenize(_ids(tok, SAMPLE))) .startswith("The")


def test_clear_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        train_wordpiece(["", "  "])
    with pytest.raises(ValueError, match="at least 257"):
        train_byte_bpe(["some text"], vocabulary_size=100)
    with pytest.raises(ValueError, match="kind must be"):
        train_byte_bpe(["some text"], kind="bert")
    with pytest.raises(ValueError, match="must exceed"):
        train_sentencepiece(["some text"], vocabulary_size=10, num_sentinels=16)
