"""keras_ssl.language: each recipe end to end at a tiny size, the CLI, and the
language methods' paper presets.

The end-to-end runs are the slowest part: each method runs on one backend
(the harness-style tests in tests/models run every backend).
"""

import dataclasses
import json

import keras
import keras_hub
import numpy as np
import pytest

from conftest import BACKEND
from keras_ssl.language import METHODS, LanguageConfig, pretrain_language

TINY = dict(vocabulary_size=400, sequence_length=32, hidden_dim=16,
            num_layers=1, num_heads=2, intermediate_dim=32, steps=6,
            steps_per_epoch=3, batch_size=8, downstream_classes=4)
# Each method end to end on one backend (all three with the full matrix).
HOME_BACKEND = {"bert": "tensorflow", "roberta": "jax", "gpt": "torch",
                "t5": "tensorflow"}


@pytest.fixture(scope="module")
def small_corpus(python_docs):
    from keras_ssl.datasets.text_corpus import TextCorpus

    keep = 24  # the largest documents keep the which-document task
    order = np.argsort([-len(p) for p in python_docs.train_paragraphs])[:keep]
    return TextCorpus(
        [python_docs.names[i] for i in order],
        [python_docs.train_paragraphs[i] for i in order],
        [python_docs.test_paragraphs[i] for i in order],
    )


def _home(method):
    from harness import FULL_MATRIX

    if not FULL_MATRIX and BACKEND != HOME_BACKEND[method]:
        pytest.skip(f"{method} runs end to end under {HOME_BACKEND[method]}")


@pytest.mark.parametrize("method", METHODS)
def test_recipe_trains_measures_and_exports(method, small_corpus, tmp_path,
                                            monkeypatch):
    _home(method)
    import keras_ssl.language as language
    from keras_ssl.evaluation.text import pretraining_gain

    # The downstream task on the small corpus (the real run uses the
    # language reference).
    monkeypatch.setattr(
        language, "downstream_scores",
        lambda model, tok, config, topics=None: pretraining_gain(
            model.backbone, tok, small_corpus, num_classes=4,
            sequence_length=config.sequence_length,
        ),
    )
    config = LanguageConfig(method=method, **TINY)
    result = pretrain_language(small_corpus, config, verbose=0)
    assert len(result.history["loss"]) == config.epochs
    assert all(np.isfinite(result.history["loss"]))
    assert result.scores and all(np.isfinite(list(result.scores.values())))
    for part in ("pretrained", "random_init"):
        assert 0.0 <= result.downstream[part]["probe"] <= 1.0
    if method == "t5":  # how much the decoder reads the encoder is reported
        assert "encoder_gain" in result.scores
    if method == "gpt":
        assert result.scores["unigram_perplexity"] > 1
        assert len(result.samples) == 3 and all(isinstance(s, str) for s in result.samples)
    # The backbone and its tokenizer export as a keras-hub preset.
    preset = str(tmp_path / "preset")
    result.model.backbone.save_to_preset(preset)
    result.tokenizer.save_to_preset(preset)
    backbone = keras_hub.models.Backbone.from_preset(preset)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert type(backbone) is type(result.model.backbone)
    assert tokenizer.get_vocabulary() == result.tokenizer.get_vocabulary()


def test_config_errors():
    with pytest.raises(ValueError, match="unknown language method 'bart'"):
        LanguageConfig(method="bart")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        LanguageConfig(hidden_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        LanguageConfig(steps=0)
    with pytest.raises(ValueError, match="optimizer must be"):
        LanguageConfig(optimizer="sgd")


def test_cli_pretrains_gpt_on_a_text_file(tmp_path, capsys):
    if BACKEND != "torch":
        pytest.skip("one CLI run, under torch")
    from keras_ssl import cli
    from keras_ssl.datasets.text_corpus import load_python_docs

    text = tmp_path / "docs.txt"
    text.write_text("\n\n".join(
        p for doc in load_python_docs().train_paragraphs[:12] for p in doc
    ))
    out = tmp_path / "run"
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()
             if k not in ("steps", "downstream_classes")]
    code = cli.main(["pretrain", "gpt", "--dataset", str(text), "--steps", "4",
                     *sizes, "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "generated:" in printed and "test_perplexity" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "gpt" and summary["config"]["steps"] == 4
    for name in ("model.keras", "encoder_preset", "causal_lm_preset",
                 "training.png", "history.json"):
        assert (out / name).exists(), name
    lm = keras_hub.models.GPT2CausalLM.from_preset(str(out / "causal_lm_preset"))
    assert isinstance(lm.generate("The", max_length=8), str)


def test_cli_rejects_a_missing_text_path(tmp_path, capsys):
    from keras_ssl import cli

    code = cli.main(["pretrain", "bert", "--dataset", str(tmp_path / "nope.txt"),
                     "--backend", BACKEND])
    assert code == 2
    assert "nope.txt' not found" in capsys.readouterr().err


@pytest.mark.parametrize("method", METHODS)
def test_paper_preset_backbone_options_build(method):
    from keras_ssl.language import build_backbone
    from keras_ssl.recipes import make_config

    paper = make_config(method, "paper")
    # The paper's backbone options build (at a tiny size).
    tiny = dataclasses.replace(paper, hidden_dim=16, num_heads=2, num_layers=1,
                               intermediate_dim=32, sequence_length=16)

    class Vocabulary:
        def vocabulary_size(self):
            return 64

    if "key_value_dim" in tiny.backbone_options:
        tiny = dataclasses.replace(
            tiny, backbone_options=dict(tiny.backbone_options, key_value_dim=8)
        )
    backbone = build_backbone(tiny, Vocabulary())
    assert backbone.count_params() > 0
    keras.backend.clear_session()


def test_language_methods_registry_matches_the_recipes_and_the_cli():
    from keras_ssl import recipes
    from keras_ssl.models import LANGUAGE_METHODS

    assert tuple(LANGUAGE_METHODS) == METHODS == recipes.methods_of("language")
