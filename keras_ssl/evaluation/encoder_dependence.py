"""Does an encoder-decoder's decoder read its encoder?

A decoder trained by teacher forcing can lower its loss on its own: its
causal context already tells it much of the next target token. Whether it
also uses the encoder is measured by taking the encoder away from each
example: the held-out loss with every example's own encoder input, against
the loss when each example gets the encoder input of the next example in
its batch (rolled by one, so none keeps its own), the decoder side and the
targets unchanged. The difference, `gain`, is in nats per target token:
about 0 when the decoder ignores the encoder, large when the targets can
only be known from it (a model that learned to fill span-corruption gaps,
or a fine-tuned text-to-text task).

Example:

```python
from keras_ssl.backbones import t5_backbone
from keras_ssl.data.span_corruption import span_corruption_dataset
from keras_ssl.data.tokenizers import train_sentencepiece
from keras_ssl.datasets.text_corpus import load_python_docs
from keras_ssl.evaluation import encoder_dependence
from keras_ssl.models.span_corruption import T5SpanCorruption

corpus = load_python_docs()
tokenizer = train_sentencepiece(corpus.documents, 1000, num_sentinels=32)
model = T5SpanCorruption(t5_backbone(
    vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
    hidden_dim=32, intermediate_dim=64), tokenizer)
held_out = span_corruption_dataset(corpus.test_documents, tokenizer, 64,
                                   shuffle=False)
scores = encoder_dependence(model, held_out)
scores["gain"]  # nats per target token the encoder is worth (untrained: ~0)
```
"""

import numpy as np
from keras import ops

from keras_ssl.losses.masked_tokens import masked_token_loss

_ENCODER_KEYS = ("encoder_token_ids", "encoder_padding_mask")


def _batches(dataset):
    if isinstance(dataset, (tuple, list)) and len(dataset) == 3 and isinstance(
        dataset[0], dict
    ):
        dataset = [dataset]
    elif hasattr(dataset, "as_numpy_iterator"):
        dataset = dataset.as_numpy_iterator()
    for batch in dataset:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 3
                and isinstance(batch[0], dict)
                and all(k in batch[0] for k in _ENCODER_KEYS)):
            raise ValueError(
                "encoder_dependence expects batches (x, y, sample_weight) with "
                f"x holding {list(_ENCODER_KEYS)} (what `span_corruption_dataset` "
                "and `text_to_text_dataset` yield)."
            )
        x, y, weights = batch
        yield ({k: np.asarray(v) for k, v in x.items()}, np.asarray(y),
               np.asarray(weights, "float32"))


def _summed_loss(model, x, y, weights):
    logits = model(x, training=False)
    count = float(weights.sum())
    return float(ops.convert_to_numpy(masked_token_loss(logits, y, weights))) * count, count


def encoder_dependence(model, dataset):
    """The held-out loss of an encoder-decoder with and without its encoder
    inputs (see the module docstring).

    Args:
        model: returns target logits `(B, L_dec, V)` from the dict of a
            `T5Backbone` (`keras_ssl.models.T5SpanCorruption`).
        dataset: batches `(x, y, sample_weight)`, e.g. a
            `span_corruption_dataset(..., repeat=False)`; batches of one
            example are skipped (there is nothing to swap with).

    Returns:
        `{"loss", "shuffled_encoder_loss", "gain"}`: mean cross-entropy
        (nats) per weighted target token with each example's own encoder
        input, with the next example's, and their difference.

    Raises:
        ValueError: for batches of another structure, or no batch of two or
            more examples.
    """
    own = shuffled = count = 0.0
    for x, y, weights in _batches(dataset):
        if len(y) < 2:
            continue
        loss, n = _summed_loss(model, x, y, weights)
        swapped = dict(x)
        for key in _ENCODER_KEYS:
            swapped[key] = np.roll(x[key], 1, axis=0)
        other, _ = _summed_loss(model, swapped, y, weights)
        own, shuffled, count = own + loss, shuffled + other, count + n
    if count == 0:
        raise ValueError(
            "encoder_dependence needs at least one batch of two or more "
            "examples with target tokens."
        )
    own, shuffled = own / count, shuffled / count
    return {"loss": own, "shuffled_encoder_loss": shuffled, "gain": shuffled - own}
