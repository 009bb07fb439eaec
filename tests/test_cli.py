"""The `keras-ssl` command line: a tiny end-to-end run and its error messages."""

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_ssl import cli, recipes

from conftest import BACKEND
from harness import FULL_MATRIX


def on_one_backend(method, backend):
    """The end-to-end CLI run of `method` (minutes on 2 cores): under one
    backend each, spread so that every backend runs some (all of them on
    every backend with KERAS_SSL_FULL_MATRIX=1). SimCLR's run and the
    library's methods themselves are tested on every backend."""
    return pytest.param(method, id=method, marks=pytest.mark.skipif(
        not FULL_MATRIX and BACKEND != backend,
        reason=f"the {method} CLI run is tested under {backend} "
        "(KERAS_SSL_FULL_MATRIX=1: every backend)",
    ))

def _assert_layout(out, method):
    """The output layout every method writes (keras_ssl.recipes.save)."""
    from keras_ssl.recipes import OUTPUT_FILES

    for name in OUTPUT_FILES:
        assert (out / name.rstrip("/")).exists(), name
    assert (out / "encoder_preset" / "config.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == method and summary["preset"] == "embedded"
    return summary


TINY = [
    "--epochs", "2", "--max-examples", "192", "--batch-size", "64",
    "--backbone", "cifar_resnet_tiny", "--knn-every", "1", "--quiet",
]


def test_pretrain_writes_encoder_history_plot_and_scores(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["pretrain", "simclr", "--out", str(out), *TINY]) == 0
    _assert_layout(out, "simclr")
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]["loss"]) == 2
    assert history["knn_epochs"] == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["scores"]) == {"simclr", "random_init", "raw_pixels"}
    printed = capsys.readouterr().out
    assert "random_init" in printed and "linear_probe_accuracy" in printed
    assert "peak memory" in printed
    # A fresh process loads both files with nothing but `import keras_ssl`.
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, keras_ssl\n"
         "for path in sys.argv[1:]: print(type(keras_ssl.load_model(path)).__name__)",
         str(out / "model.keras"), str(out / "encoder.keras")],
        capture_output=True, text=True, check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split()[-2:] == ["SimCLR", "CIFARResNetBackbone"]

    import keras

    encoder = keras.saving.load_model(out / "encoder.keras")
    assert encoder.output.shape[-1] == 64


@pytest.mark.parametrize("method", [
    on_one_backend("moco", "tensorflow"),
    # SwAV: a multi-crop recipe whose epochs (queue start, frozen prototypes)
    # become steps. BYOL's builder is covered by its paper preset's build
    # (test_presets.py); the CLI on JAX by the test above.
    on_one_backend("swav", "tensorflow"),
    on_one_backend("dino", "torch"),
])
def test_every_method_pretrains_exports_and_reports(method, tmp_path, capsys):
    out = tmp_path / method
    tiny = [*TINY]
    tiny[tiny.index("--epochs") + 1] = "1"
    assert cli.main(["pretrain", method, "--out", str(out), *tiny]) == 0
    summary = _assert_layout(out, method)
    assert set(summary["scores"]) == {method, "random_init", "raw_pixels"}

    import keras

    reloaded = keras.saving.load_model(out / "model.keras")
    from keras_ssl.recipes import METHODS

    assert type(reloaded).__name__ == METHODS[method].model


@pytest.mark.parametrize("method", [
    on_one_backend("mae", "torch"),  # its CLI default
    on_one_backend("beit", "tensorflow"),  # its CLI default
])
def test_masked_image_models_write_pictures_and_fine_tune(method, tmp_path, capsys):
    out = tmp_path / method
    tiny = [*TINY]
    tiny[tiny.index("--epochs") + 1] = "1"
    tiny[tiny.index("--backbone") + 1] = "vit_tiny"
    argv = ["pretrain", method, "--out", str(out), "--fine-tune-epochs", "1", *tiny]
    if method == "beit":
        argv += ["--tokenizer-epochs", "1"]
    assert cli.main(argv) == 0
    summary = _assert_layout(out, method)
    for row in ("random_init", method):
        assert "fine_tune_accuracy" in summary["scores"][row]
        # The ViT's blocks are probed one by one (the papers' layer probe).
        assert summary["scores"][row]["best_layer"] in (1, 2, 3, 4, 5, 6, 7, 8)
        assert 0 <= summary["scores"][row]["best_layer_probe_accuracy"] <= 1
    assert (out / "reconstructions.png").stat().st_size > 5_000
    if method == "beit":
        assert (out / "tokenizer.png").stat().st_size > 5_000
    assert "fine_tune_accuracy" in capsys.readouterr().out

    import keras

    encoder = keras.saving.load_model(out / "encoder.keras")
    assert type(encoder).__name__ == "ViTBackbone"
    reloaded = keras.saving.load_model(out / "model.keras")
    assert type(reloaded).__name__.lower() == method


def test_backend_choice():
    assert cli.choose_backend("simclr") == "tensorflow"
    assert cli.choose_backend("mae") == "torch"
    assert cli.choose_backend("beit") == "tensorflow"
    assert cli.choose_backend("mae", environ={"KERAS_BACKEND": "jax"}) == "jax"
    assert cli.choose_backend("mae", "tensorflow", {"KERAS_BACKEND": "jax"}) == (
        "tensorflow")


def test_method_names_come_from_the_engine():
    from keras_ssl import recipes
    from keras_ssl.training import RECIPES

    assert tuple(RECIPES) == recipes.methods_of("vision")


def test_presets_version_and_method_help(capsys):
    assert cli.main(["presets"]) == 0
    assert "dino" in capsys.readouterr().out
    assert cli.main(["presets", "dino"]) == 0
    printed = capsys.readouterr().out
    assert "--preset paper" in printed and "teacher_temp" in printed
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and "keras-ssl 0." in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli.main(["pretrain", "moco", "--help"])
    assert done.value.code == 0
    assert "--queue-size" in capsys.readouterr().out


def test_a_flag_the_method_does_not_take(capsys):
    message = _error(["pretrain", "gpt", "--epochs", "3"], capsys)
    assert "unrecognized arguments: --epochs 3" in message
    assert "gpt takes:" in message and "--steps" in message
    message = _error(["pretrain", "moco", "--set", "queue=3"], capsys)
    assert "no setting 'queue'" in message and "queue_size" in message
    message = _error(["pretrain", "moco", "--set", "queue_size"], capsys)
    assert "KEY=VALUE" in message


def test_temperature_of_a_method_without_one(capsys):
    message = _error(["pretrain", "byol", "--temperature", "0.1"], capsys)
    assert "temperature applies to simclr, moco and swav" in message


def _error(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = cli.main(args)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("keras-ssl: error: ")
    return err[0]


def test_data_flags_the_data_would_ignore(tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text("Some text.")
    message = _error(["pretrain", "gpt", "--dataset", str(text), "--max-examples",
                      "3"], capsys)
    assert "--max-examples applies to tfds:NAME" in message
    message = _error(["pretrain", "simclr", "--data-dir", str(tmp_path)], capsys)
    assert "--data-dir applies to tfds:NAME" in message


def test_unknown_method(capsys):
    assert "unknown method 'nope'" in _error(["pretrain", "nope"], capsys)


def test_unknown_dataset(capsys):
    message = _error(["pretrain", "simclr", "--dataset", "mnist"], capsys)
    assert "unknown dataset" in message


def test_missing_folder(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    message = _error(["pretrain", "simclr", "--dataset", f"folder:{missing}"], capsys)
    assert "not found" in message


def test_images_of_wrong_rank(tmp_path, capsys):
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.zeros((8, 12), "float32"), y=np.zeros(8, "int64"))
    message = _error(["pretrain", "simclr", "--dataset", f"npz:{path}"], capsys)
    assert "expected images of shape" in message


def test_bad_numbers_and_missing_command(capsys):
    assert "epochs" in _error(["pretrain", "simclr", "--epochs", "0"], capsys)
    assert "required" in _error([], capsys)
    assert "invalid int" in _error(["pretrain", "simclr", "--epochs", "x"], capsys)


@pytest.mark.skipif(not FULL_MATRIX and BACKEND != "tensorflow",
                    reason="the CLIP CLI run is tested under its default backend; "
                    "the recipe on every backend (test_image_text)")
def test_clip_pretrains_then_zero_shot_predicts(tmp_path, capsys):
    out = tmp_path / "clip"
    argv = ["pretrain", "clip", "--out", str(out), "--epochs", "1",
            "--max-examples", "96", "--batch-size", "32", "--quiet"]
    assert cli.main(argv) == 0
    _assert_layout(out, "clip")
    assert (out / "top_captions.png").stat().st_size > 0
    assert (out / "text_encoder_preset" / "config.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert {"zero_shot_accuracy", "image_to_text_R@1"} <= set(summary["scores"]["clip"])
    printed = capsys.readouterr().out
    assert "zero_shot_accuracy" in printed and "chance" in printed

    picture = tmp_path / "zero_shot.png"
    argv = ["zero-shot", "--model", str(out / "model.keras"), "--num-images", "3",
            "--classes", "zero,one,two", "--out", str(picture)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("image ") == 3 and "caption:" in printed
    assert picture.stat().st_size > 0
    assert cli.main(["zero-shot", "--model", str(out / "model.keras"),
                     "--num-images", "2"]) == 0
    assert "zero-shot accuracy" in capsys.readouterr().out


def test_zero_shot_without_a_model_fails_clearly(tmp_path, capsys):
    assert cli.main(["zero-shot", "--model", str(tmp_path / "none.keras")]) == 2
    assert "keras-ssl pretrain clip" in capsys.readouterr().err


@pytest.fixture
def tiny_speech(monkeypatch, tiny_spoken_corpus):
    """The CLI's speech commands on the session's tiny spoken corpus."""
    import keras_ssl.datasets

    monkeypatch.setattr(keras_ssl.datasets, "load_spoken_corpus",
                        lambda **kwargs: tiny_spoken_corpus)
    return tiny_spoken_corpus


@pytest.mark.skipif(BACKEND != "torch", reason=(
    "the speech CLI runs on torch by default; jit backends compile once per "
    "length bucket, and the models' own tests cover them"))
def test_wav2vec2_pretrains_then_ctc_fine_tunes_and_transcribes(
        tiny_speech, tmp_path, capsys):
    out = tmp_path / "w2v"
    assert cli.main(["pretrain", "wav2vec2", "--steps", "3",
                     "--curriculum-steps", "2", "--preset", "paper_objective",
                     "--quiet",
                     "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "paper_objective"
    for name in recipes.OUTPUT_FILES:
        assert (out / name.rstrip("/")).exists(), name
    assert "contrastive_loss" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history["curriculum_contrastive_loss"]) == 1  # 2 steps, 1 epoch
    # The main stage has the paper's quantized targets, the curriculum not.
    assert "diversity_loss" in history and "curriculum_diversity_loss" not in history
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["config"]["quantize_targets"], summary["config"]["mask_length"]) == (True, 10)
    ctc = tmp_path / "ctc"
    assert cli.main(["finetune", "ctc", "--encoder", str(out / "encoder.keras"),
                     "--steps", "3", "--quiet", "--out", str(ctc)]) == 0
    printed = capsys.readouterr().out
    assert "test CER" in printed
    assert printed.count("truth: ") == min(5, len(tiny_speech.test))
    summary = json.loads((ctc / "summary.json").read_text())
    assert 0.0 <= summary["cer"] and summary["labelled_minutes"] > 0


def test_speech_cli_errors(tmp_path, capsys):
    assert cli.main(["finetune", "nope"]) == 2
    assert "fine-tuning task" in capsys.readouterr().err
    assert cli.main(["finetune", "ctc", "--encoder", str(tmp_path / "x.keras")]) == 2
    assert "pretrain wav2vec2" in capsys.readouterr().err
    assert cli.main(["pretrain", "wav2vec2", "--dataset", "mp3:x"]) == 2
    assert "folder:PATH" in capsys.readouterr().err


def test_tuple_flags_take_one_value_or_several():
    parse = cli._value_type((256,), None)
    assert parse("512") == (512,)  # --projection-hidden-dims 512
    assert parse("256,256") == (256, 256)
    assert parse("(0.2, 1.0)") == (0.2, 1.0)
    assert parse("None") is None
    # An option that is None in the preset (SimCLR's embedded hidden dims)
    # takes its type from another preset: one value is a tuple too.
    parser, settings = cli._method_parser("simclr", "embedded")
    args = parser.parse_args(["simclr", "--projection-hidden-dims", "256"])
    assert cli._overrides(args, settings)["projection_hidden_dims"] == (256,)
