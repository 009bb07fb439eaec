"""Masked-LM data on the embedded corpus: BERT's 15% / 80-10-10 masking,
NSP pairs, RoBERTa's FULL-SENTENCES rows, dynamic and static masks, errors."""

import warnings

import numpy as np
import pytest

from keras_ssl.data.masked_lm import (
    default_mask_selection_length,
    mask_tokens,
    masked_lm_dataset,
    nsp_pairs,
    pack_full_sentences,
    special_token_ids,
    tokenize_documents,
)

LENGTH = 32


def _quiet(function, *args, **kwargs):
    """Calls `function` without its over-long-sentence warning (short rows
    truncate many of the corpus' sentences)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function(*args, **kwargs)


def _key(ids):
    return "," + ",".join(str(int(i)) for i in ids) + ","


@pytest.fixture(scope="module")
def documents(python_docs):
    return python_docs.documents


@pytest.fixture(scope="module")
def pairs(documents, wordpiece_tokenizer):
    return _quiet(nsp_pairs, documents, wordpiece_tokenizer, LENGTH, seed=3)


@pytest.fixture(scope="module")
def masked(pairs, wordpiece_tokenizer):
    special = special_token_ids(wordpiece_tokenizer)
    out = mask_tokens(
        pairs["token_ids"], np.array([7, 11]),
        wordpiece_tokenizer.vocabulary_size(), special["mask"],
        special["unselectable"], default_mask_selection_length(LENGTH),
    )
    return {k: v.numpy() for k, v in out.items()}, special


def test_special_tokens_of_both_tokenizers(wordpiece_tokenizer, roberta_tokenizer):
    bert = special_token_ids(wordpiece_tokenizer)
    tok = wordpiece_tokenizer
    assert (bert["start"], bert["end"], bert["pad"], bert["mask"]) == tuple(
        tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[MASK]")
    )
    roberta = special_token_ids(roberta_tokenizer)
    tok = roberta_tokenizer
    assert (roberta["start"], roberta["end"], roberta["pad"], roberta["mask"]) == (
        tuple(tok.token_to_id(t) for t in ("<s>", "</s>", "<pad>", "<mask>"))
    )
    assert set(roberta["unselectable"]) >= {0, 1, 2, 4}


def test_fifteen_percent_of_selectable_tokens_80_10_10(pairs, masked):
    out, special = masked
    ids = pairs["token_ids"]
    selectable = ~np.isin(ids, special["unselectable"])
    weights = out["mask_weights"]
    chosen = int(weights.sum())
    assert chosen / selectable.sum() == pytest.approx(0.15, abs=0.01)
    rows, slots = np.nonzero(weights)
    positions = out["mask_positions"][rows, slots]
    originals = ids[rows, positions]
    # Padding and special tokens are never chosen; mask_ids are the originals.
    assert selectable[rows, positions].all()
    np.testing.assert_array_equal(out["mask_ids"][rows, slots], originals)
    new = out["token_ids"][rows, positions]
    to_mask = np.mean(new == special["mask"])
    unchanged = np.mean(new == originals)
    assert to_mask == pytest.approx(0.8, abs=0.03)
    assert unchanged == pytest.approx(0.1, abs=0.02)
    assert 1 - to_mask - unchanged == pytest.approx(0.1, abs=0.02)
    random_ids = new[(new != special["mask"]) & (new != originals)]
    assert not np.isin(random_ids, special["unselectable"]).any()
    # Nothing else changes; unused slots are zero.
    changed = np.zeros_like(ids, bool)
    changed[rows, positions] = True
    np.testing.assert_array_equal(out["token_ids"][~changed], ids[~changed])
    assert (out["mask_positions"][weights == 0] == 0).all()
    assert (out["mask_ids"][weights == 0] == 0).all()
    # Positions of a row are distinct and ascending.
    for row, w in zip(out["mask_positions"], weights):
        used = row[w > 0]
        assert (np.diff(used) > 0).all()


def test_nsp_pairs_are_half_next_and_true_pairs_are_consecutive(
    pairs, documents, wordpiece_tokenizer
):
    special = special_token_ids(wordpiece_tokenizer)
    docs = tokenize_documents(documents, wordpiece_tokenizer)
    streams = [_key([t for s in d for t in s]) for d in docs]
    labels = pairs["next_sentence_labels"]
    assert 0.4 < labels.mean() < 0.6, labels.mean()
    assert pairs["token_ids"].shape == (len(labels), LENGTH)
    # Token offsets of the sentence starts in each document's stream.
    starts = [set(np.cumsum([0] + [len(s) for s in d[:-1]]).tolist()) for d in docs]
    checked = {0: 0, 1: 0}
    for ids, segments, mask, label in zip(
        pairs["token_ids"], pairs["segment_ids"], pairs["padding_mask"], labels
    ):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()
        assert ids[0] == special["start"] and ids[n - 1] == special["end"]
        seps = np.flatnonzero(ids[:n] == special["end"])
        assert len(seps) == 2, ids
        a, b = ids[1 : seps[0]], ids[seps[0] + 1 : n - 1]
        assert len(a) and len(b)
        np.testing.assert_array_equal(segments[: seps[0] + 1], 0)
        np.testing.assert_array_equal(segments[seps[0] + 1 : n], 1)
        np.testing.assert_array_equal(segments[n:], 0)
        if checked[int(label)] >= 100:
            continue
        checked[int(label)] += 1
        pair, b_key = _key([*a, *b]), _key(b)
        if label == 1:
            # A then B, contiguous in one document, B from a sentence start.
            hits = [(d, s.find(pair)) for d, s in enumerate(streams) if pair in s]
            assert hits, "a true pair is not consecutive text"
            d, at = hits[0]
            b_start = streams[d][: at + 1].count(",") - 1 + len(a)
            assert b_start in starts[d]
        else:
            assert any(b_key in s for s in streams)
            assert not any(pair in s for s in streams)
    assert checked == {0: 100, 1: 100}


def test_full_sentences_rows_are_full_and_cross_documents(
    documents, roberta_tokenizer
):
    tok, length = roberta_tokenizer, 64
    special = special_token_ids(tok)
    rows = _quiet(pack_full_sentences, documents, tok, length)
    capacity = length - 2
    flat = [
        (k == 0 and d > 0, s[:capacity])
        for d, doc in enumerate(tokenize_documents(documents, tok))
        for k, s in enumerate(doc)
    ]
    np.testing.assert_array_equal(rows["segment_ids"], 0)
    p, crossings = 0, 0
    for r, (ids, mask) in enumerate(zip(rows["token_ids"], rows["padding_mask"])):
        n = int(mask.sum())
        assert ids[0] == special["start"] and ids[n - 1] == special["end"]
        assert (ids[n:] == special["pad"]).all()
        content, cursor = list(ids[1 : n - 1]), 0
        while cursor < len(content):
            new_document, sentence = flat[p]
            if content[cursor] == special["end"]:
                # The separator: only between documents, never at a row start.
                assert new_document and cursor > 0
                cursor += 1
                crossings += 1
            else:
                assert not new_document or cursor == 0
            assert content[cursor : cursor + len(sentence)] == sentence
            cursor += len(sentence)
            p += 1
        if r + 1 < len(rows["token_ids"]):
            # As full as whole sentences allow: the next one did not fit.
            new_document, sentence = flat[p]
            assert len(content) + len(sentence) + new_document > capacity
    assert p == len(flat)  # every sentence, in order
    assert crossings >= 10
    assert rows["padding_mask"].mean() > 0.75


def test_dataset_batches_for_bert_and_roberta(
    documents, wordpiece_tokenizer, roberta_tokenizer
):
    m = default_mask_selection_length(LENGTH)
    bert = _quiet(masked_lm_dataset, documents, wordpiece_tokenizer, LENGTH, 8)
    batch = next(iter(bert))
    shapes = {k: tuple(v.shape) for k, v in batch.items()}
    assert shapes == {
        "token_ids": (8, LENGTH), "segment_ids": (8, LENGTH),
        "padding_mask": (8, LENGTH), "mask_positions": (8, m),
        "mask_ids": (8, m), "mask_weights": (8, m),
        "next_sentence_labels": (8,),
    }
    roberta = _quiet(
        masked_lm_dataset, documents, roberta_tokenizer, LENGTH, 8,
        next_sentence_prediction=False, packing="full_sentences",
    )
    batch = next(iter(roberta))
    assert "next_sentence_labels" not in batch
    assert int(batch["token_ids"].numpy()[0, 0]) == roberta_tokenizer.start_token_id
    assert (batch["segment_ids"].numpy() == 0).all()
    # Pairs without NSP: only true continuations.
    plain = _quiet(nsp_pairs, documents, wordpiece_tokenizer, LENGTH,
                   random_next_probability=0.0)
    assert (plain["next_sentence_labels"] == 1).all()


def _masks(dataset):
    return [
        (b["mask_positions"].numpy(), b["token_ids"].numpy()) for b in dataset
    ]


@pytest.mark.parametrize("dynamic", [True, False])
def test_dynamic_masks_change_every_epoch_static_do_not(
    dynamic, documents, wordpiece_tokenizer
):
    dataset = _quiet(
        masked_lm_dataset, documents[:6], wordpiece_tokenizer, LENGTH, 8,
        shuffle=False, dynamic_masking=dynamic, seed=5,
    )
    first, second = _masks(dataset), _masks(dataset)
    assert len(first) == len(second) >= 2
    same = [
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(first, second)
    ]
    assert not any(same) if dynamic else all(same)
    # The same seed gives the same epochs, a new dataset or not.
    again = _quiet(
        masked_lm_dataset, documents[:6], wordpiece_tokenizer, LENGTH, 8,
        shuffle=False, dynamic_masking=dynamic, seed=5,
    )
    for a, b in zip(first, _masks(again)):
        np.testing.assert_array_equal(a[0], b[0])


def test_bad_corpora_tokenizers_and_options(
    documents, wordpiece_tokenizer, gpt2_tokenizer
):
    tok = wordpiece_tokenizer
    with pytest.raises(ValueError, match="corpus is empty"):
        masked_lm_dataset([], tok, LENGTH, 4)
    with pytest.raises(ValueError, match="document 1 is an empty string"):
        masked_lm_dataset(["Some text here.", "  "], tok, LENGTH, 4)
    with pytest.raises(ValueError, match="unknown special tokens"):
        masked_lm_dataset(documents, gpt2_tokenizer, LENGTH, 4)
    with pytest.raises(ValueError, match="longer than the 29 tokens"):
        nsp_pairs(documents, tok, LENGTH, truncate=False)
    with pytest.warns(UserWarning, match="truncated"):
        pack_full_sentences(documents[:3], tok, LENGTH)
    with pytest.raises(ValueError, match="next_sentence_prediction=False"):
        masked_lm_dataset(documents, tok, LENGTH, 4, packing="full_sentences")
    with pytest.raises(ValueError, match="packing must be one of"):
        masked_lm_dataset(documents, tok, LENGTH, 4, packing="documents")
    with pytest.raises(ValueError, match="at least 2 documents"):
        nsp_pairs(documents[:1], tok, LENGTH)
    with pytest.raises(ValueError, match="no batch"):
        _quiet(masked_lm_dataset, documents[:2], tok, LENGTH, 10_000)
    with pytest.raises(ValueError, match="mask_selection_length"):
        mask_tokens(np.zeros((2, 8), "int32"), np.array([0, 0]), 50, 4, [0],
                    mask_selection_length=9)
