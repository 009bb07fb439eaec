"""What the language methods share: a keras-hub text backbone, the tokenizer
saved with it, and the vocabulary check between the two."""

import keras

from keras_ssl.models.ssl_model import SSLModel


class LanguageModel(SSLModel):
    """Base class of `MaskedLanguageModel`, `CausalLanguageModel` and
    `T5SpanCorruption`.

    Holds `backbone` (a built keras-hub backbone: every size is known from
    it) and an optional `tokenizer`, both serialised with the model, so a
    `.keras` file carries its vocabulary. `encoder` is the backbone: what
    downstream models and `keras_ssl.evaluation.text` use.
    """

    def __init__(self, backbone, tokenizer=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.tokenizer = tokenizer

    @property
    def encoder(self):
        """The backbone (what `encode` and downstream models use)."""
        return self.backbone

    def build(self, input_shape=None):
        # The backbone is a built functional model.
        self.built = True

    def check_tokenizer_vocabulary(self, exact=False):
        """Raises a `ValueError` naming both sizes when the tokenizer has more
        tokens than the backbone embeds (or, with `exact`, a different
        number: a causal LM predicts every id of its vocabulary).

        Returns:
            False when there is nothing to check yet (no tokenizer, or a
            deserialised one before its vocabulary asset loads), else True.
        """
        if self.tokenizer is None:
            return False
        try:
            size = int(self.tokenizer.vocabulary_size())
        except (TypeError, ValueError, AttributeError):
            return False
        embedded = int(self.backbone.vocabulary_size)
        if size > embedded or (exact and size != embedded):
            raise ValueError(
                f"Tokenizer vocabulary/model mismatch: the tokenizer has {size} "
                f"tokens but the {type(self.backbone).__name__} embeds "
                f"{'' if exact else 'only '}{embedded} (`vocabulary_size`); "
                "build the backbone with "
                "`vocabulary_size=tokenizer.vocabulary_size()`."
            )
        return True

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        config["tokenizer"] = (
            None if self.tokenizer is None
            else keras.saving.serialize_keras_object(self.tokenizer)
        )
        return config
