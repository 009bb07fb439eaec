"""The vision tutorials (`tutorials/*.py`) run end to end with a tiny budget.

Each tutorial runs once per CI run: in the torch pass of the suite (the
tutorials' default backend), in its own subprocess, with
`KERAS_SSL_TUTORIAL_STEPS` set to a few steps. `multi_device.py` needs JAX for
`keras.distribution`, so its subprocess runs under `KERAS_BACKEND=jax` (still
only from the torch pass, so that it runs once).
"""

import os
import pathlib
import resource
import subprocess
import sys
import time

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"

# tutorial → (subprocess backend, tiny step budget, pictures it must write)
CASES = {
    "contrastive_vision": ("torch", 2, ["views.png", "loss_curves.png", "neighbours.png"]),
    "distillation": ("torch", 2, ["multi_crop.png", "loss_curves.png", "knn_accuracy.png"]),
    "masked_image_modelling": ("torch", 2, [
        "mae_reconstructions.png", "beit_tokens.png", "beit_tokenizer.png",
        "loss_curves.png",
    ]),
    "multi_device": ("jax", 3, ["loss_curves.png"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tutorial_has_percent_cells(name):
    source = (TUTORIALS / f"{name}.py").read_text()
    assert source.count("\n# %%") + source.startswith("# %%") >= 4, "percent cells"
    assert "# %% [markdown]" in source, "a markdown cell"
    assert 'os.environ.setdefault("KERAS_BACKEND"' in source, "the backend line"


@pytest.mark.skipif(keras.backend.backend() != "torch",
                    reason="the tutorials run once per CI run, in the torch pass")
@pytest.mark.parametrize("name", sorted(CASES))
def test_tutorial_runs(name, tmp_path):
    backend, tiny_steps, pictures = CASES[name]
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # multi_device.py asks for its own 4 devices
    env.update(
        KERAS_BACKEND=backend,
        KERAS_SSL_TUTORIAL_STEPS=str(tiny_steps),
        KERAS_SSL_TUTORIAL_OUT=str(tmp_path),
        MPLBACKEND="Agg",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    start = time.perf_counter()
    cpu_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, str(TUTORIALS / f"{name}.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    seconds = time.perf_counter() - start
    cpu_end = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    assert result.returncode == 0, (
        f"{name}.py failed after {seconds:.0f} s:\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-6000:]}"
    )
    for picture in pictures:
        path = tmp_path / name / picture
        assert path.is_file() and path.stat().st_size > 0, f"{name}: no {picture}"
    print(f"{name}.py: {seconds:.1f} s wall, {cpu:.1f} s CPU")
