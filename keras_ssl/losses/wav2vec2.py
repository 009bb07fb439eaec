"""wav2vec 2.0's masking, negative sampling and loss terms, in `keras.ops`.

Every function is pure: randomness comes in as uniform noise, so that the
model draws it from its `SeedGenerator` (fresh every step, jit-compiled) and
the tests pass fixed noise and compare with a NumPy reference. Shapes are
static: masks are `(B, T)` weights, not gathered lists of masked frames, so
nothing inside the jitted step depends on how many frames a draw masked.

The paper (Baevski et al., 2020, section 3.1 and 3.2):

- masking: "we randomly sample without replacement a certain proportion p of
  all time steps to be starting indices and then mask the subsequent M
  consecutive time steps from every sampled index; spans may overlap"
  (p = 0.065, M = 10: about 49% of the frames);
- contrastive loss: "the model needs to identify the true quantized latent
  speech representation q_t in a set of K + 1 quantized candidate
  representations q̃ ∈ Q_t which includes q_t and K distractors. Distractors
  are uniformly sampled from other masked time steps of the same
  utterance": `L_m = −log exp(sim(c_t, q_t)/κ) / Σ_q̃ exp(sim(c_t, q̃)/κ)`,
  cosine similarity, κ = 0.1, K = 100;
- diversity loss: "to encourage the equal use of the V entries in each of
  the G codebooks [...] we maximize the entropy of the averaged softmax
  distribution over the codebook entries p̄_g across a batch";
- the total `L = L_m + α L_d` with α = 0.1, and fairseq's code adds a
  feature penalty (the mean square of the latent frames, weight 10).
"""

from keras import ops

_NEG_INF = -1e9


def span_mask(noise, rounding, frame_mask, mask_prob=0.065, mask_length=10,
              min_spans=1):
    """wav2vec 2.0's span mask `(B, T)`, bool, from uniform noise.

    Per utterance of `n` real frames, `floor(mask_prob · n + u)` start frames
    (fairseq's random rounding, `u` = `rounding`; at least `min_spans`) are
    drawn without replacement among the frames `0 … n − mask_length` (the
    ones with the lowest `noise`); each start masks itself and the next
    `mask_length − 1` frames; spans may overlap. Padding is never masked.

    Args:
        noise: `(B, T)` uniform noise in [0, 1): which frames start spans.
        rounding: `(B,)` uniform noise in [0, 1): the random rounding of the
            number of spans.
        frame_mask: `(B, T)` bool, True on real (non-padding) frames, a
            prefix of each row.
        mask_prob: p, the proportion of frames that start a span.
        mask_length: M, the span length in frames.
        min_spans: the fewest spans per utterance.
    """
    frame_mask = ops.cast(frame_mask, "bool")
    num_frames = ops.shape(noise)[1]
    lengths = ops.sum(ops.cast(frame_mask, "int32"), axis=1)
    positions = ops.arange(num_frames, dtype="int32")[None, :]
    last_start = ops.maximum(lengths - mask_length, 0)[:, None]
    can_start = ops.logical_and(
        ops.less_equal(positions, last_start), frame_mask)
    num_spans = ops.floor(
        mask_prob * ops.cast(lengths, "float32") + ops.cast(rounding, "float32"))
    num_spans = ops.minimum(
        ops.maximum(ops.cast(num_spans, "int32"), min_spans),
        ops.sum(ops.cast(can_start, "int32"), axis=1),
    )
    scores = ops.where(can_start, ops.cast(noise, "float32"), 2.0)
    ranks = ops.argsort(ops.argsort(scores, axis=1), axis=1)
    starts = ops.cast(ops.less(ranks, num_spans[:, None]), "int32")
    # Frame t is masked when a span starts in [t − M + 1, t].
    started = ops.cumsum(starts, axis=1)
    shifted = ops.pad(started, ((0, 0), (mask_length, 0)))[:, :num_frames]
    masked = ops.greater(started - shifted, 0)
    return ops.logical_and(masked, frame_mask)


def sample_negative_indices(noise, mask):
    """For every frame, K distractor frames among the utterance's other
    masked frames: `(B, T, K)` int32 indices into the time axis.

    Each of the K draws is uniform over the masked frames of the same row
    other than the frame itself (fairseq's `sample_negatives`: draw among
    `n − 1` and skip over the frame's own rank). Frames that are not masked
    get indices too (they are not scored). A row with a single masked frame
    can only draw that frame: the loss then scores no distractor for it
    (`contrastive_logits` drops distractors equal to the positive).

    Args:
        noise: `(B, T, K)` uniform noise in [0, 1).
        mask: `(B, T)` bool, the masked frames.
    """
    mask = ops.cast(mask, "int32")
    num_frames = ops.shape(mask)[1]
    positions = ops.arange(num_frames, dtype="int32")[None, :]
    count = ops.sum(mask, axis=1)
    # The masked frames' positions first, in order.
    order = ops.argsort(
        ops.where(ops.cast(mask, "bool"), positions, positions + num_frames),
        axis=1,
    )
    order = ops.cast(order, "int32")
    own_rank = ops.cumsum(mask, axis=1) - 1
    is_masked = ops.cast(mask, "bool")[:, :, None]
    # A masked frame draws among the n − 1 others, an unmasked one among n.
    choices = ops.where(is_masked, count[:, None, None] - 1, count[:, None, None])
    choices = ops.maximum(choices, 1)
    draw = ops.cast(
        ops.floor(ops.cast(noise, "float32") * ops.cast(choices, "float32")),
        "int32",
    )
    draw = ops.minimum(draw, choices - 1)
    skip = ops.logical_and(is_masked, ops.greater_equal(draw, own_rank[:, :, None]))
    draw = ops.where(skip, draw + 1, draw)
    draw = ops.minimum(draw, ops.maximum(count - 1, 0)[:, None, None])
    batch, _, k = ops.shape(noise)
    flat = ops.reshape(draw, (batch, -1))
    picked = ops.take_along_axis(order, flat, axis=1)
    return ops.reshape(picked, (batch, num_frames, k))


def _cosine(a, b):
    a = a / ops.sqrt(ops.maximum(ops.sum(ops.square(a), -1, keepdims=True), 1e-12))
    b = b / ops.sqrt(ops.maximum(ops.sum(ops.square(b), -1, keepdims=True), 1e-12))
    return ops.sum(a * b, axis=-1)


def contrastive_logits(context, quantized, negative_indices, temperature=0.1,
                       drop_identical=True):
    """`(B, T, 1 + K)` logits `sim(c_t, q̃) / κ`, the true `q_t` first.

    Args:
        context: `(B, T, F)` context-network outputs (after the final
            projection).
        quantized: `(B, T, F)` quantised latents, the targets.
        negative_indices: `(B, T, K)` frames whose `quantized` are the
            distractors (`sample_negative_indices`).
        temperature: κ (paper: 0.1).

    A distractor that is the frame itself gets −∞. One whose quantised
    latent equals the true one (the same codebook entries) gets −∞ too with
    `drop_identical=True`, as in fairseq; that makes a collapsed codebook a
    perfect score (every distractor dropped), which small models on little
    data fall into; with `drop_identical=False` such a distractor stays a
    candidate as good as the truth, so the loss itself asks for distinct
    codes.
    """
    context = ops.cast(context, "float32")
    quantized = ops.cast(quantized, "float32")
    batch, num_frames, k = ops.shape(negative_indices)
    flat = ops.reshape(negative_indices, (batch, -1))
    negatives = ops.take_along_axis(quantized, flat[:, :, None], axis=1)
    negatives = ops.reshape(negatives, (batch, num_frames, k, -1))
    positive = _cosine(context, quantized)[:, :, None]
    negative = _cosine(context[:, :, None, :], negatives)
    same = ops.equal(
        negative_indices,
        ops.arange(num_frames, dtype=negative_indices.dtype)[None, :, None],
    )
    if drop_identical:
        same = ops.logical_or(
            same, ops.all(ops.equal(negatives, quantized[:, :, None, :]), axis=-1))
    logits = ops.concatenate([positive, negative], axis=-1) / temperature
    invalid = ops.concatenate(
        [ops.zeros_like(same[:, :, :1]), same], axis=-1)
    return ops.where(invalid, _NEG_INF, logits)


def _masked_mean(values, mask):
    weights = ops.cast(mask, "float32")
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def wav2vec2_contrastive_loss(context, quantized, negative_indices, mask,
                              temperature=0.1, drop_identical=True):
    """L_m: mean over masked frames of `−log softmax(logits)[true]`.

    Args:
        context, quantized, negative_indices, temperature, drop_identical:
            as `contrastive_logits`.
        mask: `(B, T)` the masked frames, the only ones scored.
    """
    logits = contrastive_logits(context, quantized, negative_indices,
                                temperature, drop_identical)
    nll = -ops.log_softmax(logits, axis=-1)[:, :, 0]
    return _masked_mean(nll, mask)


def contrastive_accuracy(context, quantized, negative_indices, mask,
                         temperature=0.1, drop_identical=True):
    """The fraction of masked frames whose true latent has the top logit
    (ties with identical distractors count as misses)."""
    logits = contrastive_logits(context, quantized, negative_indices,
                                temperature, drop_identical)
    correct = ops.cast(
        ops.greater(logits[:, :, 0], ops.max(logits[:, :, 1:], axis=-1)), "float32")
    return _masked_mean(correct, mask)


def codebook_perplexity(probs, mask):
    """Σ_g exp(H(p̄_g)): the perplexity of the averaged codebook usage.

    `probs` `(B, T, G, V)` per-frame distributions over each codebook's
    entries (softmax probabilities, or one-hot codes for the perplexity of
    the codes actually chosen); `mask` `(B, T)` the frames averaged. Ranges
    from G (one entry per codebook) to G · V (uniform usage).
    """
    weights = ops.cast(mask, "float32")[:, :, None, None]
    probs = ops.cast(probs, "float32")
    mean = ops.sum(probs * weights, axis=(0, 1)) / ops.maximum(
        ops.sum(weights, axis=(0, 1)), 1.0)
    entropy = -ops.sum(mean * ops.log(mean + 1e-7), axis=-1)
    return ops.sum(ops.exp(entropy))


def diversity_loss(probs, mask):
    """L_d = (G·V − Σ_g exp(H(p̄_g))) / (G·V), fairseq's form of the paper's
    entropy term: 0 when every entry is used equally, near 1 when each
    codebook always picks one entry.

    Args:
        probs: `(B, T, G, V)` softmax probabilities of the quantizer's logits
            (no Gumbel noise).
        mask: `(B, T)` the frames whose usage is averaged.
    """
    num_codes = probs.shape[-2] * probs.shape[-1]
    return (num_codes - codebook_perplexity(probs, mask)) / num_codes


def feature_penalty(features, mask):
    """The mean square of the latent frames `z` over the real frames."""
    squares = ops.mean(ops.square(ops.cast(features, "float32")), axis=-1)
    return _masked_mean(squares, mask)
