"""Downstream text evaluation: does pretraining help a real labelled task?

Any of keras-hub's text backbones (`BertBackbone`, `RobertaBackbone`,
`GPT2Backbone`, the encoder of `T5Backbone`) becomes a text classifier:
token features averaged over the non-padding positions, then a linear layer.
`text_classification_scores` measures it two ways, on the same labelled
budget: a linear probe on the frozen features and end-to-end fine-tuning,
and `pretraining_gain` does so for a pretrained backbone and for the same
architecture at random initialisation, side by side.

The embedded task is "which document of the Python language reference is
this paragraph from" (`TextCorpus.labelled_paragraphs`): real labels, held
out by paragraph.

Example:

```python
import keras_hub
from keras_ssl.data.tokenizers import train_wordpiece
from keras_ssl.datasets import load_python_docs
from keras_ssl.evaluation.text import text_classification_scores

corpus = load_python_docs()
tokenizer = train_wordpiece(corpus.documents, 500)
backbone = keras_hub.models.BertBackbone(
    vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
    hidden_dim=16, intermediate_dim=32, max_sequence_length=64)
train = corpus.labelled_paragraphs("train", num_classes=4)
test = corpus.labelled_paragraphs("test", num_classes=4)
text_classification_scores(backbone, tokenizer, *train, *test,
                           sequence_length=64, fine_tune_epochs=1)
```
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops


def special_token_ids(tokenizer):
    """`(start or None, end, pad)` ids that frame one text for `tokenizer`'s
    model: `[CLS] … [SEP]` (BERT), `<s> … </s>` (RoBERTa),
    `<|endoftext|> …` (GPT-2 starts with it, as keras-hub does), `… </s>`
    (T5's encoder has no start token)."""
    import keras_hub

    for name in ("start_token_id", "end_token_id", "pad_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise ValueError(
                f"{type(tokenizer).__name__} has no {name}: use a keras-hub "
                "BERT, RoBERTa, GPT-2 or T5 tokenizer (keras_ssl.data.tokenizers)"
            )
    start = tokenizer.start_token_id
    if isinstance(tokenizer, keras_hub.tokenizers.T5Tokenizer):
        start = None
    return start, tokenizer.end_token_id, tokenizer.pad_token_id


def pack_texts(tokenizer, texts, sequence_length, truncate=True):
    """Token ids of `texts` framed by the model's special tokens and padded:
    `{"token_ids": (N, L) int32, "padding_mask": (N, L) bool}`.

    Args:
        truncate: cut texts longer than `sequence_length` (keeping the end
            token) with one warning naming how many; False raises instead.

    Raises:
        ValueError: for an empty text, or an over-long one without
            `truncate`.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text {i} is empty: every text needs some words")
    start, end, pad = special_token_ids(tokenizer)
    framing = 1 + (start is not None)
    if sequence_length <= framing:
        raise ValueError(f"sequence_length must exceed {framing}, got {sequence_length}")
    token_ids = np.full((len(texts), sequence_length), pad, "int32")
    padding_mask = np.zeros((len(texts), sequence_length), bool)
    from keras_ssl.data.tokenizers import token_id_lists

    too_long = 0
    for i, ids in enumerate(token_id_lists(tokenizer, texts)):
        room = sequence_length - framing
        if len(ids) > room:
            if not truncate:
                raise ValueError(
                    f"text {i} has {len(ids)} tokens, more than the "
                    f"{room} that fit in sequence_length={sequence_length}; "
                    "pass truncate=True to cut it"
                )
            too_long += 1
            ids = ids[:room]
        row = ([start] if start is not None else []) + ids + [end]
        token_ids[i, : len(row)] = row
        padding_mask[i, : len(row)] = True
    if too_long:
        warnings.warn(
            f"{too_long} of {len(texts)} texts were longer than "
            f"sequence_length={sequence_length} and were truncated",
            stacklevel=2,
        )
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def backbone_inputs(backbone, token_ids, padding_mask):
    """The input dict of `backbone` for one segment of tokens: segment ids
    of zeros for BERT, a one-token decoder for T5 (its encoder is used)."""
    names = {t.name for t in backbone.inputs} if backbone.inputs else set()
    token_ids = ops.convert_to_tensor(token_ids, "int32")
    padding_mask = ops.convert_to_tensor(padding_mask, "bool")
    if "encoder_token_ids" in names:
        batch = ops.shape(token_ids)[0]
        return {
            "encoder_token_ids": token_ids,
            "encoder_padding_mask": padding_mask,
            "decoder_token_ids": ops.zeros((batch, 1), "int32"),
            "decoder_padding_mask": ops.ones((batch, 1), "bool"),
        }
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    if "segment_ids" in names:
        inputs["segment_ids"] = ops.zeros_like(token_ids)
    return inputs


def pooled_output(outputs):
    """The pooled `[CLS]` feature `(B, D)` of a backbone that has one
    (keras-hub's `BertBackbone`: trained by next-sentence prediction)."""
    if isinstance(outputs, dict) and "pooled_output" in outputs:
        return outputs["pooled_output"]
    raise ValueError(
        "pooling='cls' needs a backbone with a 'pooled_output' (BertBackbone); "
        "use pooling='mean'"
    )


def sequence_output(outputs):
    """The per-token features `(B, L, D)` of a keras-hub text backbone's
    output (a tensor, or a dict holding `sequence_output` or T5's
    `encoder_sequence_output`)."""
    if isinstance(outputs, dict):
        for key in ("sequence_output", "encoder_sequence_output"):
            if key in outputs:
                return outputs[key]
        raise ValueError(f"no sequence output among the backbone's outputs {sorted(outputs)}")
    return outputs


def masked_mean(features, padding_mask):
    """The mean of `features (B, L, D)` over the positions where
    `padding_mask (B, L)` is true."""
    features = ops.convert_to_tensor(features)
    weights = ops.cast(padding_mask, features.dtype)[:, :, None]
    return ops.sum(features * weights, axis=1) / ops.maximum(
        ops.sum(weights, axis=1), 1.0
    )


@keras.saving.register_keras_serializable(package="keras_ssl")
class TextClassifier(keras.Model):
    """A keras-hub text backbone, masked mean pooling and a linear layer.

    Takes `{"token_ids", "padding_mask"}` (see `pack_texts`) and returns
    logits `(B, num_classes)`. `pooling="cls"` uses BERT's pooled `[CLS]`
    feature instead of the mean.
    """

    def __init__(self, backbone, num_classes, dropout=0.1, pooling="mean",
                 **kwargs):
        super().__init__(**kwargs)
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.pooling = pooling
        self.drop = keras.layers.Dropout(self.dropout)
        self.head = keras.layers.Dense(self.num_classes, name="logits")

    def features(self, inputs, training=False):
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
        outputs = self.backbone(
            backbone_inputs(self.backbone, token_ids, padding_mask), training=training
        )
        if self.pooling == "cls":
            return pooled_output(outputs)
        return masked_mean(sequence_output(outputs), padding_mask)

    def call(self, inputs, training=False):
        return self.head(self.drop(self.features(inputs, training), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            backbone=keras.saving.serialize_keras_object(self.backbone),
            num_classes=self.num_classes,
            dropout=self.dropout,
            pooling=self.pooling,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def text_features(backbone, packed, batch_size=64, pooling="mean"):
    """Frozen pooled features `(N, D)` of packed texts."""
    classifier = TextClassifier(backbone, 1, pooling=pooling)
    features = []
    for i in range(0, len(packed["token_ids"]), batch_size):
        batch = {k: v[i : i + batch_size] for k, v in packed.items()}
        features.append(ops.convert_to_numpy(classifier.features(batch)))
    return np.concatenate(features).astype("float32")


def random_init_like(backbone, seed=0):
    """The same architecture as `backbone`, freshly initialised (seeded),
    with the fixes keras-ssl applies when it builds one
    (`keras_ssl.backbones.t5.reinitialize`: T5's token embedding)."""
    from keras_ssl.backbones.t5 import reinitialize

    keras.utils.set_random_seed(seed)
    return reinitialize(type(backbone).from_config(backbone.get_config()))


def text_classification_scores(backbone, tokenizer, train_texts, train_labels,
                               test_texts, test_labels, sequence_length=128,
                               probe=True, fine_tune_epochs=0, batch_size=32,
                               learning_rate=3e-4, seed=0, verbose=0,
                               pooling="mean"):
    """Test accuracy of `backbone` on a labelled text task.

    Args:
        probe: fit a logistic regression on the frozen mean-pooled features
            (`keras_ssl.evaluation.linear_probe_accuracy`).
        pooling: "mean" over the tokens, or "cls": BERT's pooled `[CLS]`.
        fine_tune_epochs: also fine-tune a copy of the backbone with a linear
            head for this many epochs (AdamW, `learning_rate`) and score it;
            0 skips it. The given backbone is never modified.

    Returns:
        `{"probe": accuracy, "fine_tune": accuracy}` (those measured).
    """
    from keras_ssl.evaluation.linear_probe import linear_probe_accuracy

    train = pack_texts(tokenizer, train_texts, sequence_length)
    test = pack_texts(tokenizer, test_texts, sequence_length)
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)
    scores = {}
    if probe:
        scores["probe"] = linear_probe_accuracy(
            text_features(backbone, train, pooling=pooling), y_train,
            text_features(backbone, test, pooling=pooling), y_test,
        )
    if fine_tune_epochs:
        keras.utils.set_random_seed(seed)
        copy = type(backbone).from_config(backbone.get_config())
        copy.set_weights(backbone.get_weights())
        classifier = TextClassifier(
            copy, int(max(y_train.max(), y_test.max())) + 1, pooling=pooling
        )
        classifier.compile(
            optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        classifier.fit(
            train, y_train, epochs=int(fine_tune_epochs), batch_size=batch_size,
            shuffle=True, verbose=verbose,
        )
        scores["fine_tune"] = float(
            classifier.evaluate(test, y_test, batch_size=batch_size, verbose=0,
                                return_dict=True)["accuracy"]
        )
    return scores


def pretraining_gain(backbone, tokenizer, corpus, num_classes=8,
                     sequence_length=128, fine_tune_epochs=0, seed=0,
                     unit="paragraph", **kwargs):
    """Scores of the pretrained `backbone` and of the same architecture at
    random initialisation on the corpus' which-document task (of each
    paragraph, or each sentence with `unit="sentence"`), same labels, same
    budget: `{"pretrained": {...}, "random_init": {...}}`."""
    train = corpus.labelled_paragraphs("train", num_classes=num_classes, unit=unit)
    test = corpus.labelled_paragraphs("test", num_classes=num_classes, unit=unit)
    common = dict(sequence_length=sequence_length,
                  fine_tune_epochs=fine_tune_epochs, seed=seed, **kwargs)
    return {
        "pretrained": text_classification_scores(
            backbone, tokenizer, *train, *test, **common
        ),
        "random_init": text_classification_scores(
            random_init_like(backbone, seed), tokenizer, *train, *test, **common
        ),
    }
