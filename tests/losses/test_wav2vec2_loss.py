"""wav2vec 2.0's masking, distractors and loss terms against NumPy references
written from the paper and fairseq's code, on fixed noise."""

import keras
import numpy as np
import pytest

from keras_ssl.losses.wav2vec2 import (
    codebook_perplexity,
    contrastive_accuracy,
    diversity_loss,
    feature_penalty,
    sample_negative_indices,
    span_mask,
    wav2vec2_contrastive_loss,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def reference_span_mask(noise, rounding, lengths, p, m, min_spans=1):
    batch, frames = noise.shape
    out = np.zeros((batch, frames), bool)
    for b in range(batch):
        n = lengths[b]
        candidates = np.arange(0, max(n - m, 0) + 1)
        k = int(np.floor(p * n + rounding[b]))
        k = min(max(k, min_spans), len(candidates))
        chosen = candidates[np.argsort(noise[b, candidates], kind="stable")[:k]]
        for s in chosen:
            out[b, s : min(s + m, n)] = True
    return out


def reference_negatives(noise, mask):
    batch, frames, k = noise.shape
    out = np.zeros((batch, frames, k), int)
    for b in range(batch):
        masked = np.flatnonzero(mask[b])
        for t in range(frames):
            others = [i for i in masked if i != t] if mask[b, t] else list(masked)
            for j in range(k):
                out[b, t, j] = others[int(np.floor(noise[b, t, j] * len(others)))]
    return out


def _frame_mask(lengths, frames):
    return np.arange(frames)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("p,m", [(0.065, 10), (0.2, 3), (0.5, 1)])
def test_span_mask_matches_the_reference(p, m):
    rng = np.random.default_rng(0)
    lengths = np.array([60, 37, 12, 60])
    noise = rng.random((4, 60)).astype("float32")
    rounding = rng.random(4).astype("float32")
    got = _np(span_mask(noise, rounding, _frame_mask(lengths, 60), p, m))
    np.testing.assert_array_equal(got, reference_span_mask(noise, rounding, lengths, p, m))


def test_span_mask_statistics_match_the_paper():
    """p = 0.065, M = 10: "about 49% of all time steps", never padding, and
    a fresh mask for fresh noise."""
    rng = np.random.default_rng(1)
    lengths = np.array([500] * 30 + [300] * 30)
    frame_mask = _frame_mask(lengths, 500)
    masks = [
        _np(span_mask(rng.random((60, 500)).astype("float32"),
                      rng.random(60).astype("float32"), frame_mask))
        for _ in range(2)
    ]
    for mask in masks:
        fraction = mask.sum() / frame_mask.sum()
        assert 0.44 < fraction < 0.53, fraction
        assert not mask[~frame_mask].any()
    assert (masks[0] != masks[1]).mean() > 0.2
    # Spans are M long: every run of masked frames is at least 10 long.
    row = masks[0][0].astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], row, [0]])))
    runs = edges[1::2] - edges[::2]
    assert runs.min() >= 10


def test_a_short_utterance_still_gets_one_span():
    mask = _np(span_mask(np.zeros((1, 8), "float32"), np.zeros(1, "float32"),
                         _frame_mask([5], 8), 0.065, 10))
    np.testing.assert_array_equal(mask[0], [True] * 5 + [False] * 3)


def test_negatives_match_the_reference_and_are_other_masked_frames():
    rng = np.random.default_rng(2)
    mask = np.zeros((3, 20), bool)
    mask[0, 2:9] = True
    mask[1, [0, 5, 6, 19]] = True
    mask[2, 10:20] = True
    noise = rng.random((3, 20, 7)).astype("float32")
    got = _np(sample_negative_indices(noise, mask))
    np.testing.assert_array_equal(got, reference_negatives(noise, mask))
    for b in range(3):
        for t in np.flatnonzero(mask[b]):
            assert mask[b, got[b, t]].all()
            assert (got[b, t] != t).all()


def test_negatives_are_uniform_over_the_other_masked_frames():
    rng = np.random.default_rng(3)
    mask = np.zeros((1, 30), bool)
    mask[0, [3, 4, 10, 20, 29]] = True
    got = _np(sample_negative_indices(rng.random((1, 30, 4000)).astype("float32"), mask))
    counts = np.bincount(got[0, 10], minlength=30)[[3, 4, 20, 29]]
    assert counts.sum() == 4000
    np.testing.assert_allclose(counts / 4000, 0.25, atol=0.03)


def reference_contrastive(c, q, neg, mask, kappa, drop_identical=True):
    def cos(a, b):
        return (a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))

    losses, hits = [], []
    for b in range(c.shape[0]):
        for t in np.flatnonzero(mask[b]):
            logits = [cos(c[b, t], q[b, t]) / kappa]
            for i in neg[b, t]:
                if i == t or (drop_identical and np.array_equal(q[b, i], q[b, t])):
                    logits.append(-np.inf)
                else:
                    logits.append(cos(c[b, t], q[b, i]) / kappa)
            logits = np.array(logits)
            log_z = np.log(np.sum(np.exp(logits - logits.max()))) + logits.max()
            losses.append(log_z - logits[0])
            hits.append(logits[0] > logits[1:].max())
    return np.mean(losses), np.mean(hits)


@pytest.mark.parametrize("drop_identical", [True, False])
def test_contrastive_loss_and_accuracy_match_the_reference(drop_identical):
    rng = np.random.default_rng(4)
    c = rng.normal(size=(2, 12, 6)).astype("float32")
    q = rng.normal(size=(2, 12, 6)).astype("float32")
    q[0, 5] = q[0, 3]  # a distractor equal to the positive is dropped
    q[1, 7] = 0.9 * c[1, 7] + 0.1 * q[1, 7]  # an easy positive
    mask = np.zeros((2, 12), bool)
    mask[0, 1:8] = True
    mask[1, 4:12] = True
    neg = _np(sample_negative_indices(rng.random((2, 12, 5)).astype("float32"), mask))
    neg[0, 3, 0] = 5  # the frame whose target equals frame 3's
    loss = _np(wav2vec2_contrastive_loss(c, q, neg, mask, 0.1, drop_identical))
    accuracy = _np(contrastive_accuracy(c, q, neg, mask, 0.1, drop_identical))
    ref_loss, ref_accuracy = reference_contrastive(c, q, neg, mask, 0.1,
                                                   drop_identical)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(accuracy, ref_accuracy)


def test_diversity_loss_is_zero_for_uniform_use_and_near_one_for_collapse():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 9, 2, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    mask = np.ones((2, 9), bool)
    mask[1, 6:] = False
    mean = probs[mask].mean(0)
    perplexity = np.exp(-(mean * np.log(mean)).sum(-1)).sum()
    np.testing.assert_allclose(_np(codebook_perplexity(probs, mask)), perplexity, rtol=1e-5)
    np.testing.assert_allclose(_np(diversity_loss(probs, mask)), (8 - perplexity) / 8, atol=1e-6)
    uniform = np.full((2, 9, 2, 4), 0.25)
    assert abs(float(_np(diversity_loss(uniform, mask)))) < 1e-5
    collapsed = np.zeros((2, 9, 2, 4))
    collapsed[..., 0] = 1.0
    np.testing.assert_allclose(_np(diversity_loss(collapsed, mask)), 6 / 8, rtol=1e-4)


def test_feature_penalty_is_the_mean_square_over_real_frames():
    z = np.arange(24, dtype="float32").reshape(2, 3, 4)
    mask = np.array([[True, True, False], [True, False, False]])
    expected = np.mean(np.square(z[mask]))
    np.testing.assert_allclose(_np(feature_penalty(z, mask)), expected, rtol=1e-6)


def test_a_collapsed_codebook_scores_perfectly_only_when_identical_are_dropped():
    """fairseq drops distractors equal to the truth: one code for every
    frame then gives a zero loss; keeping them gives chance, log(K + 1)."""
    rng = np.random.default_rng(6)
    c = rng.normal(size=(1, 10, 4)).astype("float32")
    q = np.ones((1, 10, 4), "float32")
    mask = np.ones((1, 10), bool)
    neg = _np(sample_negative_indices(rng.random((1, 10, 5)).astype("float32"), mask))
    dropped = _np(wav2vec2_contrastive_loss(c, q, neg, mask, 0.1, True))
    kept = _np(wav2vec2_contrastive_loss(c, q, neg, mask, 0.1, False))
    assert dropped == pytest.approx(0.0, abs=1e-6)
    assert kept == pytest.approx(np.log(6.0), rel=1e-5)
