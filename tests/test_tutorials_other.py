"""The language, image-text and speech tutorials run end to end.

Each tutorial runs in its own process with a tiny step budget
(`KERAS_SSL_TUTORIAL_STEPS=2`), its pictures written to a temporary folder
and (speech) its small spoken corpus synthesised into a temporary cache, so
that the test needs no cache and no network. The tutorials run under PyTorch
only, once per CI run: the test is skipped on the other backends' runs.
"""

import os
import pathlib
import subprocess
import sys

import keras
import pytest

TUTORIALS = pathlib.Path(__file__).resolve().parent.parent / "tutorials"

# Tutorial -> the pictures it must write into $KERAS_SSL_TUTORIAL_OUT/<name>/.
EXPECTED = {
    "language": ("losses.png", "examples.png", "probe.png"),
    "image_text": ("zero_shot.png", "top_captions.png", "similarity.png", "loss.png"),
    "speech": ("masked_input.png", "curves.png"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tutorial_is_a_percent_notebook(name):
    source = (TUTORIALS / f"{name}.py").read_text()
    assert source.count("# %%\n") >= 3, "code cells are separated by '# %%'"
    assert "# %% [markdown]" in source
    assert 'os.environ.setdefault("KERAS_BACKEND", "torch")' in source


@pytest.mark.skipif(keras.backend.backend() != "torch",
                    reason="the tutorials run once per CI run, under torch")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tutorial_runs(name, tmp_path):
    env = dict(
        os.environ,
        KERAS_BACKEND="torch",
        MPLBACKEND="Agg",
        KERAS_SSL_TUTORIAL_STEPS="2",
        KERAS_SSL_TUTORIAL_OUT=str(tmp_path / "out"),
        KERAS_SSL_CACHE=str(tmp_path / "cache"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    run = subprocess.run(
        [sys.executable, str(TUTORIALS / f"{name}.py")], env=env,
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    for picture in EXPECTED[name]:
        path = tmp_path / "out" / name / picture
        assert path.is_file() and path.stat().st_size > 0, f"{path} not written"
