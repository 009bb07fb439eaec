"""CLIP: contrastive language-image pretraining."""

import keras
import numpy as np
from keras import ops

from keras_ssl.data.text import PAD, tokenize_captions
from keras_ssl.losses.clip import (
    INITIAL_LOGIT_SCALE,
    MAX_LOGIT_SCALE,
    clip_logit_scale,
    clip_loss,
)
from keras_ssl.losses.contrastive import l2_normalize
from keras_ssl.models.ssl_model import SSLModel

_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")


@keras.saving.register_keras_serializable(package="keras_ssl")
class CLIP(SSLModel):
    """CLIP (Radford et al., 2021): images and their captions, contrasted.

    An image encoder and a text encoder are each followed by a linear
    projection into a shared space; the N matching (image, caption) pairs of
    a batch are pulled together and the N² − N others pushed apart by a
    symmetric cross-entropy over the scaled cosine similarities. The paper's
    pseudo-code, which `call` + `compute_loss` follow:

    ```
    I_f = image_encoder(I)                  # [n, d_i]
    T_f = text_encoder(T)                   # [n, d_t], the [EOT] token
    I_e = l2_normalize(np.dot(I_f, W_i))    # [n, d_e]
    T_e = l2_normalize(np.dot(T_f, W_t))    # [n, d_e]
    logits = np.dot(I_e, T_e.T) * np.exp(t)
    loss = (CE(logits, arange(n), axis=0) + CE(logits, arange(n), axis=1)) / 2
    ```

    The learnable temperature `t` starts at log(1/0.07) and the scale
    exp(t) is clipped at 100 (in the forward pass: Keras' JAX trainer keeps
    trainable values out of `after_step`). The text feature is the text
    encoder's output at the last non-padding position, the `[EOT]` token
    that `tokenize` appends (a causal encoder such as keras-hub's
    `CLIPTextEncoder` ignores the padding after it); an encoder that returns
    vectors is used as is, and one that returns a dict gives its
    `"sequence_output"` (keras-hub's `BertBackbone`, which also gets a
    `padding_mask`).

    The loss uses the *global* batch: under JAX `keras.distribution` the
    step sees it anyway; under `tf.distribute` the embeddings are gathered
    across replicas with gradient (`gather_global_batch`), so N replicas
    with B/N pairs each compute the loss of one device with B pairs.

    Args:
        image_encoder: a `keras.Model` from images `(B, H, W, C)` in [0, 1]
            to features (feature maps and token sequences are averaged).
        text_encoder: a `keras.Model` from token ids `(B, L)` to features
            `(B, L, d)` (or `(B, d)`), e.g. keras-hub's `CLIPTextEncoder`.
        projection_dim: width of the shared embedding space (ViT-B/32: 512).
        tokenizer: optional keras-hub tokenizer of the captions with the
            `keras_ssl.data.SPECIAL_TOKENS` (saved with the model); needed by
            `tokenize` and `encode_texts` on strings.
        sequence_length: the caption length in tokens, `[SOT]` and `[EOT]`
            included (default: the text encoder's `max_sequence_length`).
        initial_logit_scale: the start value of `t` (log(1/0.07)).
        max_logit_scale: the clip of exp(t) (100).
        gather_global_batch: gather embeddings across `tf.distribute`
            replicas for the loss (the paper's global batch).

    Metrics logged beside the loss: `logit_scale` (exp(t)) and
    `retrieval_accuracy`, how often an image's most similar caption in the
    (local) batch is its own.

    Example:

    ```python
    import keras, keras_hub, keras_ssl
    data = keras_ssl.data.load_image_text_data("digits")
    tokenizer = keras_ssl.data.train_caption_tokenizer(data.captions_train)
    token_ids = keras_ssl.data.tokenize_captions(tokenizer, data.captions_train, 24)
    text_encoder = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=tokenizer.vocabulary_size(), embedding_dim=64,
        hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128,
        max_sequence_length=24)
    image_encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(32, 32, 3))
    model = keras_ssl.models.CLIP(image_encoder, text_encoder, 64, tokenizer)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit({"images": data.x_train, "token_ids": token_ids},
              batch_size=128, epochs=2)
    image_encoder.save("image_encoder.keras")
    ```
    """

    nested_models = ("image_encoder", "text_encoder", "tokenizer")

    nan_hints = (
        "a `max_logit_scale` too high (exp(t) is clipped there, 100 by "
        "default; check `logit_scale` in the logs)",
    )

    def __init__(
        self,
        image_encoder,
        text_encoder,
        projection_dim=512,
        tokenizer=None,
        sequence_length=None,
        pad_token_id=None,
        initial_logit_scale=INITIAL_LOGIT_SCALE,
        max_logit_scale=MAX_LOGIT_SCALE,
        gather_global_batch=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if sequence_length is None:
            sequence_length = getattr(text_encoder, "max_sequence_length", None)
        if sequence_length is None:
            raise ValueError(
                "CLIP needs `sequence_length` (the caption length in tokens) "
                f"when the text encoder ({type(text_encoder).__name__}) has no "
                "`max_sequence_length`."
            )
        if not max_logit_scale > 0:
            raise ValueError(
                f"CLIP `max_logit_scale` must be positive, got {max_logit_scale}."
            )
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.projection_dim = int(projection_dim)
        self.sequence_length = int(sequence_length)
        if pad_token_id is None:
            pad_token_id = 0 if tokenizer is None else tokenizer.token_to_id(PAD)
        self.pad_token_id = int(pad_token_id)
        self.initial_logit_scale = float(initial_logit_scale)
        self.max_logit_scale = float(max_logit_scale)
        self.gather_global_batch = bool(gather_global_batch)
        self._check_vocabulary()
        self.logit_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_logit_scale),
            dtype="float32",
            name="logit_scale",
        )
        self.image_projection = keras.layers.Dense(
            self.projection_dim, use_bias=False, name="image_projection"
        )
        self.text_projection = keras.layers.Dense(
            self.projection_dim, use_bias=False, name="text_projection"
        )
        self.add_metric_trackers("logit_scale", "retrieval_accuracy")

    @property
    def encoder(self):
        """The image encoder (what `encode` and the image backbone use)."""
        return self.image_encoder

    def _check_vocabulary(self):
        encoder_vocabulary = getattr(self.text_encoder, "vocabulary_size", None)
        if self.tokenizer is None or not isinstance(encoder_vocabulary, int):
            return
        try:
            tokenizer_vocabulary = int(self.tokenizer.vocabulary_size())
        except (TypeError, ValueError, AttributeError):
            return  # a deserialised tokenizer before its vocabulary asset loads
        if tokenizer_vocabulary > encoder_vocabulary:
            raise ValueError(
                f"CLIP: the tokenizer has {tokenizer_vocabulary} tokens but the "
                f"text encoder embeds only {encoder_vocabulary} "
                "(`vocabulary_size`); build the text encoder with "
                "`vocabulary_size=tokenizer.vocabulary_size()`."
            )

    # --- building -----------------------------------------------------------
    def build(self, input_shape):
        image_shape, ids_shape = self._split_shapes(input_shape)
        self.check_shapes(image_shape, ids_shape)
        if not self.image_encoder.built:
            self.image_encoder.build(image_shape)
        image_spec = self.image_encoder.compute_output_spec(
            keras.KerasTensor(image_shape)
        )
        self.image_projection.build((None, image_spec.shape[-1]))
        ids = keras.KerasTensor(ids_shape, dtype="int32")
        text_spec = self._text_output(
            self.text_encoder.compute_output_spec(self._text_inputs(ids))
        )
        self.text_projection.build((None, text_spec.shape[-1]))
        self.built = True

    def _split_shapes(self, input_shape):
        if isinstance(input_shape, dict) and {"images", "token_ids"} <= set(
            input_shape
        ):
            return tuple(input_shape["images"]), tuple(input_shape["token_ids"])
        if (
            isinstance(input_shape, (tuple, list))
            and len(input_shape) == 2
            and all(isinstance(s, (tuple, list)) for s in input_shape)
        ):
            return tuple(input_shape[0]), tuple(input_shape[1])
        raise ValueError(self._inputs_message(input_shape))

    def _inputs_message(self, got):
        return (
            "CLIP takes a dict {'images': (B, H, W, C) floats, 'token_ids': "
            "(B, L) ints} (or the pair (images, token_ids)); got "
            f"{got if isinstance(got, (tuple, list, dict)) else type(got).__name__}."
            " Tokenize captions with `model.tokenize(texts)`."
        )

    # --- the forward pass ---------------------------------------------------
    def split_inputs(self, inputs):
        """`(images, token_ids)` from the model's inputs, checked."""
        if isinstance(inputs, dict):
            if set(inputs) != {"images", "token_ids"}:
                raise ValueError(self._inputs_message(sorted(inputs)))
            images, token_ids = inputs["images"], inputs["token_ids"]
        elif isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            images, token_ids = inputs
        else:
            raise ValueError(self._inputs_message(inputs))
        self._check_float_images(images, "the images")
        dtype = keras.backend.standardize_dtype(
            getattr(token_ids, "dtype", "float32")
        )
        ids_shape = tuple(getattr(token_ids, "shape", ()))
        if len(ids_shape) == 2 and dtype not in _INT_DTYPES:
            raise ValueError(
                "CLIP: token_ids must be an integer batch (batch, sequence) of "
                f"token ids; got dtype {dtype}. Tokenize captions with "
                "`model.tokenize(texts)`."
            )
        self.check_shapes(tuple(images.shape), ids_shape)
        return images, token_ids

    def check_shapes(self, image_shape, ids_shape):
        """Raises a clear `ValueError` unless images `(B, H, W, C)` and token
        ids `(B, L ≤ sequence_length)` make a batch of ≥ 2 pairs."""
        if len(image_shape) != 4:
            raise ValueError(
                "CLIP: the images must be a batch of images of rank 4 (batch, "
                f"height, width, channels); got shape {image_shape}."
            )
        if len(ids_shape) != 2:
            raise ValueError(
                "CLIP: token_ids must be an integer batch (batch, sequence) of "
                f"token ids; got shape {ids_shape}. Tokenize captions with "
                "`model.tokenize(texts)`."
            )
        batch, captions = image_shape[0], ids_shape[0]
        if None not in (batch, captions) and batch != captions:
            raise ValueError(
                f"CLIP needs one caption per image: got {batch} images and "
                f"{captions} captions in the batch."
            )
        if ids_shape[1] is not None and ids_shape[1] > self.sequence_length:
            raise ValueError(
                f"CLIP: captions of {ids_shape[1]} tokens are too long; the "
                f"text encoder takes at most {self.sequence_length} "
                "(`sequence_length`)."
            )
        if batch is not None and batch < 2:
            raise ValueError(
                "CLIP needs at least 2 image-caption pairs per batch (the "
                f"other pairs are the negatives); got {batch}."
            )

    def _text_inputs(self, token_ids):
        """What the text encoder takes: the ids, or a keras-hub style dict."""
        structure = getattr(self.text_encoder, "_inputs_struct", None)
        if not isinstance(structure, dict):
            return token_ids
        inputs = {}
        for name in structure:
            if name == "token_ids":
                inputs[name] = token_ids
            elif name == "padding_mask":
                inputs[name] = ops.not_equal(token_ids, self.pad_token_id)
            elif name == "segment_ids":
                inputs[name] = ops.zeros_like(token_ids)
            else:
                raise ValueError(
                    f"CLIP cannot feed the text encoder's input {name!r}; it "
                    "provides token_ids, padding_mask and segment_ids."
                )
        return inputs

    @staticmethod
    def _text_output(outputs):
        if isinstance(outputs, dict):
            if "sequence_output" not in outputs:
                raise ValueError(
                    "CLIP: a text encoder that returns a dict must have a "
                    f"'sequence_output'; got keys {sorted(outputs)}."
                )
            outputs = outputs["sequence_output"]
        return outputs

    def text_features(self, token_ids, training=False):
        """The text encoder's feature of each caption: its `[EOT]` token
        (the last non-padding position) of a sequence output."""
        token_ids = ops.convert_to_tensor(token_ids)
        features = self._text_output(
            self.text_encoder(self._text_inputs(token_ids), training=training)
        )
        if len(features.shape) == 2:
            return features
        lengths = ops.sum(
            ops.cast(ops.not_equal(token_ids, self.pad_token_id), "int32"),
            axis=1,
        )
        last = ops.maximum(lengths - 1, 0)[:, None, None]
        return ops.squeeze(ops.take_along_axis(features, last, axis=1), 1)

    def embed_images(self, images, training=False):
        """L2-normalised image embeddings `(B, projection_dim)`."""
        return self.project_image_features(self.encode(images, training=training))

    def project_image_features(self, features):
        """L2-normalised embeddings of pooled image-encoder features."""
        return l2_normalize(self.image_projection(features))

    def embed_token_ids(self, token_ids, training=False):
        """L2-normalised caption embeddings `(B, projection_dim)`."""
        return l2_normalize(
            self.text_projection(self.text_features(token_ids, training))
        )

    def call(self, inputs, training=False):
        images, token_ids = self.split_inputs(inputs)
        return {
            "image_embeddings": self.embed_images(images, training),
            "text_embeddings": self.embed_token_ids(token_ids, training),
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        images = y_pred["image_embeddings"]
        texts = y_pred["text_embeddings"]
        all_images, all_texts, offset = images, texts, 0
        if self.gather_global_batch:
            all_images, offset = self.gather_across_replicas(images)
            all_texts, _ = self.gather_across_replicas(texts)
        scale = clip_logit_scale(self.logit_scale, self.max_logit_scale)
        loss = clip_loss(images, texts, scale, all_images, all_texts, offset)
        similarities = ops.matmul(
            ops.cast(images, "float32"), ops.transpose(ops.cast(texts, "float32"))
        )
        hits = ops.equal(
            ops.argmax(similarities, axis=1), ops.arange(ops.shape(images)[0])
        )
        self.track(
            logit_scale=scale,
            retrieval_accuracy=ops.mean(ops.cast(hits, "float32")),
        )
        return loss

    # --- using a trained model ----------------------------------------------
    def tokenize(self, texts, truncate=False):
        """Token ids `(len(texts), sequence_length)` of captions, with the
        model's tokenizer (see `keras_ssl.data.tokenize_captions`)."""
        if self.tokenizer is None:
            raise ValueError(
                "This CLIP model has no tokenizer: pass `tokenizer=` when "
                "building it, or give token ids."
            )
        return tokenize_captions(
            self.tokenizer, texts, self.sequence_length, truncate=truncate
        )

    def encode_images(self, images, batch_size=256):
        """NumPy L2-normalised embeddings of `images`, in batches."""
        images = np.asarray(images, "float32")
        return self._batched(self.embed_images, images, batch_size)

    def encode_image_features(self, features, batch_size=256):
        """NumPy embeddings of pooled image-encoder features (e.g. from
        `keras_ssl.evaluation.extract_features(model.image_encoder, x)`)."""
        features = np.asarray(features, "float32")
        return self._batched(self.project_image_features, features, batch_size)

    def encode_texts(self, texts, batch_size=256, truncate=False):
        """NumPy L2-normalised embeddings of caption strings (or of a token
        id array), in batches."""
        ids = np.asarray(texts) if _is_id_array(texts) else self.tokenize(
            texts, truncate=truncate
        )
        return self._batched(self.embed_token_ids, ids.astype("int32"), batch_size)

    @staticmethod
    def _batched(function, values, batch_size):
        parts = [
            ops.convert_to_numpy(function(values[i : i + batch_size]))
            for i in range(0, len(values), batch_size)
        ]
        return np.concatenate(parts, axis=0).astype("float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_encoder": keras.saving.serialize_keras_object(
                    self.image_encoder
                ),
                "text_encoder": keras.saving.serialize_keras_object(
                    self.text_encoder
                ),
                "tokenizer": (
                    None
                    if self.tokenizer is None
                    else keras.saving.serialize_keras_object(self.tokenizer)
                ),
                "projection_dim": self.projection_dim,
                "sequence_length": self.sequence_length,
                "pad_token_id": self.pad_token_id,
                "initial_logit_scale": self.initial_logit_scale,
                "max_logit_scale": self.max_logit_scale,
                "gather_global_batch": self.gather_global_batch,
            }
        )
        return config


def _is_id_array(texts):
    return isinstance(texts, np.ndarray) and np.issubdtype(texts.dtype, np.integer)
