"""T5: span-corruption pre-training and text-to-text fine-tuning."""

import warnings

import keras
from keras import ops

from keras_ssl.data.tokenizers import check_texts, token_id_lists
from keras_ssl.losses.masked_tokens import masked_token_accuracy, masked_token_loss
from keras_ssl.models.language_model import LanguageModel

_BACKBONE_API = ("token_embedding", "tie_embedding_weights", "hidden_dim",
                 "vocabulary_size", "encoder_transformer_layers",
                 "decoder_transformer_layers")
_INPUT_KEYS = ("encoder_token_ids", "encoder_padding_mask",
               "decoder_token_ids", "decoder_padding_mask")
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
               "bool")


class _Untracked:
    """Holds an object out of Keras' (and torch's) attribute tracking."""

    def __init__(self, value):
        self.value = value


@keras.saving.register_keras_serializable(package="keras_ssl")
class T5SpanCorruption(LanguageModel):
    """T5 (Raffel et al., 2020): an encoder-decoder pre-trained by span
    corruption, then fine-tuned on any task written as text to text.

    "We randomly sample and then drop out 15% of tokens in the input
    sequence. All consecutive spans of dropped-out tokens are replaced by a
    single sentinel token. [...] The target then corresponds to all of the
    dropped-out spans of tokens, delimited by the same sentinel tokens."
    The data pipeline (`keras_ssl.data.span_corruption`) does the corruption;
    the model is trained by teacher forcing, as a T5 is:

    ```
    x:  Thank you <X> me to your party <Y> week . </s>      → encoder
    decoder in:  <pad> <X> for inviting <Y> last <Z>        (targets shifted)
    targets:     <X> for inviting <Y> last <Z> </s>
    h = decoder(decoder_in, encoder(x))                     # causal
    logits = (h · d^-1/2) @ E^T                             # tied embedding
    loss = cross_entropy(logits, targets) over non-padding target positions
    ```

    Details:

    - The network is a keras-hub `T5Backbone`; with
      `tie_embedding_weights=True` (T5 1.0) the logits use the token
      embedding, the decoder output scaled by `hidden_dim ** -0.5` first,
      exactly as keras-hub's `T5Seq2SeqLM` computes them (untied, its
      separate output projection).
    - Fine-tuning is the same model and loss on `text_to_text_dataset`
      batches ("task prefix: input" → target).
    - `generate` decodes greedily with keras-hub's `T5Seq2SeqLM` sharing this
      backbone (jit-compiled under TensorFlow and JAX, with a key/value
      cache), string(s) in, string(s) out.
    - The tokenizer (optional, a keras-hub `T5Tokenizer` such as
      `keras_ssl.data.tokenizers.train_sentencepiece` makes) is saved with
      the model (`.keras`: config and vocabulary asset).

    Inputs (to `call`, `fit`): the dict of `T5Backbone`, `{"encoder_token_ids",
    "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask"}`,
    int `(B, L_enc)` and `(B, L_dec)`; `fit` also takes the targets `y`
    `(B, L_dec)` and a `sample_weight` (1 on target tokens; default: the
    decoder padding mask), as both data sets yield them.

    Outputs of `call`: logits `(B, L_dec, vocabulary_size)`.

    Metrics logged beside the loss: `accuracy`, the fraction of target
    tokens predicted right (teacher-forced).

    Args:
        backbone: a `keras_hub.models.T5Backbone`.
        tokenizer: optional T5-style keras-hub tokenizer (needed by
            `generate`); its vocabulary must fit the backbone's.
        encoder_sequence_length: the encoder length `generate` packs inputs
            to (longer inputs raise, or are cut with `truncate=True`).
        decoder_sequence_length: the default `max_length` of `generate`.

    Example:

    ```python
    import keras
    from keras_ssl.backbones import t5_backbone
    from keras_ssl.datasets.text_corpus import load_python_docs
    from keras_ssl.data.tokenizers import train_sentencepiece
    from keras_ssl.data.span_corruption import (
        span_corruption_dataset, text_to_text_dataset)
    from keras_ssl.models.span_corruption import T5SpanCorruption

    corpus = load_python_docs()
    tokenizer = train_sentencepiece(corpus.documents, 1000, num_sentinels=32)
    backbone = t5_backbone(  # keras-hub's T5Backbone, T5's initialisation
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
        num_heads=4, hidden_dim=128, intermediate_dim=256, dropout=0.1)
    model = T5SpanCorruption(backbone, tokenizer)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(span_corruption_dataset(corpus.documents, tokenizer,
                                      inputs_length=128), epochs=5)
    model.fit(text_to_text_dataset(["a b c", "d e f"], ["c b a", "f e d"],
                                   tokenizer, 16, 8, prefix="reverse:"),
              epochs=50)
    model.generate("reverse: a b c")
    backbone.save_to_preset("t5_preset")
    ```
    """

    nested_models = ("backbone", "tokenizer")

    def __init__(
        self,
        backbone,
        tokenizer=None,
        encoder_sequence_length=512,
        decoder_sequence_length=128,
        **kwargs,
    ):
        super().__init__(backbone, tokenizer=tokenizer, **kwargs)
        self.require_api(
            backbone, _BACKBONE_API, "T5SpanCorruption's backbone",
            "an encoder-decoder with a token embedding, such as "
            "`keras_hub.models.T5Backbone`",
        )
        self.encoder_sequence_length = int(encoder_sequence_length)
        self.decoder_sequence_length = int(decoder_sequence_length)
        if min(self.encoder_sequence_length, self.decoder_sequence_length) < 1:
            raise ValueError(
                "T5SpanCorruption's encoder_sequence_length and "
                "decoder_sequence_length must be positive; got "
                f"{encoder_sequence_length} and {decoder_sequence_length}."
            )
        self._check_vocabulary()
        self.add_metric_trackers("accuracy")
        self._generator = _Untracked(None)
        self.build(None)

    def _check_vocabulary(self):
        if not self.check_tokenizer_vocabulary():
            return
        for name in ("pad_token_id", "end_token_id"):
            if getattr(self.tokenizer, name, None) is None:
                raise ValueError(
                    "T5SpanCorruption's tokenizer must have T5's <pad> and "
                    "</s> tokens (a keras_hub T5Tokenizer); "
                    f"{type(self.tokenizer).__name__} has no {name}."
                )

    # --- the forward pass ---------------------------------------------------
    def split_inputs(self, inputs):
        """The backbone's input dict, checked (see the class docstring)."""
        name = type(self).__name__
        if not isinstance(inputs, dict):
            raise ValueError(
                f"{name} takes a dict with keys {list(_INPUT_KEYS)} (what "
                "`span_corruption_dataset` and `text_to_text_dataset` yield); "
                f"got {type(inputs).__name__}."
            )
        missing = [k for k in _INPUT_KEYS if k not in inputs]
        unknown = sorted(set(inputs) - set(_INPUT_KEYS))
        if missing or unknown:
            raise ValueError(
                f"{name} takes a dict with keys {list(_INPUT_KEYS)}; missing "
                f"keys {missing}, unknown keys {unknown}."
            )
        shapes = {}
        for key in _INPUT_KEYS:
            value = inputs[key]
            shape = tuple(getattr(value, "shape", ()))
            dtype = keras.backend.standardize_dtype(
                getattr(value, "dtype", "float32")
            )
            if len(shape) != 2 or dtype not in _INT_DTYPES:
                raise ValueError(
                    f"{name}: {key} must be an integer batch (batch, "
                    f"sequence); got shape {shape} and dtype {dtype}."
                )
            shapes[key] = shape
        for side in ("encoder", "decoder"):
            ids, mask = shapes[f"{side}_token_ids"], shapes[f"{side}_padding_mask"]
            if None not in ids + mask and ids != mask:
                raise ValueError(
                    f"{name}: {side}_token_ids {ids} and {side}_padding_mask "
                    f"{mask} must have the same shape."
                )
        batches = {shape[0] for shape in shapes.values()} - {None}
        if len(batches) > 1:
            raise ValueError(
                f"{name}: the encoder and decoder inputs must have the same "
                f"batch size; got {sorted(batches)}."
            )
        if 0 in batches:
            raise ValueError(f"{name} needs at least 1 example per batch; got 0.")
        return {key: inputs[key] for key in _INPUT_KEYS}

    def logits(self, decoder_output):
        """Vocabulary logits of decoder outputs, as `T5Seq2SeqLM` computes
        them (tied: scaled by `hidden_dim ** -0.5`, then the transposed token
        embedding)."""
        if self.backbone.tie_embedding_weights:
            decoder_output = ops.multiply(
                decoder_output,
                ops.cast(self.backbone.hidden_dim**-0.5, decoder_output.dtype),
            )
        return self.backbone.token_embedding(decoder_output, reverse=True)

    def call(self, inputs, training=False):
        outputs = self.backbone(self.split_inputs(inputs), training=training)
        return self.logits(outputs["decoder_sequence_output"])

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        name = type(self).__name__
        if y is None:
            raise ValueError(
                f"{name} needs the target token ids `y` (batch, decoder "
                "length): train on `span_corruption_dataset` or "
                "`text_to_text_dataset`, which yield (x, y, sample_weight)."
            )
        logits_shape, y_shape = tuple(y_pred.shape), tuple(y.shape)
        if len(y_shape) != 2 or (
            None not in (y_shape[1], logits_shape[1])
            and y_shape[1] != logits_shape[1]
        ):
            raise ValueError(
                f"{name}: the targets must have shape (batch, decoder length) "
                f"= {logits_shape[:2]}; got {y_shape}."
            )
        if sample_weight is None:
            sample_weight = x["decoder_padding_mask"]
        mask = ops.cast(sample_weight, "float32")
        self.track(accuracy=masked_token_accuracy(y_pred, y, mask))
        return masked_token_loss(y_pred, y, mask)

    # --- using a trained model ----------------------------------------------
    def _seq2seq_lm(self):
        """keras-hub's `T5Seq2SeqLM` on this backbone (shared weights) with
        a greedy sampler, made once and kept out of the saved model."""
        if self._generator.value is None:
            import keras_hub

            preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(
                tokenizer=self.tokenizer,
                encoder_sequence_length=self.encoder_sequence_length,
                decoder_sequence_length=self.decoder_sequence_length,
            )
            with warnings.catch_warnings():
                # Masks of the symbolic graph, which T5 does not use.
                warnings.filterwarnings("ignore", message=".*mask.*")
                lm = keras_hub.models.T5Seq2SeqLM(
                    backbone=self.backbone, preprocessor=preprocessor
                )
            lm.compile(sampler="greedy")
            self._generator = _Untracked(lm)
        return self._generator.value

    def _check_generate_inputs(self, texts, truncate):
        name = type(self).__name__
        if self.tokenizer is None:
            raise ValueError(
                f"This {name} has no tokenizer: pass `tokenizer=` when building "
                "it to generate from strings."
            )
        texts = check_texts(texts, f"{name}.generate", "input")
        for i, ids in enumerate(token_id_lists(self.tokenizer, texts)):
            if len(ids) + 1 > self.encoder_sequence_length:
                message = (
                    f"{name}.generate: input {i} has {len(ids)} tokens (+ EOS), "
                    "more than encoder_sequence_length="
                    f"{self.encoder_sequence_length}"
                )
                if not truncate:
                    raise ValueError(
                        f"{message}; shorten it, raise encoder_sequence_length "
                        "or pass truncate=True."
                    )
                warnings.warn(f"{message}: truncated.", stacklevel=3)
        return texts

    def generate(self, inputs, max_length=None, truncate=False):
        """Greedy decoding: the model's output text for each input text.

        Args:
            inputs: a string or a list of strings (with the task prefix the
                model was fine-tuned with; sentinels `<extra_id_N>` ask it to
                fill spans).
            max_length: the most decoder tokens, the start token included
                (default: `decoder_sequence_length`).
            truncate: cut inputs longer than `encoder_sequence_length` with a
                warning instead of raising.

        Returns:
            A string for a string, else a list of strings (special tokens
            removed, sentinels kept).
        """
        single = isinstance(inputs, str)
        texts = self._check_generate_inputs(inputs, truncate)
        max_length = int(max_length or self.decoder_sequence_length)
        if max_length < 2:
            raise ValueError(
                f"generate needs max_length >= 2 (the start token and one "
                f"more); got {max_length}."
            )
        lm = self._seq2seq_lm()
        lm.preprocessor.encoder_sequence_length = self.encoder_sequence_length
        outputs = lm.generate(texts, max_length=max_length)
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        outputs = [o.decode() if isinstance(o, bytes) else str(o) for o in outputs]
        return outputs[0] if single else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder_sequence_length": self.encoder_sequence_length,
                "decoder_sequence_length": self.decoder_sequence_length,
            }
        )
        return config
