"""BERT's masked language model and next-sentence prediction (and RoBERTa's
masked LM without NSP), on a keras-hub backbone."""

import keras
import numpy as np
from keras import ops

from keras_ssl.losses.masked_tokens import masked_token_accuracy, masked_token_loss
from keras_ssl.models.language_model import LanguageModel

_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
_CALL_KEYS = ("token_ids", "padding_mask", "mask_positions")
_LOSS_KEYS = ("mask_ids", "mask_weights")
_NSP_KEY = "next_sentence_labels"
_KNOWN_KEYS = (*_CALL_KEYS, "segment_ids", *_LOSS_KEYS, _NSP_KEY)


def _dtype(x):
    return keras.backend.standardize_dtype(getattr(x, "dtype", "float32"))


def _shape(x):
    return tuple(getattr(x, "shape", ()))


def _concrete(x):
    """`x` as a NumPy array when it holds values (eager calls), None when it
    is symbolic (traced inside a compiled step)."""
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # a tf.function tensor, a JAX tracer: no values yet
        return None


@keras.saving.register_keras_serializable(package="keras_ssl")
class MaskedLanguageModel(LanguageModel):
    """BERT (Devlin et al., 2019): masked LM + next-sentence prediction.

    "In order to train a deep bidirectional representation, we simply mask
    some percentage of the input tokens at random, and then predict those
    masked tokens", and "in order to train a model that understands sentence
    relationships, we pre-train for a binarized next sentence prediction
    task". The pre-training loss is the sum of the two:

    ```
    for batch (ids, segments, mask_positions, mask_ids, is_next):
        h = encoder(ids, segments)            # (B, L, d); ids are masked
        logits = mlm_head(h[mask_positions])  # (B, M, V), tied to embeddings
        mlm = cross_entropy(logits, mask_ids) on the chosen positions only
        nsp = cross_entropy(Dense(2)(pooled(h[:, 0])), is_next)
        loss = mlm + nsp
    ```

    With `next_sentence_prediction=False` it is RoBERTa's objective (Liu et
    al., 2019: "removing the NSP loss matches or slightly improves
    downstream task performance"), fed with FULL-SENTENCES rows and dynamic
    masking by `keras_ssl.data.masked_lm.masked_lm_dataset`.

    Details:

    - The backbone is a keras-hub `BertBackbone` (segment embeddings and a
      `pooled_output`, the tanh-projected `[CLS]`) or `RobertaBackbone` (no
      segments, no pooled output: masked LM only).
    - The MLM head is keras-hub's `MaskedLMHead` (dense + gelu + layer norm,
      then the *transposed token embedding* and a bias, as
      `keras_hub.models.BertMaskedLM`); the NSP head a `Dense(2)` on the
      pooled `[CLS]`.
    - The loss of the masked LM is the mean cross-entropy over the chosen
      positions weighted by `mask_weights` (unused selection slots weigh 0);
      NSP's the mean cross-entropy over the batch.
    - The masking happens in the input pipeline (seeded, dynamic or
      static), so the model holds no randomness but its dropout.
    - `tokenizer` (optional) travels with the model: `.keras` files keep its
      vocabulary as an asset. For downstream use export the backbone:
      `model.backbone.save_to_preset(dir)` and
      `model.tokenizer.save_to_preset(dir)`, then
      `keras_hub.models.Backbone.from_preset(dir)`.

    Inputs (to `call`, `fit`): a dict of `token_ids` `(B, L)` int (already
    masked), `padding_mask` `(B, L)` bool or int, `mask_positions` `(B, M)`
    int, optionally `segment_ids` `(B, L)` int (zeros when absent; ignored
    by a backbone without segment embeddings), and for the loss `mask_ids`
    `(B, M)` int, `mask_weights` `(B, M)` and, with NSP,
    `next_sentence_labels` `(B,)` int (1 = B follows A).

    Outputs of `call`: a dict of `mlm_logits` `(B, M, V)` and, with NSP,
    `nsp_logits` `(B, 2)`.

    Metrics logged beside the loss: `mlm_loss`, `mlm_accuracy` and, with
    NSP, `nsp_loss`, `nsp_accuracy`.

    Args:
        backbone: a keras-hub `BertBackbone` or `RobertaBackbone`.
        next_sentence_prediction: add BERT's NSP head and loss (needs a
            backbone with a `pooled_output`).
        tokenizer: optional keras-hub tokenizer of the inputs (saved with
            the model); its vocabulary must fit the backbone's.

    Example:

    ```python
    import keras, keras_hub
    from keras_ssl.datasets.text_corpus import load_python_docs
    from keras_ssl.data.tokenizers import train_wordpiece
    from keras_ssl.data.masked_lm import masked_lm_dataset
    from keras_ssl.models.masked_lm import MaskedLanguageModel

    corpus = load_python_docs()
    tokenizer = train_wordpiece(corpus.documents, vocabulary_size=2000)
    data = masked_lm_dataset(corpus.documents, tokenizer, sequence_length=64,
                             batch_size=32)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
        num_heads=2, hidden_dim=128, intermediate_dim=256,
        max_sequence_length=64)
    model = MaskedLanguageModel(backbone, tokenizer=tokenizer)
    model.compile(optimizer=keras.optimizers.AdamW(
        1e-3, weight_decay=0.01, gradient_accumulation_steps=2))
    model.fit(data, epochs=2)
    backbone.save_to_preset("bert_python_docs")
    tokenizer.save_to_preset("bert_python_docs")
    ```
    """

    nested_models = ("backbone", "tokenizer")

    nan_hints = (
        "all-zero `mask_weights` are fine (the masked-LM loss is then 0), "
        "but token ids at or above the backbone's vocabulary_size are not",
    )

    def __init__(self, backbone, next_sentence_prediction=True, tokenizer=None,
                 **kwargs):
        super().__init__(backbone, tokenizer=tokenizer, **kwargs)
        import keras_hub

        self.require_api(
            backbone, ("token_embedding", "vocabulary_size", "hidden_dim"),
            "MaskedLanguageModel's backbone",
            "a keras-hub BertBackbone or RobertaBackbone",
        )
        inputs = getattr(backbone, "_inputs_struct", None)
        if not isinstance(inputs, dict) or not {
            "token_ids", "padding_mask"
        } <= set(inputs):
            raise ValueError(
                "MaskedLanguageModel's backbone must take a dict with "
                "'token_ids' and 'padding_mask' (a keras-hub BertBackbone or "
                f"RobertaBackbone); {type(backbone).__name__} takes {inputs}."
            )
        self.takes_segments = "segment_ids" in inputs
        outputs = getattr(backbone, "_outputs_struct", None)
        has_pooled = isinstance(outputs, dict) and "pooled_output" in outputs
        self.next_sentence_prediction = bool(next_sentence_prediction)
        if self.next_sentence_prediction and not has_pooled:
            raise ValueError(
                "Next-sentence prediction needs a backbone with a pooled [CLS] "
                f"output ('pooled_output', as BertBackbone); "
                f"{type(backbone).__name__} has none. Pass "
                "next_sentence_prediction=False (RoBERTa's recipe)."
            )
        self.vocabulary_size = int(backbone.vocabulary_size)
        self.max_sequence_length = getattr(backbone, "max_sequence_length", None)
        self._check_vocabulary()
        hidden_dim = int(backbone.hidden_dim)
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.mlm_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=self.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation="gelu",
            kernel_initializer=initializer,
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        self.mlm_head.build((None, None, hidden_dim), (None, None))
        metrics = ["mlm_loss", "mlm_accuracy"]
        if self.next_sentence_prediction:
            self.nsp_head = keras.layers.Dense(
                2, kernel_initializer=initializer, dtype=backbone.dtype_policy,
                name="nsp_head",
            )
            self.nsp_head.build((None, hidden_dim))
            metrics += ["nsp_loss", "nsp_accuracy"]
        self.add_metric_trackers(*metrics)
        self.build(None)

    def _check_vocabulary(self):
        if not self.check_tokenizer_vocabulary():
            return
        mask_id = getattr(self.tokenizer, "mask_token_id", None)
        if mask_id is None:
            raise ValueError(
                f"{type(self.tokenizer).__name__} has unknown special tokens "
                "for a masked language model: no mask token. Use a "
                "BertTokenizer or a RobertaTokenizer."
            )

    # --- inputs -------------------------------------------------------------
    def check_inputs(self, inputs):
        """Raises a clear `ValueError` unless `inputs` is a dict of the keys,
        ranks, dtypes and shapes of the class docstring; returns it."""
        name = type(self).__name__
        if not isinstance(inputs, dict):
            raise ValueError(
                f"{name} takes a dict of token_ids, padding_mask and "
                f"mask_positions (and the targets); got a "
                f"{type(inputs).__name__}. Build inputs with "
                "`keras_ssl.data.masked_lm.masked_lm_dataset`."
            )
        missing = [k for k in _CALL_KEYS if k not in inputs]
        unknown = sorted(set(inputs) - set(_KNOWN_KEYS))
        if missing or unknown:
            raise ValueError(
                f"{name}: missing input keys {missing} / unknown keys "
                f"{unknown}; it takes {list(_KNOWN_KEYS)} (got "
                f"{sorted(inputs)})."
            )
        if _NSP_KEY in inputs and not self.next_sentence_prediction:
            raise ValueError(
                f"{name} was built with next_sentence_prediction=False but the "
                f"inputs hold '{_NSP_KEY}': build the data with "
                "next_sentence_prediction=False."
            )
        ids_shape = _shape(inputs["token_ids"])
        self._check_int(inputs["token_ids"], "token_ids", 2)
        for key in ("padding_mask", "segment_ids"):
            if key in inputs and _shape(inputs[key]) != ids_shape:
                raise ValueError(
                    f"{name}: {key} must have the shape of token_ids "
                    f"{ids_shape}; got {_shape(inputs[key])}."
                )
        if "segment_ids" in inputs:
            self._check_int(inputs["segment_ids"], "segment_ids", 2)
        length = ids_shape[1]
        if (
            length is not None and self.max_sequence_length is not None
            and length > self.max_sequence_length
        ):
            raise ValueError(
                f"{name}: rows of {length} tokens are too long; the backbone "
                f"takes at most {self.max_sequence_length} "
                "(`max_sequence_length`)."
            )
        positions = inputs["mask_positions"]
        positions_shape = _shape(positions)
        self._check_int(positions, "mask_positions", 2)
        for key in _LOSS_KEYS:
            if key in inputs and _shape(inputs[key]) != positions_shape:
                raise ValueError(
                    f"{name}: {key} must have the shape of mask_positions "
                    f"{positions_shape}; got {_shape(inputs[key])}."
                )
        if "mask_ids" in inputs:
            self._check_int(inputs["mask_ids"], "mask_ids", 2)
        if _NSP_KEY in inputs:
            self._check_int(inputs[_NSP_KEY], _NSP_KEY, 1)
        values = _concrete(positions)
        if values is not None and values.size and length is not None and (
            values.min() < 0 or values.max() >= length
        ):
            raise ValueError(
                f"{name}: mask_positions out of range: they must index the "
                f"{length} tokens of a row, in [0, {length}); got values in "
                f"[{values.min()}, {values.max()}]."
            )
        return inputs

    def _check_int(self, x, key, rank):
        shape, dtype = _shape(x), _dtype(x)
        if len(shape) != rank:
            want = "(batch, length)" if rank == 2 else "(batch,)"
            raise ValueError(
                f"{type(self).__name__}: {key} must have rank {rank} {want}; "
                f"got shape {shape}."
            )
        if dtype not in _INT_DTYPES:
            raise ValueError(
                f"{type(self).__name__}: {key} must be integer ids; got dtype "
                f"{dtype}."
            )

    # --- the method ---------------------------------------------------------
    def backbone_inputs(self, inputs):
        """What the backbone takes, from the model's inputs."""
        token_ids = ops.cast(inputs["token_ids"], "int32")
        features = {
            "token_ids": token_ids,
            "padding_mask": ops.cast(inputs["padding_mask"], "int32"),
        }
        if self.takes_segments:
            segments = inputs.get("segment_ids")
            features["segment_ids"] = (
                ops.zeros_like(token_ids) if segments is None
                else ops.cast(segments, "int32")
            )
        return features

    def call(self, inputs, training=False):
        inputs = self.check_inputs(inputs)
        outputs = self.backbone(self.backbone_inputs(inputs), training=training)
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        positions = ops.cast(inputs["mask_positions"], "int32")
        result = {"mlm_logits": self.mlm_head(sequence, positions)}
        if self.next_sentence_prediction:
            result["nsp_logits"] = self.nsp_head(outputs["pooled_output"])
        return result

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        name = type(self).__name__
        needed = list(_LOSS_KEYS) + (
            [_NSP_KEY] if self.next_sentence_prediction else []
        )
        missing = [k for k in needed if not isinstance(x, dict) or k not in x]
        if missing:
            raise ValueError(
                f"{name}'s loss needs the input keys {missing} (the targets; "
                "`masked_lm_dataset` yields them)."
            )
        logits = y_pred["mlm_logits"]
        mask_ids = ops.cast(x["mask_ids"], "int32")
        weights = ops.cast(x["mask_weights"], "float32")
        mlm_loss = masked_token_loss(logits, mask_ids, weights)
        values = {
            "mlm_loss": mlm_loss,
            "mlm_accuracy": masked_token_accuracy(logits, mask_ids, weights),
        }
        loss = mlm_loss
        if self.next_sentence_prediction:
            nsp_logits = ops.cast(y_pred["nsp_logits"], "float32")
            labels = ops.cast(x[_NSP_KEY], "int32")
            nsp_loss = ops.mean(
                keras.losses.sparse_categorical_crossentropy(
                    labels, nsp_logits, from_logits=True
                )
            )
            hits = ops.equal(ops.cast(ops.argmax(nsp_logits, axis=-1), "int32"),
                             labels)
            values["nsp_loss"] = nsp_loss
            values["nsp_accuracy"] = ops.mean(ops.cast(hits, "float32"))
            loss = loss + nsp_loss
        self.track(**values)
        return loss

    # --- using a trained model ----------------------------------------------
    def encode(self, inputs, training=False):
        """Text features `(B, hidden_dim)`: the backbone's sequence output
        averaged over the non-padding tokens of `{"token_ids",
        "padding_mask"}` (optionally `"segment_ids"`), as
        `keras_ssl.evaluation.text` pools for its downstream probes."""
        if not isinstance(inputs, dict) or not {
            "token_ids", "padding_mask"
        } <= set(inputs):
            raise ValueError(
                f"{type(self).__name__}.encode takes a dict with 'token_ids' "
                f"and 'padding_mask'; got {type(inputs).__name__}."
            )
        outputs = self.backbone(self.backbone_inputs(inputs), training=training)
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        weights = ops.cast(inputs["padding_mask"], sequence.dtype)[:, :, None]
        return ops.sum(sequence * weights, axis=1) / ops.maximum(
            ops.sum(weights, axis=1), 1.0
        )

    def predict_masked(self, inputs):
        """The most likely id at each of `inputs["mask_positions"]`, NumPy
        `(B, M)` int32."""
        logits = self(inputs, training=False)["mlm_logits"]
        return ops.convert_to_numpy(ops.argmax(logits, axis=-1)).astype("int32")

    def get_config(self):
        config = super().get_config()
        config["next_sentence_prediction"] = self.next_sentence_prediction
        return config
