"""The language recipes: BERT, RoBERTa, GPT and T5 on a text corpus, end to end.

`pretrain_language(corpus, LanguageConfig(method="bert"))` trains the
method's tokenizer on the corpus, builds a small keras-hub backbone, fits the
method on a `tf.data` pipeline for a fixed number of optimizer steps and
measures, on held-out text:

- the objective itself: masked-token accuracy (BERT, RoBERTa; and NSP
  accuracy for BERT), perplexity against a unigram baseline (GPT), target
  token accuracy of span corruption and how much the decoder reads the
  encoder (`encoder_gain`, `keras_ssl.evaluation.encoder_dependence`) (T5);
- what pretraining buys downstream: which-document classification of the
  language reference's held-out paragraphs by a linear probe on the frozen
  mean-pooled features (and optionally by fine-tuning), for the pretrained
  backbone and for the same architecture at random initialisation
  (`keras_ssl.evaluation.text.pretraining_gain`).

| method  | tokenizer             | backbone          | objective                       |
|---------|-----------------------|-------------------|---------------------------------|
| bert    | WordPiece             | `BertBackbone`    | MLM 15% (80/10/10) + NSP, pairs |
| roberta | byte-level BPE        | `RobertaBackbone` | MLM, dynamic masks, FULL-SENTENCES, no NSP |
| gpt     | byte-level BPE        | `GPT2Backbone`    | next token, causal mask         |
| t5      | SentencePiece unigram | `T5Backbone`      | span corruption 15%, spans of 3 |

The `LanguageConfig` defaults are the small recipes for the embedded corpus
(the language reference and the standard library's docstrings, ~210 k
words); the methods' `embedded` and `paper` presets are in
`keras_ssl.recipes.presets`.
"""

from __future__ import annotations

import dataclasses
import time

import keras

from keras_ssl.recipes.configs import LanguageConfig
from keras_ssl.recipes.methods import methods_of

METHODS = methods_of("language")


# A quarter of the language reference's paragraphs is held out: the
# downstream task's test split (~150 paragraphs), never pretrained on.
DOWNSTREAM_TEST_FRACTION = 0.25


def downstream_corpus():
    """The language reference with its downstream test split held out."""
    from keras_ssl.datasets.text_corpus import load_python_docs

    return load_python_docs(test_fraction=DOWNSTREAM_TEST_FRACTION)


def embedded_corpus(docstrings=True):
    """The default corpus: the Python language reference (its downstream
    test paragraphs held out), plus (by default) the standard library's
    docstrings for more pretraining text."""
    from keras_ssl.datasets.text_corpus import load_python_docstrings, merge_corpora

    docs = downstream_corpus()
    return merge_corpora(docs, load_python_docstrings()) if docstrings else docs


# --- per-method pieces ---------------------------------------------------
def train_tokenizer(config, texts):
    """The method's tokenizer, trained on `texts`."""
    from keras_ssl.data import tokenizers

    size = config.vocabulary_size
    if config.method == "bert":
        return tokenizers.train_wordpiece(texts, size)
    if config.method in ("roberta", "gpt"):
        kind = "roberta" if config.method == "roberta" else "gpt2"
        return tokenizers.train_byte_bpe(texts, size, kind=kind)
    return tokenizers.train_sentencepiece(texts, size, num_sentinels=config.num_sentinels)


def build_backbone(config, tokenizer):
    """A keras-hub backbone of `config`'s size for the method."""
    import keras_hub

    sizes = dict(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        dropout=config.dropout,
        **config.backbone_options,
    )
    if config.method == "t5":
        from keras_ssl.backbones.t5 import t5_backbone

        return t5_backbone(**sizes)
    cls = {
        "bert": keras_hub.models.BertBackbone,
        "roberta": keras_hub.models.RobertaBackbone,
        "gpt": keras_hub.models.GPT2Backbone,
    }[config.method]
    return cls(max_sequence_length=config.sequence_length, **sizes)


def build_language_model(config, tokenizer, backbone=None):
    """The method's model (`MaskedLanguageModel`, `CausalLanguageModel` or
    `T5SpanCorruption`) over `backbone` (default: `build_backbone`)."""
    from keras_ssl.models.causal_lm import CausalLanguageModel
    from keras_ssl.models.masked_lm import MaskedLanguageModel
    from keras_ssl.models.span_corruption import T5SpanCorruption

    backbone = backbone if backbone is not None else build_backbone(config, tokenizer)
    if config.method in ("bert", "roberta"):
        return MaskedLanguageModel(
            backbone,
            next_sentence_prediction=config.method == "bert",
            tokenizer=tokenizer,
        )
    if config.method == "gpt":
        return CausalLanguageModel(backbone, tokenizer=tokenizer, seed=config.seed)
    _, targets_length = _t5_lengths(config)
    return T5SpanCorruption(
        backbone,
        tokenizer=tokenizer,
        encoder_sequence_length=config.sequence_length,
        decoder_sequence_length=targets_length,
    )


def _t5_lengths(config):
    from keras_ssl.data.span_corruption import span_corruption_lengths

    return span_corruption_lengths(
        config.sequence_length, config.noise_density, config.mean_span_length
    )


def language_dataset(config, tokenizer, documents, repeat=True, seed=None,
                     dynamic_masking=None):
    """The method's `tf.data` pipeline over `documents`: strings (tokenised
    once, in memory), or streamed text (a `keras_ssl.data.text_stream.
    TextStream`, read from its training part, or a `tf.data.Dataset` of
    strings), tokenised, packed and masked inside `tf.data`."""
    seed = config.seed if seed is None else seed
    from keras_ssl.data.text_stream import is_text_stream

    if is_text_stream(documents):
        return _stream_dataset(config, tokenizer, documents, repeat, seed,
                               dynamic_masking)
    import functools

    from keras_ssl.data.causal_lm import causal_lm_dataset
    from keras_ssl.data.masked_lm import masked_lm_dataset
    from keras_ssl.data.span_corruption import span_corruption_dataset

    return _objective_rows(
        config, tokenizer, documents, dynamic_masking, masked_lm_dataset,
        functools.partial(causal_lm_dataset, packing=True), span_corruption_dataset,
        batch_size=config.batch_size, seed=seed, repeat=repeat)


def _objective_rows(config, tokenizer, documents, dynamic_masking, masked_lm,
                    causal_lm, span_corruption, **common):
    """The method's pipeline from one of two sets of builders (in memory or
    streamed), with the config's objective settings."""
    if config.method in ("bert", "roberta"):
        bert = config.method == "bert"
        return masked_lm(
            documents, tokenizer, config.sequence_length,
            next_sentence_prediction=bert,
            packing="pairs" if bert else "full_sentences",
            dynamic_masking=(config.dynamic_masking if dynamic_masking is None
                             else dynamic_masking),
            mask_rate=config.mask_rate, **common,
        )
    if config.method == "gpt":
        return causal_lm(documents, tokenizer, config.sequence_length, **common)
    return span_corruption(
        documents, tokenizer, config.sequence_length, _t5_lengths(config)[1],
        noise_density=config.noise_density,
        mean_span_length=config.mean_span_length, **common,
    )


def _stream_dataset(config, tokenizer, documents, repeat, seed, dynamic_masking):
    """`language_dataset` of streamed text. With `repeat`, the training
    stream: endless (its cardinality infinite, so that a resumed run skips
    the batches it trained on), shuffled and the same from every iterator
    for a seed; without, the documents once, in order, every row kept."""
    from keras_ssl.data import text_stream

    buffer = getattr(documents, "row_shuffle_buffer",
                     text_stream.DEFAULT_ROW_SHUFFLE_BUFFER)
    documents = text_stream.documents_dataset(
        documents, "train", repeat=repeat, shuffle=repeat, seed=seed)
    data = _objective_rows(
        config, tokenizer, documents, dynamic_masking, text_stream.masked_lm_stream,
        text_stream.causal_lm_stream, text_stream.span_corruption_stream,
        batch_size=config.batch_size, seed=seed, drop_remainder=repeat,
        shuffle_buffer=buffer if repeat else 0)
    if repeat:  # endless already; `repeat` makes its cardinality say so
        return data.repeat()
    # A finite, bounded part (held-out text): cached, and its number of
    # batches known, as Keras' evaluate expects.
    import tensorflow as tf

    data = data.cache()
    count = int(data.reduce(0, tf.autograph.experimental.do_not_convert(
        lambda count, _: count + 1)))
    return data.apply(tf.data.experimental.assert_cardinality(count))


def make_language_optimizer(config):
    """AdamW (or Adafactor) with linear warmup and cosine decay over
    `config.steps`, summing `gradient_accumulation_steps` batches per
    update."""
    from keras_ssl.optimizers import make_optimizer

    return make_optimizer(
        config.optimizer, config.learning_rate, config.steps,
        warmup_steps=int(config.warmup_fraction * config.steps),
        weight_decay=config.weight_decay, beta_2=0.98, epsilon=1e-6,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
    )


def objective_scores(model, config, tokenizer, corpus):
    """The objective on the held-out text (static masks / fixed seed); of a
    `TextStream`, on its first `max_test_documents` held-out paragraphs."""
    from keras_ssl.data.text_stream import TextStream

    streamed = isinstance(corpus, TextStream)
    test = corpus.dataset("test") if streamed else corpus.test_documents
    dataset = language_dataset(
        config, tokenizer, test, repeat=False, seed=1234,
        dynamic_masking=False,
    )
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    scores = {f"test_{k}": float(v) for k, v in results.items()}
    if config.method == "t5":
        from keras_ssl.evaluation.encoder_dependence import encoder_dependence

        # Nats per target token the decoder gets from the encoder's input.
        scores["encoder_gain"] = encoder_dependence(model, dataset)["gain"]
    if config.method == "gpt":
        from keras_ssl.evaluation.perplexity import perplexity, unigram_perplexity

        # A stream's unigram counts: as many training paragraphs as the test.
        documents = (corpus.dataset("train").take(corpus.max_test_documents)
                     if streamed else corpus.documents)
        train = language_dataset(config, tokenizer, documents,
                                 repeat=False, seed=1234)
        scores["test_perplexity"] = float(perplexity(model, dataset))
        scores["unigram_perplexity"] = float(
            unigram_perplexity(train, dataset, tokenizer.vocabulary_size())
        )
    return scores


def downstream_scores(model, tokenizer, config, topics=None):
    """Which-document classification, pretrained vs random init: a probe on
    the mean-pooled token features (every method) and, for BERT, also on
    its pooled `[CLS]` feature (`probe_cls`), which next-sentence
    prediction trains."""
    from keras_ssl.evaluation.text import pretraining_gain

    common = dict(
        num_classes=config.downstream_classes,
        sequence_length=config.sequence_length,
        fine_tune_epochs=config.fine_tune_epochs, seed=config.seed,
    )
    topics = topics or downstream_corpus()
    scores = pretraining_gain(model.backbone, tokenizer, topics, **common)
    if config.method == "bert":
        cls = pretraining_gain(model.backbone, tokenizer, topics, pooling="cls",
                               **dict(common, fine_tune_epochs=0))
        for part in scores:
            scores[part]["probe_cls"] = cls[part]["probe"]
    return scores


@dataclasses.dataclass
class LanguageResult:
    model: keras.Model
    tokenizer: object
    history: dict
    scores: dict
    downstream: dict
    train_seconds: float
    samples: list = dataclasses.field(default_factory=list)


def pretrain_language(corpus=None, config=None, callbacks=(), verbose="auto",
                      downstream=True, prompts=None):
    """Trains a language method on `corpus` (default: `embedded_corpus()`)
    and measures it (see the module docstring).

    `corpus` is a `TextCorpus` (in memory, e.g. the embedded corpus) or a
    `keras_ssl.data.text_stream.TextStream` (files, folders or TFDS text
    streamed from disk: `stream_text_files`, `stream_tfds_text`). A stream's
    tokenizer is trained on its bounded sample (`TextStream.sample_texts`),
    its batches are tokenised, packed and masked in `tf.data` from an
    endless, seeded stream, and the objective is measured on its held-out
    paragraphs.

    Example:

    ```python
    from keras_ssl.language import LanguageConfig, pretrain_language
    result = pretrain_language(config=LanguageConfig("gpt", steps=200))
    print(result.scores["test_perplexity"], result.scores["unigram_perplexity"])
    print(result.samples)
    ```

    Returns:
        A `LanguageResult`: the model (its tokenizer inside), the history,
        the held-out objective scores, the downstream table and, for GPT,
        a few generated samples.
    """
    config = config or LanguageConfig()
    corpus = corpus if corpus is not None else embedded_corpus()
    keras.utils.set_random_seed(config.seed)
    from keras_ssl.data.text_stream import TextStream

    if isinstance(corpus, TextStream):
        tokenizer = train_tokenizer(config, corpus.sample_texts(seed=config.seed))
        documents = corpus
    else:
        tokenizer = train_tokenizer(config, corpus.documents)
        documents = corpus.documents
    model = build_language_model(config, tokenizer)
    dataset = language_dataset(config, tokenizer, documents)
    # Built before fit: a resumed run (ResumableBackup) restores into it.
    model(keras.utils.unpack_x_y_sample_weight(next(iter(dataset)))[0])
    model.compile(optimizer=make_language_optimizer(config))
    from keras_ssl.callbacks import fit_schedule

    epochs, steps_per_epoch, stop = fit_schedule(config.steps, config.steps_per_epoch)
    start = time.perf_counter()
    history = model.fit(
        dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
        callbacks=[*callbacks, *stop], verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    scores = objective_scores(model, config, tokenizer, corpus)
    samples = []
    if config.method == "gpt":
        prompts = prompts or ["The if statement", "A class is", "An exception"]
        samples = [
            model.generate(p, max_length=min(48, config.sequence_length),
                           sampler="top_p", p=0.9)
            for p in prompts
        ]
    return LanguageResult(
        model=model,
        tokenizer=tokenizer,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        scores=scores,
        downstream=downstream_scores(model, tokenizer, config) if downstream else {},
        train_seconds=train_seconds,
        samples=samples,
    )
