"""keras-ssl inside the Keras ecosystem: what it saves loads in a fresh
process with plain `keras.saving.load_model` and keras-hub's `from_preset`
after `import keras_ssl`, and its backbones work in keras-hub's tasks."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import keras_hub
import numpy as np
import pytest
from conftest import forward

import keras_ssl
from keras_ssl.backbones import (
    CIFARResNetBackbone,
    CIFARResNetImageClassifier,
    ViTBackbone,
    Wav2Vec2Backbone,
    save_preset,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.random((8, 16, 16, 3)).astype("float32")
AUDIO = {"audio": RNG.standard_normal((2, 1600)).astype("float32"),
         "padding_mask": np.ones((2, 1600), bool)}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _tiny_wav2vec2():
    return Wav2Vec2Backbone(
        conv_channels=(8, 8), conv_kernel_sizes=(10, 3), conv_strides=(5, 2),
        hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
        pos_conv_kernel=4, pos_conv_groups=2, dropout=0.0)


def _saved_models(tmp_path):
    """Each backbone family in a model a user would save, each backbone as a
    preset; returns {file: (kind, inputs, expected outputs)}."""
    keras.utils.set_random_seed(0)
    saved = {}
    # keras-hub's ImageClassifier on our CNN (feature maps, pooled by the task).
    cnn = keras_hub.models.ImageClassifier(
        backbone=CIFARResNetBackbone((4, 8), (1, 1), image_shape=(16, 16, 3)),
        num_classes=3)
    # A ViT's tokens, pooled by the user's own layer.
    vit = keras.Sequential([
        keras.Input((16, 16, 3)),
        ViTBackbone(image_shape=(16, 16, 3), patch_size=8, hidden_dim=8,
                    num_layers=1, num_heads=2),
        keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
    # A speech encoder under a frame classifier.
    encoder = _tiny_wav2vec2()
    speech = keras.Model(encoder.input, keras.layers.Dense(4)(encoder.output))
    # A whole keras-ssl method (its heads and losses are keras-ssl classes).
    simclr = keras_ssl.SimCLR(CIFARResNetBackbone((4,), (1,), image_shape=(16, 16, 3)),
                              projection_dim=8)
    simclr.compile(optimizer="adam")
    simclr((IMAGES, IMAGES))  # builds it
    for name, model, inputs in [("cnn", cnn, IMAGES), ("vit", vit, IMAGES),
                                ("speech", speech, AUDIO)]:
        model.save(tmp_path / f"{name}.keras")
        saved[f"{name}.keras"] = ("model", inputs, forward(model, inputs))
    simclr.save(tmp_path / "simclr.keras")
    saved["simclr.keras"] = ("model", IMAGES, forward(simclr.encoder, IMAGES))
    for name, backbone, inputs in [("cnn_preset", cnn.backbone, IMAGES),
                                   ("vit_preset", vit.layers[0], IMAGES),
                                   ("speech_preset", encoder, AUDIO)]:
        save_preset(backbone, tmp_path / name)
        saved[name] = ("preset", inputs, forward(backbone, inputs))
    return saved


LOADER = textwrap.dedent("""
    import json, pickle, sys
    import numpy as np
    import keras, keras_hub
    import keras_ssl  # the only keras-ssl line: it registers every class

    folder = sys.argv[1]
    cases = pickle.load(open(folder + "/cases.pkl", "rb"))
    def forward(model, inputs):  # one compiled predict under JAX
        if keras.backend.backend() == "jax":
            return model.predict(inputs, verbose=0)
        return model(inputs)

    errors = {}
    for name, (kind, inputs, expected) in cases.items():
        path = folder + "/" + name
        if kind == "model":
            model = keras.saving.load_model(path)
            got = forward(model.encoder if name == "simclr.keras" else model, inputs)
        else:
            got = forward(keras_hub.models.Backbone.from_preset(path), inputs)
        errors[name] = float(np.max(np.abs(keras.ops.convert_to_numpy(got) - expected)))
    # keras-hub's own task call on our preset: the image converter resizes
    # and rescales 0-255 images of any size.
    classifier = keras_hub.models.ImageClassifier.from_preset(
        folder + "/cnn_preset", num_classes=5)
    images = np.random.default_rng(0).integers(0, 256, (2, 24, 20, 3)).astype("uint8")
    errors["task"] = [type(classifier).__name__,
                      list(classifier.predict(images, verbose=0).shape)]
    print(json.dumps(errors))
""")


def test_saved_models_and_presets_load_in_a_fresh_process(tmp_path):
    import pickle

    cases = _saved_models(tmp_path)
    with open(tmp_path / "cases.pkl", "wb") as f:
        pickle.dump(cases, f)
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("task") == ["CIFARResNetImageClassifier", [2, 5]]
    assert set(result) == set(cases)
    assert all(error < 1e-4 for error in result.values()), result


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="keras-hub's ImageClassifier on our backbone: one backend "
                    "is enough (loading runs on every backend above)")
def test_shipped_vision_backbone_in_keras_hub_image_classifier():
    from keras_ssl import applications
    from keras_ssl.data import load_image_data

    digits = load_image_data("digits")
    app = applications.get("simclr_digits")
    classifier = keras_hub.models.ImageClassifier(backbone=app.load(), num_classes=10)
    assert isinstance(classifier.backbone, CIFARResNetBackbone)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),  # the task's logits
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = classifier.fit(digits.x_train[:256], digits.y_train[:256], epochs=2,
                             batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    probabilities = classifier.predict(digits.x_test[:16], verbose=0)
    assert probabilities.shape == (16, 10)
    # The preset carries its image converter: keras-hub builds the task.
    task = keras_hub.models.ImageClassifier.from_preset(str(app.weights), num_classes=10)
    assert isinstance(task, CIFARResNetImageClassifier)
    uint8 = np.round(digits.x_test[:4] * 255).astype("uint8")
    np.testing.assert_allclose(
        _np(task.backbone(task.preprocessor(uint8))),
        _np(task.backbone(digits.x_test[:4])), atol=0.05)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="keras-hub's text tasks: one backend is enough")
def test_shipped_language_backbones_in_keras_hub_tasks():
    from keras_ssl import applications

    roberta = applications.get("roberta_python_docs").weights
    classifier = keras_hub.models.TextClassifier.from_preset(str(roberta), num_classes=4)
    assert type(classifier).__name__ == "RobertaTextClassifier"
    assert classifier.preprocessor.sequence_length == 128  # the backbone's positions
    assert classifier.predict(["def f(x):\n    return x", "import os"],
                              verbose=0).shape == (2, 4)
    gpt = applications.get("gpt_python_docs").weights
    causal_lm = keras_hub.models.CausalLM.from_preset(str(gpt))
    assert type(causal_lm).__name__ == "GPT2CausalLM"
    assert causal_lm.preprocessor.sequence_length == 128  # generate() stays in range
    assert causal_lm.generate("def ").startswith("def ")
