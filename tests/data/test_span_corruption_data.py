"""T5 span corruption: the paper's example, the noise statistics, the
encoder-decoder batches and text-to-text pairs."""

import numpy as np
import pytest

from keras_ssl.data.span_corruption import (
    encode_text_to_text,
    fill_spans,
    random_spans_noise_mask,
    span_corruption,
    span_corruption_dataset,
    span_corruption_lengths,
    text_to_text_dataset,
)
from keras_ssl.data.tokenizers import (
    sentinel_ids,
    token_id_lists,
    train_sentencepiece,
)

PAPER = "Thank you for inviting me to your party last week ."
SENTINELS = ["<extra_id_0>", "<extra_id_1>", "<extra_id_2>", "<extra_id_3>"]


def _text(value):
    """A detokenized string, whatever the backend returns."""
    value = np.asarray(value).reshape(-1)[0] if not isinstance(value, str) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _runs(mask):
    """Lengths of the runs of True in `mask`."""
    padded = np.concatenate([[0], mask.astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


def test_paper_example_word_level():
    # Figure 2 of the paper, one id per word: "for inviting" and "last" are
    # dropped out.
    words = PAPER.split()
    vocabulary = ["<pad>", "</s>"] + SENTINELS + sorted(set(words))
    ids = {w: i for i, w in enumerate(vocabulary)}
    tokens = [ids[w] for w in words]
    mask = np.isin(words, ["for", "inviting", "last"])
    inputs, targets = span_corruption(
        tokens, [ids[s] for s in SENTINELS], noise_mask=mask, eos_id=ids["</s>"]
    )
    as_text = lambda row: " ".join(vocabulary[i] for i in row)  # noqa: E731
    assert as_text(inputs) == (
        "Thank you <extra_id_0> me to your party <extra_id_1> week . </s>"
    )
    assert as_text(targets) == (
        "<extra_id_0> for inviting <extra_id_1> last <extra_id_2> </s>"
    )
    assert inputs.dtype == targets.dtype == np.int32
    assert fill_spans(inputs, targets, [ids[s] for s in SENTINELS],
                      eos_id=ids["</s>"]).tolist() == tokens


def test_noise_statistics_over_many_draws():
    rng = np.random.default_rng(0)
    fractions, span_lengths = [], []
    for _ in range(2000):
        length = int(rng.integers(20, 200))
        mask = random_spans_noise_mask(length, seed=rng)
        runs = _runs(mask)
        num_noise = int(np.round(np.float32(length) * np.float32(0.15)))
        # T5's counts, exactly: round(L·0.15) noise tokens in
        # round(num_noise / 3) spans; non-noise first, noise last.
        assert mask.sum() == num_noise
        assert len(runs) == max(1, int(np.round(num_noise / 3.0)))
        assert not mask[0] and mask[-1]
        # Spans are maximal runs separated by non-noise: as many non-noise
        # runs as noise runs, so no two noise spans touch.
        assert len(_runs(~mask)) == len(runs)
        fractions.append(mask.mean())
        span_lengths.extend(runs)
    assert np.mean(fractions) == pytest.approx(0.15, abs=0.005)
    assert np.mean(span_lengths) == pytest.approx(3.0, abs=0.1)
    # Random segmentation: lengths vary (1 to well above 3).
    assert min(span_lengths) == 1 and max(span_lengths) >= 8


def test_corruption_reconstructs_the_original():
    rng = np.random.default_rng(1)
    sentinels = list(range(1000, 1100))
    for _ in range(300):
        tokens = rng.integers(3, 900, size=int(rng.integers(1, 120)))
        mask = random_spans_noise_mask(len(tokens), seed=rng)
        inputs, targets = span_corruption(tokens, sentinels, mask, eos_id=1)
        assert inputs[-1] == targets[-1] == 1
        num_spans = len(_runs(mask))
        # One sentinel per noise span in the inputs, in order; the targets
        # hold exactly the noise tokens.
        assert inputs[np.isin(inputs, sentinels)].tolist() == sentinels[:num_spans]
        assert len(inputs) == (~mask).sum() + num_spans + 1
        assert targets[~np.isin(targets, sentinels)][:-1].tolist() == (
            tokens[mask].tolist()
        )
        assert fill_spans(inputs, targets, sentinels, eos_id=1).tolist() == (
            tokens.tolist()
        )


def test_mask_is_seeded_and_edge_cases():
    a = random_spans_noise_mask(100, seed=3)
    assert np.array_equal(a, random_spans_noise_mask(100, seed=3))
    assert not np.array_equal(a, random_spans_noise_mask(100, seed=4))
    assert random_spans_noise_mask(1, seed=0).tolist() == [False]
    assert random_spans_noise_mask(2, seed=0).tolist() == [False, True]
    assert not random_spans_noise_mask(50, noise_density=0.0).any()
    assert random_spans_noise_mask(0).shape == (0,)


def test_lengths_as_t5():
    # T5's pre-training: inputs of 512 tokens come from rows of 568, whose
    # targets take 114 (random_spans_helper).
    assert span_corruption_lengths(512) == (568, 114)
    for inputs_length in range(3, 100):
        tokens_length, targets_length = span_corruption_lengths(inputs_length)
        mask = random_spans_noise_mask(tokens_length, seed=inputs_length)
        inputs, targets = span_corruption(
            np.arange(tokens_length) + 200, range(100), mask, eos_id=1
        )
        assert len(inputs) == inputs_length
        assert len(targets) == targets_length


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape of the token ids"):
        span_corruption([5, 6, 7], [1, 2], noise_mask=[True, False])
    with pytest.raises(ValueError, match="non-empty row"):
        span_corruption([], [1, 2])
    with pytest.raises(ValueError, match="integer token ids"):
        span_corruption([0.5, 1.5], [1, 2])
    with pytest.raises(ValueError, match="needs 3 sentinels.*only 2"):
        span_corruption(
            [5, 6, 7, 8, 9, 10], [1, 2],
            noise_mask=[False, True, False, True, False, True],
        )
    with pytest.raises(ValueError, match="noise_density"):
        random_spans_noise_mask(10, noise_density=1.5)
    with pytest.raises(ValueError, match="mean_span_length"):
        random_spans_noise_mask(10, mean_span_length=0)


# --- pipelines on the embedded corpus ---------------------------------------
INPUTS_LENGTH = 32


@pytest.fixture(scope="module")
def corpus_batches(python_docs, t5_tokenizer):
    data = span_corruption_dataset(
        python_docs.documents, t5_tokenizer, INPUTS_LENGTH, batch_size=64, seed=5
    )
    first = [
        ({k: v.numpy() for k, v in x.items()}, y.numpy(), w.numpy())
        for x, y, w in data.take(3)
    ]
    second = next(iter(data))  # the pipeline's second pass (epoch)
    return data, first, second


def test_dataset_batches(corpus_batches, t5_tokenizer):
    _, batches, _ = corpus_batches
    x, y, weights = batches[0]
    _, targets_length = span_corruption_lengths(INPUTS_LENGTH)
    assert x["encoder_token_ids"].shape == (64, INPUTS_LENGTH)
    assert x["decoder_token_ids"].shape == y.shape == (64, targets_length)
    assert all(v.dtype == np.int32 for v in [*x.values(), y, weights])
    pad, eos = t5_tokenizer.pad_token_id, t5_tokenizer.end_token_id
    sentinels = sentinel_ids(t5_tokenizer)
    # Decoder inputs: the targets shifted right by the pad (start) id.
    assert np.all(x["decoder_token_ids"][:, 0] == pad)
    np.testing.assert_array_equal(
        x["decoder_token_ids"][:, 1:], y[:, :-1] * weights[:, 1:]
    )
    np.testing.assert_array_equal(x["decoder_padding_mask"], weights)
    np.testing.assert_array_equal(
        x["encoder_padding_mask"], (x["encoder_token_ids"] != pad).astype("int32")
    )
    tokens_length = span_corruption_lengths(INPUTS_LENGTH)[0]
    short_rows = 0
    for row in range(64):
        n_in = x["encoder_padding_mask"][row].sum()
        n_out = weights[row].sum()
        inputs = x["encoder_token_ids"][row, :n_in]
        targets = y[row, :n_out]
        assert inputs[-1] == eos and targets[-1] == eos
        assert targets[0] == sentinels[0]
        original = fill_spans(inputs, targets, sentinels, eos_id=eos)
        assert not np.isin(original, sentinels).any()
        # Full rows fill the encoder exactly (T5's random_spans_helper); only
        # the corpus' last row may be shorter.
        if n_in < INPUTS_LENGTH:
            short_rows += 1
        else:
            assert len(original) == tokens_length
    assert short_rows <= 1


def test_dataset_redraws_each_epoch_and_is_seeded(
    corpus_batches, python_docs, t5_tokenizer
):
    _, first, second = corpus_batches
    assert not np.array_equal(
        first[0][0]["encoder_token_ids"], second[0]["encoder_token_ids"].numpy()
    )
    again = span_corruption_dataset(
        python_docs.documents, t5_tokenizer, INPUTS_LENGTH, batch_size=64, seed=5
    )
    x, _, _ = next(iter(again))
    np.testing.assert_array_equal(
        x["encoder_token_ids"].numpy(), first[0][0]["encoder_token_ids"]
    )
    # Without shuffling the rows keep their order; the corruption still moves.
    plain = span_corruption_dataset(
        python_docs.documents[:3], t5_tokenizer, INPUTS_LENGTH, batch_size=4,
        shuffle=False,
    )
    a, b = (next(iter(plain))[0]["encoder_token_ids"].numpy() for _ in range(2))
    assert a[:, 0].tolist() == b[:, 0].tolist()  # the first token is kept
    assert not np.array_equal(a, b)


def test_dataset_errors(python_docs, t5_tokenizer):
    docs = python_docs.documents[:2]
    with pytest.raises(ValueError, match="targets_length=4 is too short.*8"):
        span_corruption_dataset(docs, t5_tokenizer, 32, targets_length=4)
    with pytest.raises(ValueError, match=r"makes 114 spans.*has only \d+ sentinels"):
        span_corruption_dataset(docs, t5_tokenizer, 2048)
    with pytest.raises(ValueError, match="empty string"):
        span_corruption_dataset(["text", " "], t5_tokenizer, 32)
    with pytest.raises(ValueError, match="no strings"):
        span_corruption_dataset([], t5_tokenizer, 32)
    with pytest.raises(ValueError, match="T5-style tokenizer"):
        span_corruption_dataset(docs, object(), 32)
    plain = train_sentencepiece(
        ["the quick brown fox jumps over the lazy dog"] * 20,
        vocabulary_size=30, num_sentinels=0,
    )
    with pytest.raises(ValueError, match="no sentinel tokens"):
        span_corruption_dataset(docs, plain, 32)


def test_text_to_text(t5_tokenizer):
    x, y, weights = encode_text_to_text(
        ["class list value", "number string"], ["class list value", "number"],
        t5_tokenizer, 12, 6, prefix="sort:",
    )
    assert x["encoder_token_ids"].shape == (2, 12) and y.shape == (2, 6)
    eos = t5_tokenizer.end_token_id
    n = x["encoder_padding_mask"][0].sum()
    assert x["encoder_token_ids"][0, n - 1] == eos
    text = t5_tokenizer.detokenize(x["encoder_token_ids"][0, : n - 1].tolist())
    assert _text(text) == "sort: class list value"
    target = y[1, : weights[1].sum()].tolist()
    assert target == token_id_lists(t5_tokenizer, ["number"])[0] + [eos]
    assert x["decoder_token_ids"][1, : len(target)].tolist() == [0] + target[:-1]
    data = text_to_text_dataset(
        ["a", "b", "c"], ["x", "y", "z"], t5_tokenizer, 8, 4, batch_size=2,
        prefix="copy:",
    )
    assert [int(b[1].shape[0]) for b in data] == [2, 1]
    with pytest.raises(ValueError, match="input 0 has .* tokens.*truncate=True"):
        encode_text_to_text(["word " * 20], ["x"], t5_tokenizer, 8, 4)
    with pytest.warns(UserWarning, match="truncated"):
        x, _, _ = encode_text_to_text(["word " * 20], ["x"], t5_tokenizer, 8, 4,
                                      truncate=True)
    assert x["encoder_token_ids"][0, -1] == eos
    with pytest.raises(ValueError, match="one target per input"):
        encode_text_to_text(["a", "b"], ["x"], t5_tokenizer, 8, 4)
    with pytest.raises(ValueError, match="input 1 is an empty string"):
        encode_text_to_text(["a", ""], ["x", "y"], t5_tokenizer, 8, 4)
