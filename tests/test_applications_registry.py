"""keras_ssl.applications: the registry, the shipped weights, and a
downstream task per modality where the shipped backbone beats the same
architecture at random initialisation."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

from keras_ssl import applications
from keras_ssl.applications.registry import RECORD, WEIGHTS_DIR, _all
from keras_ssl.evaluation.text import random_init_like

EMBEDDED = applications.list(embedded=True)


def on_its_backend(name):
    """Runs a downstream test under the backend the shipped weights were
    trained with only: their quality does not depend on the backend, and
    `test_shipped_backbone_loads_on_this_backend` checks every backend loads
    them."""
    backend = applications.get(name).backend
    return pytest.mark.skipif(keras.backend.backend() != backend,
                              reason=f"{name}'s quality is checked under {backend}")


def _frozen_classifier_accuracy(backbone, x_train, y_train, x_test, y_test,
                                num_classes, epochs=4, samples_per_epoch=20_000):
    """The README's "drop it into a classifier": a frozen backbone, global
    average pooling of its feature map and a softmax layer (features
    standardised by a Normalization layer). The head trains on the pooled
    features, computed once (the backbone is frozen, so this is the same as
    fitting the whole classifier, only faster); the assembled classifier
    then predicts the test images."""
    from keras_ssl.evaluation import extract_features

    backbone.trainable = False
    features = extract_features(backbone, x_train)
    norm = keras.layers.Normalization()
    norm.adapt(features)
    head = keras.Sequential([norm, keras.layers.Dense(num_classes, activation="softmax")])
    keras.utils.set_random_seed(0)
    head.compile(optimizer=keras.optimizers.Adam(3e-3),
                 loss="sparse_categorical_crossentropy")
    # Few long epochs (~80 steps each): Keras' per-epoch overhead dominates
    # a tiny head.
    repeats = -(-samples_per_epoch // len(features))
    head.fit(np.tile(features, (repeats, 1)), np.tile(y_train, repeats),
             epochs=epochs, batch_size=256, verbose=0)
    classifier = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D(), head])
    probabilities = classifier.predict(x_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=-1) == y_test))


def test_list_and_get():
    import keras_ssl

    names = applications.list()
    assert keras_ssl.applications.list() == names  # reachable as an attribute
    assert len(names) == len(set(names)) >= 15
    assert set(EMBEDDED) >= {"simclr_digits", "gpt_python_docs", "clip_digits",
                             "roberta_python_docs", "wav2vec2_speech"}
    assert set(applications.list(modality="language")) >= {
        "gpt_python_docs", "bert_base", "roberta_base", "gpt2_small", "t5_small"}
    assert {applications.get(n).modality for n in names} == {
        "vision", "language", "speech", "image-text"}
    with pytest.raises(KeyError, match="simclr_digits"):
        applications.get("simclr_mnist")


@pytest.mark.parametrize("app", _all(), ids=lambda a: a.name)
def test_every_recipe_is_a_config_of_its_method(app):
    config = app.recipe()
    assert dataclasses.is_dataclass(config)
    method = getattr(config, "method", None)
    if app.modality in ("vision", "language"):
        assert method == app.method
    if not app.embedded:
        # Full size: the papers' sizes, from the method's paper preset.
        width = getattr(config, "hidden_dim", None) or getattr(config, "text_width", 0)
        assert (getattr(config, "backbone", "") or "").startswith(
            ("resnet50", "vit_base")) or width >= 512
        with pytest.raises(ValueError, match="downloads nothing"):
            app.load()
    assert app.recipe(seed=3).seed == 3


def test_shipped_weights_are_small_and_recorded():
    total = sum(f.stat().st_size for f in WEIGHTS_DIR.rglob("*") if f.is_file())
    assert total <= 20 * 2**20, f"shipped weights are {total / 2**20:.1f} MB"
    for name in EMBEDDED:
        app = applications.get(name)
        record = app.record
        assert record["application"] == name
        assert record["command"] == app.command
        assert record["backend"] == app.backend
        assert record["parameters"] > 0
        assert "python -m keras_ssl.applications " + name in app.command


@pytest.mark.parametrize("name", EMBEDDED)
def test_shipped_backbone_loads_on_this_backend(name):
    app = applications.get(name)
    backbone = app.load()
    assert isinstance(backbone, keras.Model)
    assert backbone.count_params() == app.record["parameters"]
    if app.modality == "language":
        tokenizer = app.load_tokenizer()
        assert tokenizer.vocabulary_size() == backbone.vocabulary_size
    else:
        with pytest.raises(ValueError, match="no tokenizer"):
            app.load_tokenizer()


@pytest.fixture(scope="module")
def digits():
    from keras_ssl.data import load_image_data

    return load_image_data("digits")


@on_its_backend("simclr_digits")
def test_vision_backbone_beats_random_init_in_a_classifier(digits):
    """simclr_digits → frozen backbone + softmax on the 1,346 labelled
    digits → test accuracy on 451 unseen scans."""
    backbone = applications.get("simclr_digits").load()
    args = (digits.x_train, digits.y_train, digits.x_test, digits.y_test, 10)
    pretrained = _frozen_classifier_accuracy(backbone, *args)
    random_init = _frozen_classifier_accuracy(random_init_like(backbone), *args)
    assert pretrained > random_init + 0.08, (pretrained, random_init)


@on_its_backend("clip_digits")
def test_image_text_backbone_beats_random_init_in_a_classifier():
    """clip_digits' image encoder, trained without any label, under a
    softmax trained on half of the held-out captioned digits."""
    from keras_ssl.data import load_image_text_data

    pairs = load_image_text_data("digits")
    half = len(pairs.x_test) // 2
    args = (pairs.x_test[:half], pairs.y_test[:half], pairs.x_test[half:],
            pairs.y_test[half:], len(pairs.class_names))
    backbone = applications.get("clip_digits").load()
    pretrained = _frozen_classifier_accuracy(backbone, *args)
    random_init = _frozen_classifier_accuracy(random_init_like(backbone), *args)
    assert pretrained > random_init + 0.08, (pretrained, random_init)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=on_its_backend(name))
    for name in applications.list(modality="language", embedded=True)])
def test_language_backbone_beats_random_init_on_documents(name):
    """gpt_python_docs, roberta_python_docs → probe on which of 16
    documents of the held-out language reference each paragraph comes
    from."""
    from keras_ssl.evaluation.text import pretraining_gain
    from keras_ssl.language import downstream_corpus

    app = applications.get(name)
    scores = pretraining_gain(app.load(), app.load_tokenizer(), downstream_corpus(),
                              num_classes=16, sequence_length=128)
    pretrained = scores["pretrained"]["probe"]
    random_init = scores["random_init"]["probe"]
    assert pretrained > random_init + 0.08, scores


@on_its_backend("wav2vec2_speech")
def test_speech_backbone_beats_random_init_in_a_ctc_probe():
    """wav2vec2_speech → a linear CTC head on its frozen frames, trained on
    the spoken corpus' 10 labelled minutes, read on 5 minutes of unseen
    voices and sentences."""
    from keras_ssl.datasets import load_spoken_corpus
    from keras_ssl.evaluation import ctc_probe_error_rates

    corpus = load_spoken_corpus(verbose=0)
    backbone = applications.get("wav2vec2_speech").load()
    pretrained = ctc_probe_error_rates(backbone, corpus.labelled, corpus.test)
    random_init = ctc_probe_error_rates(random_init_like(backbone), corpus.labelled,
                                        corpus.test)
    assert pretrained["cer"] < random_init["cer"] - 0.05, (pretrained, random_init)


@on_its_backend("simclr_digits")  # build() and its record are backend-free
def test_build_writes_a_loadable_preset_with_its_record(tmp_path, digits):
    app = applications.get("simclr_digits")
    small = dataclasses.replace(
        digits, x_unlabeled=digits.x_unlabeled[:256], x_train=digits.x_train[:64],
        y_train=digits.y_train[:64], x_test=digits.x_test[:32],
        y_test=digits.y_test[:32])
    run = app.build(out=tmp_path / "preset", data=small, verbose=0, epochs=1,
                    batch_size=128, knn_every=1)
    record = json.loads((tmp_path / "preset" / RECORD).read_text())
    assert record["recipe"]["epochs"] == 1
    assert record["backend"] == keras.backend.backend()
    loaded = app.load(preset=tmp_path / "preset")
    x = digits.x_test[:4]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.predict(x, verbose=0)),
        keras.ops.convert_to_numpy(run.backbone.predict(x, verbose=0)),
        atol=1e-5)


def test_module_command_lists_applications(capsys):
    from keras_ssl.applications.__main__ import main

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in applications.list():
        assert name in out
    with pytest.raises(SystemExit):
        main(["bert_base"])  # a paper recipe: no shipped weights to rebuild


def test_recipes_are_the_methods_presets():
    """Every entry reads the package's presets (nothing from the repository's
    applications/ scripts, so a wheel install has them all)."""
    from keras_ssl import recipes

    for app in _all():
        assert app.preset in recipes.presets.names(app.method)
        assert app.recipe() == recipes.make_config(app.method, app.preset,
                                                   app.overrides)
        if not app.embedded:
            assert app.command.startswith(
                f"keras-ssl pretrain {app.method} --preset paper")
    assert os.path.isdir(WEIGHTS_DIR)
