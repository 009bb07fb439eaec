"""The torch-vs-keras-ssl speed benchmark, run tiny and in-process."""

import argparse
import json
import os
import subprocess
import sys

import keras
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
speed_vs_torch = pytest.importorskip("speed_vs_torch")
pytest.importorskip("torch")

BACKEND = keras.backend.backend()


def _args(**overrides):
    args = dict(
        steps=1, warmup=1, batch_size=8, image_size=16, width=4,
        optimizer="adamw", backends=BACKEND, compile=False, augment=False,
        augment_backend="tensorflow", json=None, worker=False, runner=None,
        runners=None, repeats=1,
    )
    args.update(overrides)
    return argparse.Namespace(**args)


def _plain_torch_row(args):
    """The plain torch row in its own process, as the benchmark runs it (in
    this process it would share thread pools with TensorFlow / JAX)."""
    script = os.path.join(os.path.dirname(speed_vs_torch.__file__),
                          "speed_vs_torch.py")
    command = [sys.executable, script, "--worker", "--runner=torch"] + [
        f"--{k.replace('_', '-')}={getattr(args, k)}"
        for k in ("steps", "warmup", "batch_size", "image_size", "width")
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# Once, under the torch backend: the keras rows run the same library code
# that the method harness checks on every backend; this is the benchmark's
# own plumbing (rows, table, parameter check).
@pytest.mark.skipif(BACKEND != "torch", reason="benchmark plumbing: torch run")
def test_plain_torch_and_keras_rows_match_and_report():
    args = _args()
    results = {
        f"keras-{BACKEND}": speed_vs_torch.run_runner(f"keras-{BACKEND}", args),
        "torch": _plain_torch_row(args),
    }
    keras_row, torch_row = results[f"keras-{BACKEND}"], results["torch"]
    for key in ("trainable_params", "non_trainable_params"):
        assert keras_row[key] == torch_row[key] > 0
    for row in results.values():
        assert row["steps_per_second"] > 0
        assert row["images_per_second"] == pytest.approx(
            row["steps_per_second"] * args.batch_size
        )
        assert row["peak_rss_gib"] > 0 and row["device"]
        assert len(row["losses"]) == 2
    report = speed_vs_torch.summarize(results, args)
    lines = report.splitlines()
    assert lines[1].startswith("CPU: ")
    assert any(line.startswith("runner") and "vs torch" in line for line in lines)
    assert any(line.startswith("torch ") and "1.00×" in line for line in lines)
    assert "equal in every runner" in report
    assert "best keras-ssl: keras-" in report


@pytest.mark.skipif(BACKEND != "torch",
                    reason="a count of layers' weights: one backend suffices")
def test_parameter_counts_at_resnet18_width():
    """At full width both models are SimCLR's ResNet-18 (11.2M + head)."""
    import torch  # noqa: F401

    from keras_ssl.backbones import CIFARResNetBackbone
    from keras_ssl.models import SimCLR

    encoder = CIFARResNetBackbone(image_shape=(32, 32, 3))
    model = SimCLR(encoder, projection_dim=64, projection_hidden_dims=(256,))
    model.build(((None, 32, 32, 3), (None, 32, 32, 3)))
    net = speed_vs_torch.build_torch_simclr(64)
    assert speed_vs_torch.count_keras_parameters(model) == (
        speed_vs_torch.count_torch_parameters(net)
    )


def test_repeats_combine_to_medians_and_targets_are_checked():
    def row(rate, rss=1.0):
        return {"steps_per_second": rate, "images_per_second": 4 * rate,
                "peak_rss_gib": rss}

    combined = speed_vs_torch.combine_repeats(
        [row(1.0), {"error": "x"}, row(3.0, 2.0), row(2.0)])
    assert combined["steps_per_second"] == 2.0
    assert combined["images_per_second"] == 8.0
    assert combined["steps_per_second_runs"] == [1.0, 3.0, 2.0]
    assert combined["peak_rss_gib"] == 2.0
    assert speed_vs_torch.combine_repeats([{"error": "x"}]) == {"error": "x"}
    found = speed_vs_torch.targets({
        "keras-tensorflow": row(1.3), "keras-torch": row(0.7, 3.1),
        "keras-tensorflow+augment": row(9.0), "torch": row(1.0, 2.0),
        "torch+compile": row(1.25),
    })
    assert found["best keras-ssl / fastest plain torch"] == (1.3 / 1.25, 1.0, True)
    assert found["best keras-ssl / eager plain torch"] == (1.3, 1.2, True)
    assert found["slowest keras-ssl / eager plain torch"] == (0.7, 0.8, False)
    assert found["keras-torch / plain torch peak RSS"] == (1.55, 1.5, False)


def test_runner_list():
    args = _args(backends="tensorflow,jax,torch", compile=True, augment=True)
    assert speed_vs_torch.runners_of(args) == [
        "keras-tensorflow", "keras-jax", "keras-torch", "keras-torch+compile",
        "keras-tensorflow+graph", "keras-tensorflow+augment", "torch",
        "torch+compile",
    ]
    picked = _args(runners="keras-tensorflow+graph,torch")
    assert speed_vs_torch.runners_of(picked) == ["keras-tensorflow+graph", "torch"]
    assert speed_vs_torch.runner_backend("keras-jax") == "jax"
    assert speed_vs_torch.runner_backend("torch+compile") == "torch"


def test_speech_diagnostics_cosine_and_one_probe(tiny_spoken_corpus):
    import numpy as np

    speech_diagnostics = pytest.importorskip("speech_diagnostics")
    frames = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    # Pairs: (a, a) = 1, (a, b) = 0 twice; the padded third frame is ignored
    # when masked out.
    assert speech_diagnostics.mean_pairwise_cosine(
        frames, np.array([[True, True, True]])) == pytest.approx(1 / 3)
    assert speech_diagnostics.mean_pairwise_cosine(
        frames, np.array([[True, True, False]])) == pytest.approx(1.0)
    # A slowly turning vector: neighbours alike, random pairs much less so.
    angles = np.linspace(0, 3 * np.pi, 60)
    smooth = np.stack([np.cos(angles), np.sin(angles), np.cos(2 * angles)], 1)
    adjacent, random = speech_diagnostics.adjacent_and_random_cosine(smooth)
    assert adjacent > 0.9 and random < 0.5
    if BACKEND != "torch":
        return  # the probe's training code is the harness-tested Wav2Vec2
    locality = speech_diagnostics.frame_locality(tiny_spoken_corpus, utterances=2)
    assert set(locality) == {
        "latent z, random-init encoder, feature_norm='layer'",
        "latent z, random-init encoder, feature_norm='group'",
        "log magnitude spectrum",
    }
    spectrum = locality["log magnitude spectrum"]
    assert spectrum["adjacent"] > spectrum["random_pair"] + 0.2
    result = speech_diagnostics.run_probe(
        "one_batch_lr3e-4", tiny_spoken_corpus, steps=2, log_every=1)
    assert result["steps"] == 2 and len(result["curve"]) == 2
    assert np.isfinite(result["last_loss"]) and -1 <= result["context_cosine"] <= 1


def test_speech_quality_arguments():
    speech_quality = pytest.importorskip("speech_quality")
    assert speech_quality.minutes_list("10,1,2") == [1.0, 2.0, 10.0]
    from keras_ssl.speech import ARMS

    assert speech_quality.arms_list("random_init,pretrained") == ARMS
    assert speech_quality.arms_list("pretrained") == ("pretrained",)
    for bad in ("", "random", "pretrained,scratch"):
        with pytest.raises(argparse.ArgumentTypeError):
            speech_quality.arms_list(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        speech_quality.minutes_list("0,2")
