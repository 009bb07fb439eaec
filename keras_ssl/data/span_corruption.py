"""T5's span corruption, and text-to-text pairs, as encoder-decoder batches.

"We randomly sample and then drop out 15% of tokens in the input sequence.
All consecutive spans of dropped-out tokens are replaced by a single sentinel
token. Each sentinel token is assigned a token ID that is unique to the
sequence. [...] The target then corresponds to all of the dropped-out spans
of tokens, delimited by the same sentinel tokens used in the input sequence
plus a final sentinel token to mark the end of the target sequence."
(Raffel et al., 2020, §3.1.4; the objective of §3.3.4 with a mean span
length of 3.)

```
original:  Thank you  for inviting  me to your party  last  week .
inputs:    Thank you  <extra_id_0>  me to your party  <extra_id_1>  week . </s>
targets:   <extra_id_0> for inviting <extra_id_1> last <extra_id_2> </s>
```

The functions follow T5's code (`random_spans_noise_mask`,
`noise_span_to_unique_sentinel`, `nonnoise_span_to_unique_sentinel` and
`random_spans_helper` in google-research/text-to-text-transfer-transformer
`t5/data/preprocessors.py`), in NumPy:

- `num_noise = round(length · noise_density)` (at least 1, at most
  `length − 1`), `num_spans = round(num_noise / mean_span_length)` (at least
  1); the noise and the non-noise tokens are each cut into `num_spans`
  non-empty spans by a uniformly random segmentation, and the spans
  alternate non-noise, noise, non-noise, ..., beginning with non-noise. Two
  noise spans are therefore never adjacent.
- The inputs keep the non-noise tokens and put one sentinel in place of each
  noise span; the targets keep the noise tokens and put one sentinel in
  place of each non-noise span; both end with EOS (`</s>`). The k-th
  sentinel of the targets precedes the span that the k-th sentinel of the
  inputs stands for.
- A random mask, as in T5's code, ends with a noise span, so its targets
  end with that span and EOS; a text whose last tokens are kept (the paper's
  example above, with its mask given) gets the final sentinel before EOS.
- Sentinels are the tokenizer's `<extra_id_0>`, `<extra_id_1>`, ... pieces
  (`keras_ssl.data.tokenizers.train_sentencepiece` reserves them), in order
  of appearance; T5's vocabulary numbers them downwards from its end, which
  is the same thing under other ids.
- Documents are tokenized once, concatenated and cut into rows of the
  number of tokens that, corrupted, fill `inputs_length` exactly (T5's
  `reduce_concat_tokens` and `split_tokens` with `random_spans_helper`).
  The corruption is drawn again in every epoch (each pass over the
  `tf.data` pipeline), from `seed` and the epoch number.

Batches are what `keras_hub.models.T5Backbone` (and
`keras_ssl.models.T5SpanCorruption`) take, packed as keras-hub's
`T5Seq2SeqLMPreprocessor` packs them: `(x, y, sample_weight)` with
`x = {"encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
"decoder_padding_mask"}`, the decoder inputs being the targets shifted right
by the decoder start id (T5's pad id, 0), `y` the targets and
`sample_weight` 1 on the target tokens, 0 on padding.
"""

from __future__ import annotations

import warnings

import numpy as np

from keras_ssl.data.tokenizers import check_texts, token_id_lists
from keras_ssl.data.tokenizers import sentinel_ids as tokenizer_sentinel_ids

#: The paper's span-corruption settings (§3.3.4): 15% noise, spans of 3.
NOISE_DENSITY = 0.15
MEAN_SPAN_LENGTH = 3.0


def _check_rates(noise_density, mean_span_length):
    if not 0.0 <= float(noise_density) < 1.0:
        raise ValueError(
            f"noise_density must be in [0, 1) (the paper uses {NOISE_DENSITY}), "
            f"got {noise_density}."
        )
    if not float(mean_span_length) >= 1.0:
        raise ValueError(
            "mean_span_length must be at least 1 token (the paper uses "
            f"{MEAN_SPAN_LENGTH}), got {mean_span_length}."
        )


def _round(x):
    # T5 rounds float32 values half-to-even (`tf.round`); so does NumPy.
    return int(np.round(np.float32(x)))


def _num_noise_and_spans(length, noise_density, mean_span_length):
    """`(num_noise_tokens, num_noise_spans)` of a row of `length` tokens."""
    length = max(int(length), 2)
    num_noise = _round(np.float32(length) * np.float32(noise_density))
    num_noise = min(max(num_noise, 1), length - 1)
    num_spans = max(_round(np.float32(num_noise) / np.float32(mean_span_length)), 1)
    # T5 assumes as many non-noise tokens as spans (true below ~75% noise).
    return num_noise, min(num_spans, length - num_noise)


def random_spans_noise_mask(
    length, noise_density=NOISE_DENSITY, mean_span_length=MEAN_SPAN_LENGTH,
    seed=None,
):
    """T5's noise mask of random spans (`random_spans_noise_mask`).

    Args:
        length: the number of tokens.
        noise_density: the fraction of tokens to corrupt (0.15).
        mean_span_length: the mean length of a noise span (3).
        seed: an int, a `np.random.Generator` or None.

    Returns:
        A bool array `(length,)`, True on noise tokens: `round(length ·
        noise_density)` of them in `round(num_noise / mean_span_length)`
        spans, alternating with as many non-noise spans, non-noise first.

    Example:

    >>> mask = random_spans_noise_mask(20, seed=0)
    >>> int(mask.sum()), bool(mask[0])
    (3, False)
    """
    _check_rates(noise_density, mean_span_length)
    length = int(length)
    if length < 0:
        raise ValueError(f"length must be non-negative, got {length}.")
    if float(noise_density) == 0.0 or length == 0:
        return np.zeros(length, bool)
    rng = np.random.default_rng(seed)
    orig_length, length = length, max(length, 2)  # T5: avoid degeneracy
    num_noise, num_spans = _num_noise_and_spans(
        length, noise_density, mean_span_length
    )

    def random_segmentation(num_items, num_segments):
        # `num_segments` non-empty segments of `num_items`, uniformly.
        starts = (np.arange(num_items - 1) < num_segments - 1).astype(np.int64)
        first_in_segment = np.concatenate([[0], rng.permutation(starts)])
        return np.bincount(np.cumsum(first_in_segment), minlength=num_segments)

    noise_lengths = random_segmentation(num_noise, num_spans)
    nonnoise_lengths = random_segmentation(length - num_noise, num_spans)
    interleaved = np.stack([nonnoise_lengths, noise_lengths], axis=1).reshape(-1)
    span_starts = np.cumsum(interleaved)[:-1]
    span_start_indicator = np.zeros(length, np.int64)
    np.add.at(span_start_indicator, span_starts, 1)
    is_noise = np.cumsum(span_start_indicator) % 2 == 1
    return is_noise[:orig_length]


def _spans_to_sentinels(tokens, mask, sentinels, what):
    """T5's `noise_span_to_unique_sentinel`: each run of `mask` → the next
    sentinel."""
    previous = np.concatenate([[False], mask[:-1]])
    first = mask & ~previous
    num_spans = int(first.sum())
    if num_spans > len(sentinels):
        raise ValueError(
            f"span corruption needs {num_spans} sentinels for the {what} of "
            f"this row but the tokenizer has only {len(sentinels)} "
            "(<extra_id_0>, ...): train it with more "
            "(`train_sentencepiece(..., num_sentinels=...)`) or use shorter "
            "rows."
        )
    sentinels = np.asarray(sentinels, tokens.dtype)
    index = np.clip(np.cumsum(first) - 1, 0, max(len(sentinels) - 1, 0))
    replaced = np.where(first, sentinels[index] if len(sentinels) else 0, tokens)
    return replaced[~(mask & previous)]


def span_corruption(
    token_ids,
    sentinel_ids,
    noise_mask=None,
    noise_density=NOISE_DENSITY,
    mean_span_length=MEAN_SPAN_LENGTH,
    seed=None,
    eos_id=None,
):
    """Span-corrupts one sequence of token ids: `(inputs, targets)`.

    Args:
        token_ids: a 1-D sequence of ints (one row, without EOS).
        sentinel_ids: the ids of `<extra_id_0>`, `<extra_id_1>`, ..., in
            order (`keras_ssl.data.tokenizers.sentinel_ids(tokenizer)`).
        noise_mask: an optional bool array like `token_ids`, True on the
            tokens to drop; default: `random_spans_noise_mask`.
        noise_density, mean_span_length, seed: of the random mask.
        eos_id: appended to both sequences when given (T5's `</s>`).

    Returns:
        Two int32 arrays: the inputs (non-noise tokens, one sentinel per
        noise span) and the targets (each sentinel followed by the span it
        replaced; a sentinel also in place of a trailing non-noise span).

    Raises:
        ValueError: for an empty row, a mask of another length, or fewer
            sentinels than spans.

    Example (the paper's, on word ids):

    >>> words = "Thank you for inviting me to your party last week .".split()
    >>> ids = np.arange(len(words)) + 10
    >>> mask = np.isin(words, ["for", "inviting", "last"])
    >>> inputs, targets = span_corruption(ids, [1, 2, 3], mask)
    >>> inputs.tolist(), targets.tolist()
    ([10, 11, 1, 14, 15, 16, 17, 2, 19, 20], [1, 12, 13, 2, 18, 3])
    """
    tokens = np.asarray(token_ids)
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError(
            "span_corruption takes one non-empty row of token ids (rank 1); "
            f"got shape {tokens.shape}."
        )
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(
            f"span_corruption takes integer token ids, got dtype {tokens.dtype}."
        )
    tokens = tokens.astype(np.int32)
    if noise_mask is None:
        noise_mask = random_spans_noise_mask(
            tokens.size, noise_density, mean_span_length, seed
        )
    noise_mask = np.asarray(noise_mask).astype(bool)
    if noise_mask.shape != tokens.shape:
        raise ValueError(
            f"the noise mask must have the shape of the token ids, "
            f"{tokens.shape}; got {noise_mask.shape}."
        )
    sentinels = [int(s) for s in sentinel_ids]
    inputs = _spans_to_sentinels(tokens, noise_mask, sentinels, "inputs")
    targets = _spans_to_sentinels(tokens, ~noise_mask, sentinels, "targets")
    if eos_id is not None:
        inputs = np.append(inputs, np.int32(eos_id))
        targets = np.append(targets, np.int32(eos_id))
    return inputs.astype(np.int32), targets.astype(np.int32)


def fill_spans(inputs, targets, sentinel_ids, eos_id=None):
    """The original sequence back from span-corrupted `inputs` and
    `targets` (or from a model's predicted targets): each sentinel of the
    inputs is replaced by the tokens that follow the same sentinel in the
    targets (none when the targets lack it). A trailing `eos_id` is removed
    from both first.

    Example:

    >>> fill_spans([10, 1, 13, 2], [1, 11, 12, 2, 14], [1, 2, 3]).tolist()
    [10, 11, 12, 13, 14]
    """
    inputs, targets = [int(t) for t in inputs], [int(t) for t in targets]
    if eos_id is not None:
        inputs = inputs[:-1] if inputs and inputs[-1] == eos_id else inputs
        targets = targets[:-1] if targets and targets[-1] == eos_id else targets
    sentinels = {int(s): k for k, s in enumerate(sentinel_ids)}
    spans, current = {}, None
    for token in targets:
        if token in sentinels:
            current = sentinels[token]
            spans.setdefault(current, [])
        elif current is not None:
            spans[current].append(token)
    filled = []
    for token in inputs:
        if token in sentinels:
            filled.extend(spans.get(sentinels[token], []))
        else:
            filled.append(token)
    return np.asarray(filled, np.int32)


def span_corruption_lengths(
    inputs_length, noise_density=NOISE_DENSITY, mean_span_length=MEAN_SPAN_LENGTH
):
    """T5's `random_spans_helper`: `(tokens_length, targets_length)`.

    `tokens_length` is the longest row of raw tokens whose corrupted inputs
    (EOS included) fit `inputs_length`; `targets_length` is the length of
    its targets (EOS included). E.g. T5's 512 → (568, 114).
    """
    _check_rates(noise_density, mean_span_length)
    inputs_length = int(inputs_length)
    if inputs_length < 3:
        raise ValueError(
            "inputs_length must be at least 3 (a token, a sentinel and EOS); "
            f"got {inputs_length}."
        )

    def lengths(tokens_length):
        # T5's formula, with the mask's guards (>= 1 noise token, >= 1 span)
        # that only change short rows.
        num_noise, num_spans = _num_noise_and_spans(
            tokens_length, noise_density, mean_span_length
        )
        return (
            tokens_length - num_noise + num_spans + 1,
            num_noise + num_spans + 1,
        )

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    while lengths(tokens_length)[0] > inputs_length:
        tokens_length -= 1
    targets_length = lengths(tokens_length)[1]
    return tokens_length, targets_length


# --- tokenizers --------------------------------------------------------------
def _special_ids(tokenizer):
    """`(pad_id, eos_id)` of a T5-style tokenizer, or a clear error."""
    pad = getattr(tokenizer, "pad_token_id", None)
    eos = getattr(tokenizer, "end_token_id", None)
    if pad is None or eos is None:
        raise ValueError(
            "span corruption needs a T5-style tokenizer with a pad and an end "
            "token (`<pad>`, `</s>`), such as "
            "`keras_ssl.data.tokenizers.train_sentencepiece(...)` (a "
            f"keras_hub T5Tokenizer); got {type(tokenizer).__name__}."
        )
    return int(pad), int(eos)


def _sentinels(tokenizer):
    ids = tokenizer_sentinel_ids(tokenizer)
    if not ids:
        raise ValueError(
            "the tokenizer has no sentinel tokens (<extra_id_0>, "
            "<extra_id_1>, ...) for span corruption: train it with "
            "`keras_ssl.data.tokenizers.train_sentencepiece(texts, "
            "num_sentinels=...)`."
        )
    return ids


# --- packing -----------------------------------------------------------------
def pack_example(input_ids, target_ids, inputs_length, targets_length, pad_id):
    """One encoder-decoder example, packed like keras-hub's
    `T5Seq2SeqLMPreprocessor`: `(x, y, sample_weight)` as NumPy arrays.

    `input_ids` and `target_ids` already end with EOS; the decoder inputs are
    `[pad_id] + target_ids[:-1]` (T5 starts decoding from its pad id).
    """
    n_in, n_out = len(input_ids), len(target_ids)
    if n_in > inputs_length or n_out > targets_length:
        raise ValueError(
            f"an example of {n_in} input and {n_out} target tokens does not fit "
            f"inputs_length={inputs_length} and targets_length={targets_length}."
        )
    encoder = np.full(inputs_length, pad_id, np.int32)
    encoder[:n_in] = input_ids
    targets = np.full(targets_length, pad_id, np.int32)
    targets[:n_out] = target_ids
    decoder = np.full(targets_length, pad_id, np.int32)
    decoder[1:n_out] = target_ids[:-1]
    weights = (np.arange(targets_length) < n_out).astype(np.int32)
    x = {
        "encoder_token_ids": encoder,
        "encoder_padding_mask": (np.arange(inputs_length) < n_in).astype(np.int32),
        "decoder_token_ids": decoder,
        "decoder_padding_mask": weights.copy(),
    }
    return x, targets, weights


def _signature(inputs_length, targets_length):
    import tensorflow as tf

    spec = lambda n: tf.TensorSpec((n,), tf.int32)  # noqa: E731
    x = {
        "encoder_token_ids": spec(inputs_length),
        "encoder_padding_mask": spec(inputs_length),
        "decoder_token_ids": spec(targets_length),
        "decoder_padding_mask": spec(targets_length),
    }
    return x, spec(targets_length), spec(targets_length)


def _finish(dataset, batch_size, repeat):
    import tensorflow as tf

    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    dataset = dataset.batch(batch_size)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


# --- data sets ---------------------------------------------------------------
def span_corruption_rows(documents, tokenizer, tokens_length):
    """The documents' tokens, concatenated and cut into rows of
    `tokens_length` (the last one may be shorter): T5's
    `reduce_concat_tokens` + `split_tokens`."""
    documents = check_texts(documents, "span_corruption_dataset")
    tokens = np.concatenate(
        [np.asarray(t, np.int32) for t in token_id_lists(tokenizer, documents)]
    )
    return [tokens[i : i + tokens_length] for i in range(0, len(tokens), tokens_length)]


def span_corruption_dataset(
    documents,
    tokenizer,
    inputs_length,
    targets_length=None,
    batch_size=32,
    noise_density=NOISE_DENSITY,
    mean_span_length=MEAN_SPAN_LENGTH,
    seed=0,
    repeat=False,
    shuffle=True,
):
    """A `tf.data` pipeline of T5 span-corruption batches of `documents`.

    Args:
        documents: strings (e.g. `load_python_docs().documents`).
        tokenizer: a T5-style keras-hub tokenizer with `<pad>`, `</s>` and
            sentinels (`keras_ssl.data.tokenizers.train_sentencepiece`).
        inputs_length: the encoder length (T5: 512); rows hold the number of
            raw tokens whose corruption fills it (`span_corruption_lengths`).
        targets_length: the decoder length (default, and minimum: what the
            targets of a full row need; T5: 114).
        batch_size: rows per batch.
        noise_density, mean_span_length: the corruption (0.15, 3).
        seed: of the row order and of the corruption, drawn anew in each
            epoch from `(seed, epoch)`.
        repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
        shuffle: shuffle the rows in each epoch.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)` (see the module
        docstring), int32.

    Example:

    ```python
    from keras_ssl.datasets.text_corpus import load_python_docs
    from keras_ssl.data.tokenizers import train_sentencepiece
    corpus = load_python_docs()
    tokenizer = train_sentencepiece(corpus.documents, 1000, num_sentinels=32)
    data = span_corruption_dataset(corpus.documents, tokenizer,
                                   inputs_length=128, batch_size=32)
    x, y, sample_weight = next(iter(data))
    ```
    """
    import tensorflow as tf

    pad_id, eos_id = _special_ids(tokenizer)
    sentinels = _sentinels(tokenizer)
    tokens_length, needed_targets = span_corruption_lengths(
        inputs_length, noise_density, mean_span_length
    )
    inputs_length = int(inputs_length)
    if targets_length is None:
        targets_length = needed_targets
    targets_length = int(targets_length)
    if targets_length < needed_targets:
        raise ValueError(
            f"targets_length={targets_length} is too short: rows corrupted to "
            f"inputs_length={inputs_length} have targets of {needed_targets} "
            f"tokens (sentinels and EOS included); pass targets_length >= "
            f"{needed_targets} or None."
        )
    _, num_spans = _num_noise_and_spans(tokens_length, noise_density, mean_span_length)
    if num_spans > len(sentinels):
        raise ValueError(
            f"span corruption of rows of {tokens_length} tokens "
            f"(inputs_length={inputs_length}) makes {num_spans} spans, but the "
            f"tokenizer has only {len(sentinels)} sentinels (<extra_id_0>, ...)"
            ": train it with more (`num_sentinels=`) or lower inputs_length."
        )
    rows = span_corruption_rows(documents, tokenizer, tokens_length)
    epochs = [0]  # the pipeline's passes so far: each draws new corruptions

    def examples():
        rng = np.random.default_rng([int(seed), epochs[0]])
        epochs[0] += 1
        order = rng.permutation(len(rows)) if shuffle else range(len(rows))
        for i in order:
            mask = random_spans_noise_mask(
                len(rows[i]), noise_density, mean_span_length, rng
            )
            inputs, targets = span_corruption(
                rows[i], sentinels, mask, eos_id=eos_id
            )
            yield pack_example(inputs, targets, inputs_length, targets_length, pad_id)

    dataset = tf.data.Dataset.from_generator(
        examples, output_signature=_signature(inputs_length, targets_length)
    )
    return _finish(dataset, batch_size, repeat)


def encode_text_to_text(
    inputs, targets, tokenizer, inputs_length, targets_length, prefix=None,
    truncate=False,
):
    """Packed NumPy arrays `(x, y, sample_weight)` of text-to-text pairs
    (see `text_to_text_dataset`)."""
    pad_id, eos_id = _special_ids(tokenizer)
    inputs = check_texts(inputs, "text_to_text_dataset", "input")
    targets = check_texts(targets, "text_to_text_dataset", "target")
    if len(inputs) != len(targets):
        raise ValueError(
            f"text_to_text needs one target per input; got {len(inputs)} "
            f"inputs and {len(targets)} targets."
        )
    if prefix:
        inputs = [f"{prefix.rstrip()} {text}" for text in inputs]
    rows = []
    for what, texts, length in (
        ("input", inputs, int(inputs_length)),
        ("target", targets, int(targets_length)),
    ):
        ids = token_id_lists(tokenizer, texts)
        for i, row in enumerate(ids):
            if len(row) + 1 > length:
                message = (
                    f"text_to_text {what} {i} has {len(row)} tokens (+ EOS), "
                    f"more than its length {length}"
                )
                if not truncate:
                    raise ValueError(
                        f"{message}; raise the length or pass truncate=True."
                    )
                warnings.warn(f"{message}: truncated.", stacklevel=3)
                ids[i] = row[: length - 1]
        rows.append([row + [eos_id] for row in ids])
    packed = [
        pack_example(a, b, int(inputs_length), int(targets_length), pad_id)
        for a, b in zip(*rows)
    ]
    x = {k: np.stack([p[0][k] for p in packed]) for k in packed[0][0]}
    return x, np.stack([p[1] for p in packed]), np.stack([p[2] for p in packed])


def text_to_text_dataset(
    inputs,
    targets,
    tokenizer,
    inputs_length,
    targets_length,
    batch_size=32,
    prefix=None,
    shuffle=True,
    seed=0,
    repeat=False,
    truncate=False,
):
    """A `tf.data` pipeline of text-to-text pairs, for fine-tuning the model
    that span corruption pre-trained (T5's "task prefix: input" → target).

    Args:
        inputs: strings, the encoder texts.
        targets: strings, what the decoder must write, one per input.
        tokenizer: the T5-style tokenizer of the model.
        inputs_length, targets_length: the encoder and decoder lengths, EOS
            included.
        batch_size: pairs per batch.
        prefix: the task prefix put before each input with one space (T5:
            "summarize:", "translate English to German:").
        shuffle, seed: shuffle the pairs in each epoch, seeded.
        repeat: repeat forever.
        truncate: cut over-long texts (with a warning) instead of raising.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)` like
        `span_corruption_dataset`.

    Example:

    ```python
    data = text_to_text_dataset(["a b c", "d e"], ["c b a", "e d"], tokenizer,
                                inputs_length=16, targets_length=8,
                                batch_size=2, prefix="reverse:")
    ```
    """
    import tensorflow as tf

    x, y, weights = encode_text_to_text(
        inputs, targets, tokenizer, inputs_length, targets_length, prefix,
        truncate,
    )
    dataset = tf.data.Dataset.from_tensor_slices((x, y, weights))
    if shuffle:
        dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return _finish(dataset, batch_size, repeat)
