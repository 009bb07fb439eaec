"""A non-editable install, used from another directory: every application's
recipe loads and every method's CLI run writes the same output layout.

Minutes long (a build and twelve runs): it runs only with
KERAS_SSL_WHEEL_TEST=1, e.g.

    KERAS_SSL_WHEEL_TEST=1 KERAS_BACKEND=torch python -m pytest tests/test_wheel_install.py
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from keras_ssl import recipes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("KERAS_SSL_WHEEL_TEST"),
                       reason="set KERAS_SSL_WHEEL_TEST=1 (a build and 12 runs)"),
]

REPOSITORY = pathlib.Path(__file__).parents[1]
VISION = ["--steps", "2", "--batch-size", "32", "--max-examples", "128",
          "--knn-every", "1"]
TINY = {
    **{m: VISION for m in ("simclr", "moco", "byol", "dino")},
    "mae": [*VISION, "--fine-tune-epochs", "1"],
    "beit": [*VISION, "--fine-tune-epochs", "1", "--tokenizer-epochs", "1"],
    "clip": ["--steps", "2", "--batch-size", "32", "--max-examples", "96"],
    **{m: ["--steps", "2", "--batch-size", "4", "--hidden-dim", "16",
           "--num-layers", "1", "--num-heads", "2", "--intermediate-dim", "32",
           "--sequence-length", "32", "--vocabulary-size", "400",
           "--steps-per-epoch", "1"]
       for m in ("bert", "roberta", "gpt", "t5")},
    "wav2vec2": ["--steps", "2", "--batch-size", "2", "--hidden-dim", "16",
                 "--num-layers", "1", "--num-heads", "2",
                 "--intermediate-dim", "32", "--conv-channels", "8",
                 "--steps-per-epoch", "1", "--pretrain-minutes", "1"],
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv (sharing this one's dependencies) with keras-ssl installed from
    a wheel, not from this checkout."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", str(REPOSITORY)], check=True)
    return venv


def _run(venv, args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)


def test_applications_load_from_the_wheel(installed, tmp_path):
    code = ("import keras_ssl, keras_ssl.applications as a\n"
            "assert 'site-packages' in keras_ssl.__file__, keras_ssl.__file__\n"
            "print(len([a.get(n).recipe() for n in a.list()]))")
    done = _run(installed, ["python", "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) >= 15


@pytest.mark.parametrize("method", list(recipes.METHODS))
def test_every_method_writes_the_same_layout(installed, tmp_path, method):
    out = tmp_path / "run"
    done = _run(installed, ["keras-ssl", "pretrain", method, *TINY[method],
                            "--quiet", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in recipes.OUTPUT_FILES:
        assert (out / name.rstrip("/")).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == method and summary["preset"] == "embedded"
    assert summary["config"]["steps"] == 2
