"""GPT: a causal language model trained by next-token prediction, and its
text generation."""

import keras
from keras import ops

from keras_ssl.data.causal_lm import check_tokenizer
from keras_ssl.losses.masked_tokens import masked_token_accuracy, masked_token_loss
from keras_ssl.models.language_model import LanguageModel

_BACKBONE_API = ("token_embedding", "vocabulary_size", "max_sequence_length",
                 "num_layers", "hidden_dim")
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
SAMPLERS = ("greedy", "top_k", "top_p", "random")


class _Generation:
    """The keras-hub `GPT2CausalLM` that `generate` runs, kept out of Keras'
    and torch's attribute tracking (it shares the backbone, whose weights
    must be saved once, as the method's)."""

    def __init__(self):
        self.lm = None
        self.key = None
        self.sampler = None


@keras.saving.register_keras_serializable(package="keras_ssl")
class CausalLanguageModel(LanguageModel):
    """GPT (Radford et al., 2018, 2019): a causal language model.

    "We use a standard language modeling objective to maximize the
    following likelihood: L(U) = Σ_i log P(u_i | u_{i−k}, ..., u_{i−1}; Θ)
    [...] We use a multi-layer Transformer decoder". Each position attends
    to the positions before it only (the backbone's causal mask), and its
    output, through the token embedding matrix transposed (the input and
    output embeddings are tied, as in GPT-2), scores the next token:

    ```
    for minibatch (ids, mask) of rows (B, L):        # <|endoftext|> doc ...
        h = gpt2_backbone(ids, mask)                 # causal self-attention
        logits = h @ token_embedding.T               # (B, L, V), tied
        loss = cross_entropy(logits[:, :-1], ids[:, 1:])
               averaged over the targets that are text (mask[:, 1:])
    ```

    The inputs are shifted by one inside the model, so a row of `L` tokens
    gives `L - 1` predictions and the data are plain token rows
    (`keras_ssl.data.causal_lm_dataset`). `next-token accuracy` is logged
    beside the loss as `accuracy`.

    Generation (`generate`) runs keras-hub's `GPT2CausalLM` on the same
    backbone (built once and cached; `to_keras_hub` returns it): its KV-cached
    decoding loop, compiled with `tf.function(jit_compile=True)` under
    TensorFlow and `jax.jit` under JAX (keras-hub runs it eagerly, without
    autograd, under PyTorch), and its samplers (greedy, top-k, top-p,
    random, any `keras_hub.samplers.Sampler`). Random samplers draw from
    their `keras.random.SeedGenerator`, seeded by `seed`. `save_to_preset`
    on `to_keras_hub()` writes a keras-hub preset that
    `keras_hub.models.GPT2CausalLM.from_preset` reloads.

    Inputs (to `call`, `fit`): a dict `{"token_ids": (B, L) ints,
    "padding_mask": (B, L)}` (what `causal_lm_dataset` yields), or token ids
    alone (no padding). `L` is at most the backbone's `max_sequence_length`.

    Outputs of `call`: the next-token logits `(B, L, V)` (position `i`
    scores token `i + 1`).

    Args:
        backbone: a keras-hub `GPT2Backbone` (`dropout=0.1` in GPT-2).
        tokenizer: optional `GPT2Tokenizer` of the corpus, with
            `<|endoftext|>` (`keras_ssl.data.train_byte_bpe(..., kind="gpt2")`);
            needed by `generate`, saved with the model. Its vocabulary must
            be the backbone's `vocabulary_size`.
        seed: seed of the random samplers of `generate`.

    Example:

    ```python
    import keras, keras_hub
    from keras_ssl.data.causal_lm import causal_lm_dataset
    from keras_ssl.data.tokenizers import train_byte_bpe
    from keras_ssl.datasets.text_corpus import load_python_docs
    from keras_ssl.models.causal_lm import CausalLanguageModel

    corpus = load_python_docs()
    tokenizer = train_byte_bpe(corpus.documents, 2000, kind="gpt2")
    data = causal_lm_dataset(corpus.documents, tokenizer, 64, 32)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
        num_heads=4, hidden_dim=128, intermediate_dim=512,
        max_sequence_length=64)
    model = CausalLanguageModel(backbone, tokenizer)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(data, epochs=5)
    model.generate("The if statement", max_length=40, sampler="top_p", p=0.9)
    model.to_keras_hub().save_to_preset("gpt_python_docs")
    ```
    """

    nested_models = ("backbone", "tokenizer")

    nan_hints = (
        "a learning rate too high for a Transformer without warm-up (try "
        "1e-3 or less, or a warm-up schedule)",
    )

    def __init__(self, backbone, tokenizer=None, seed=None, **kwargs):
        super().__init__(backbone, tokenizer=tokenizer, **kwargs)
        self.require_api(
            backbone, _BACKBONE_API, "CausalLanguageModel's backbone",
            "a causal Transformer with a reversible token embedding, such as "
            "`keras_hub.models.GPT2Backbone`",
        )
        if tokenizer is not None:
            self.require_api(
                tokenizer, ("end_token_id", "pad_token_id", "detokenize",
                            "vocabulary_size"),
                "CausalLanguageModel's tokenizer",
                "a byte-level BPE `keras_hub.tokenizers.GPT2Tokenizer`",
            )
        self.seed = seed
        self._check_vocabulary()
        self._generation = _Generation()
        self.add_metric_trackers("accuracy")
        self.build(None)

    @property
    def max_sequence_length(self):
        return int(self.backbone.max_sequence_length)

    def _check_vocabulary(self):
        if not self.check_tokenizer_vocabulary(exact=True):
            return
        pad, end = self.tokenizer.pad_token_id, self.tokenizer.end_token_id
        if pad is not None and pad == end:
            raise ValueError(
                "CausalLanguageModel's tokenizer pads with its <|endoftext|> id "
                f"({end}): keras-hub's generation stops at the first "
                "<|endoftext|> after the prompt, padding included, so it could "
                "never generate. Give <|endoftext|> the last id (as GPT-2 "
                "does) with `keras_ssl.data.causal_lm.end_token_last("
                "tokenizer)` before tokenizing the corpus."
            )

    def build(self, input_shape=None):
        # Every size is known from the (functional) backbone.
        self.built = True

    # --- inputs -------------------------------------------------------------
    def _inputs_message(self, got):
        return (
            "CausalLanguageModel takes a dict {'token_ids': (B, L) ints, "
            "'padding_mask': (B, L)} or token ids (B, L) alone; got "
            f"{got}. Build inputs with `keras_ssl.data.causal_lm_dataset`."
        )

    def split_inputs(self, inputs, min_length=1):
        """`(token_ids, padding_mask)` from the model's inputs, checked (the
        mask is all ones when only ids are given)."""
        name = type(self).__name__
        if isinstance(inputs, (tuple, list)) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(inputs, dict):
            keys = set(inputs)
            if "token_ids" not in keys or keys - {"token_ids", "padding_mask"}:
                raise ValueError(self._inputs_message(f"keys {sorted(keys)}"))
            token_ids = inputs["token_ids"]
            padding_mask = inputs.get("padding_mask")
        elif hasattr(inputs, "shape"):
            token_ids, padding_mask = inputs, None
        else:
            raise ValueError(self._inputs_message(type(inputs).__name__))
        shape = tuple(token_ids.shape)
        dtype = keras.backend.standardize_dtype(token_ids.dtype)
        if len(shape) != 2:
            raise ValueError(
                f"{name}: token_ids must be a batch (batch, sequence) of token "
                f"ids; got shape {shape}."
            )
        if dtype not in _INT_DTYPES:
            raise ValueError(
                f"{name}: token_ids must be integers; got dtype {dtype}. "
                "Tokenize text with `keras_ssl.data.causal_lm_dataset`."
            )
        length = shape[1]
        if length is not None and length > self.max_sequence_length:
            raise ValueError(
                f"{name}: rows of {length} tokens are longer than the "
                f"backbone's context (`max_sequence_length` = "
                f"{self.max_sequence_length})."
            )
        if length is not None and length < min_length:
            raise ValueError(
                f"{name} needs rows of at least {min_length} tokens (an input "
                f"and its next-token target); got {length}."
            )
        if padding_mask is None:
            padding_mask = ops.ones_like(token_ids, dtype="int32")
        elif tuple(padding_mask.shape) != shape:
            raise ValueError(
                f"{name}: padding_mask must have the shape of token_ids "
                f"{shape}; got {tuple(padding_mask.shape)}."
            )
        return token_ids, padding_mask

    # --- the method ---------------------------------------------------------
    def call(self, inputs, training=False):
        token_ids, padding_mask = self.split_inputs(inputs)
        hidden = self.backbone(
            {
                "token_ids": ops.cast(token_ids, "int32"),
                "padding_mask": ops.cast(padding_mask, "int32"),
            },
            training=training,
        )
        return self.backbone.token_embedding(hidden, reverse=True)

    def next_token_targets(self, x, sample_weight=None):
        """`(targets, weights)` `(B, L - 1)`: token `i + 1` is position `i`'s
        target where both are text (times `sample_weight`, per row `(B,)` or
        per token `(B, L)`, when given)."""
        token_ids, padding_mask = self.split_inputs(x, min_length=2)
        mask = ops.cast(padding_mask, "float32")
        weights = mask[:, 1:] * mask[:, :-1]
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) == 1:
                weights = weights * sample_weight[:, None]
            else:
                weights = weights * sample_weight[:, 1:]
        return ops.cast(token_ids[:, 1:], "int32"), weights

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        targets, weights = self.next_token_targets(x, sample_weight)
        logits = y_pred[:, :-1]
        self.track(accuracy=masked_token_accuracy(logits, targets, weights))
        return masked_token_loss(logits, targets, weights)

    # --- generation ---------------------------------------------------------
    def _require_tokenizer(self, what):
        if self.tokenizer is None:
            raise ValueError(
                f"CausalLanguageModel.{what} needs the model's tokenizer: pass "
                "`tokenizer=` (a `GPT2Tokenizer`) when building the model."
            )
        check_tokenizer(self.tokenizer, f"CausalLanguageModel.{what}")
        self._check_vocabulary()
        return self.tokenizer

    def to_keras_hub(self):
        """The keras-hub `GPT2CausalLM` on this model's backbone (shared
        weights: it sees further training) and tokenizer, with a
        `GPT2CausalLMPreprocessor` of the backbone's context length. Its
        `save_to_preset(path)` writes a preset that
        `keras_hub.models.GPT2CausalLM.from_preset(path)` reloads."""
        import keras_hub

        tokenizer = self._require_tokenizer("to_keras_hub")
        if self._generation.lm is None:
            preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
                tokenizer, sequence_length=self.max_sequence_length
            )
            self._generation.lm = keras_hub.models.GPT2CausalLM(
                backbone=self.backbone, preprocessor=preprocessor
            )
        return self._generation.lm

    def make_sampler(self, sampler="greedy", temperature=1.0, k=5, p=0.9):
        """A `keras_hub.samplers.Sampler` from a name of `SAMPLERS` (with
        its `temperature`, top-k's `k`, top-p's `p`, seeded by `seed`) or
        the sampler itself."""
        import keras_hub

        if isinstance(sampler, keras_hub.samplers.Sampler):
            return sampler
        if sampler not in SAMPLERS:
            raise ValueError(
                f"sampler must be one of {SAMPLERS} or a "
                f"`keras_hub.samplers.Sampler`; got {sampler!r}."
            )
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive; got {temperature}.")
        temperature = float(temperature)
        if sampler == "greedy":
            return keras_hub.samplers.GreedySampler(temperature=temperature)
        if sampler == "random":
            return keras_hub.samplers.RandomSampler(
                seed=self.seed, temperature=temperature
            )
        if sampler == "top_k":
            if int(k) < 1 or int(k) != k:
                raise ValueError(f"top_k needs an integer k ≥ 1; got {k}.")
            return keras_hub.samplers.TopKSampler(
                k=int(k), seed=self.seed, temperature=temperature
            )
        if not 0.0 < float(p) <= 1.0:
            raise ValueError(f"top_p needs p in (0, 1]; got {p}.")
        return keras_hub.samplers.TopPSampler(
            p=float(p), seed=self.seed, temperature=temperature
        )

    def _lm_with_sampler(self, sampler, temperature, k, p):
        """The cached keras-hub model, compiled with the requested sampler
        (re-compiled, which re-traces generation, only when it changes)."""
        lm = self.to_keras_hub()
        key = (
            ("instance", id(sampler)) if not isinstance(sampler, str)
            else (sampler, float(temperature), k, p)
        )
        state = self._generation
        if state.key != key or getattr(lm, "sampler", None) is not state.sampler:
            # Compiled generation wherever keras-hub compiles it (XLA under
            # TensorFlow, also on CPU; jax.jit); PyTorch runs it eagerly.
            lm.compile(
                sampler=self.make_sampler(sampler, temperature, k, p),
                jit_compile=True,
            )
            state.key, state.sampler = key, lm.sampler
        return lm

    def generate(self, prompts, max_length=None, sampler="greedy",
                 temperature=1.0, k=5, p=0.9, strip_prompt=False):
        """Continues each prompt, token by token, until `<|endoftext|>` or
        `max_length` tokens (the prompt and the leading `<|endoftext|>`
        included).

        Args:
            prompts: a string or a list of strings (not empty).
            max_length: the longest sequence in tokens (default and maximum:
                the backbone's `max_sequence_length`).
            sampler: "greedy", "top_k", "top_p", "random" or a
                `keras_hub.samplers.Sampler`.
            temperature: divides the logits before sampling (named samplers).
            k: top-k's number of candidates.
            p: top-p's probability mass.
            strip_prompt: return the continuations only.

        Returns:
            A string per prompt (a string for a string).

        Raises:
            ValueError: without a tokenizer, for an empty prompt, a prompt
                that leaves no room for a new token within `max_length`, or a
                `max_length` beyond the backbone's context.
        """
        tokenizer = self._require_tokenizer("generate")
        single = isinstance(prompts, str)
        prompts = [prompts] if single else list(prompts)
        if not prompts:
            raise ValueError("CausalLanguageModel.generate: no prompts given.")
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(
                    f"CausalLanguageModel.generate: prompt {i} is empty (or not "
                    f"a string): {prompt!r}."
                )
        if max_length is None:
            max_length = self.max_sequence_length
        if not 2 <= int(max_length) <= self.max_sequence_length:
            raise ValueError(
                f"CausalLanguageModel.generate: max_length must be in [2, "
                f"{self.max_sequence_length}] (the backbone's "
                f"`max_sequence_length`); got {max_length}."
            )
        from keras_ssl.data.tokenizers import token_id_lists

        for i, ids in enumerate(token_id_lists(tokenizer, prompts)):
            if 1 + len(ids) >= int(max_length):
                raise ValueError(
                    f"CausalLanguageModel.generate: prompt {i} has {len(ids)} "
                    f"tokens (+1 for <|endoftext|>), which leaves no room for "
                    f"a new token within max_length={max_length} (the model's "
                    f"context is {self.max_sequence_length} tokens); shorten "
                    "the prompt."
                )
        lm = self._lm_with_sampler(sampler, temperature, k, p)
        outputs = lm.generate(
            prompts, max_length=int(max_length), strip_prompt=strip_prompt
        )
        outputs = [_as_text(text) for text in _flatten(outputs)]
        return outputs[0] if single else outputs

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


def _flatten(outputs):
    if hasattr(outputs, "numpy"):
        outputs = outputs.numpy()
    if hasattr(outputs, "tolist"):
        outputs = outputs.tolist()
    if isinstance(outputs, (str, bytes)):
        return [outputs]
    return list(outputs)


def _as_text(text):
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)
