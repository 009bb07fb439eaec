"""T5's own initialisation for keras-hub's `T5Backbone`.

keras-hub (0.32) builds `T5Backbone`'s token embedding with
`keras.initializers.TruncatedNormal(1.0)`. `TruncatedNormal`'s first argument
is the *mean*, so every token starts as the all-ones vector plus noise of
standard deviation 0.05, where T5 (Mesh TensorFlow, and Hugging Face's
`T5PreTrainedModel._init_weights`) draws each entry from N(0, 1). With
keras-hub's values the encoder's output hardly depends on its input at
initialisation (the RMS norm maps every token to nearly the same vector), and
a small T5 trained from it does not learn to read its encoder: on the embedded
corpus it cannot even pass one repeated token from its encoder to its decoder
(`tests/backbones/test_t5_init.py`), and after span corruption its decoder does
not read the encoder at all (`benchmarks/language_quality.py`; see
docs/results/language.md). Hugging Face's TensorFlow and Flax T5 once had the same kind of bug,
with the same symptom (pre-training loss stuck near 4.5; transformers issue
13327, fixed in pull request 17294). The other weights keras-hub
initialises as T5 does, so only the embedding (and the separate output
embedding of an untied model, which keras uses the same initializer for) is
redrawn here.

Example:

```python
from keras_ssl.backbones import t5_backbone

backbone = t5_backbone(vocabulary_size=1000, num_layers=2, num_heads=4,
                       hidden_dim=64, intermediate_dim=256)
float(backbone.token_embedding.embeddings.numpy().mean())  # ~0.0, not ~1.0
```
"""

import keras

# T5's initialisation of the token embedding (Hugging Face: `factor * 1.0`).
EMBEDDING_STDDEV = 1.0


def initialize_t5_embeddings(backbone, seed=None):
    """Redraws a keras-hub `T5Backbone`'s token embedding (and, if untied,
    its output embedding) from N(0, 1), as T5 initialises them; returns
    `backbone`. Seeded by `seed`, else by Keras' global seed
    (`keras.utils.set_random_seed`).

    Only for a backbone that has not been trained: it overwrites the
    embedding's values.
    """
    import keras_hub

    if not isinstance(backbone, keras_hub.models.T5Backbone):
        raise TypeError(
            "initialize_t5_embeddings takes a keras_hub.models.T5Backbone; "
            f"got {type(backbone).__name__}."
        )
    embedding = backbone.token_embedding

    def draw(variable, seed):
        initializer = keras.initializers.RandomNormal(0.0, EMBEDDING_STDDEV, seed=seed)
        variable.assign(initializer(variable.shape, dtype=variable.dtype))

    draw(embedding.embeddings, seed)
    if not embedding.tie_weights:
        # Its own initializer: one (seeded or not) gives every call the same
        # values, which would make this matrix the input embedding reshaped.
        draw(embedding.reverse_embeddings, None if seed is None else seed + 1)
    return backbone


def t5_backbone(seed=None, **kwargs):
    """`keras_hub.models.T5Backbone(**kwargs)` with T5's initialisation of
    the token embedding (`initialize_t5_embeddings`)."""
    import keras_hub

    return initialize_t5_embeddings(keras_hub.models.T5Backbone(**kwargs), seed)


def reinitialize(backbone):
    """The initialisation fixes keras-ssl applies to a freshly built
    `backbone` of any class (today: T5's token embedding); returns it."""
    import keras_hub

    if isinstance(backbone, keras_hub.models.T5Backbone):
        initialize_t5_embeddings(backbone)
    return backbone
