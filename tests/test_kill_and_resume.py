"""`keras-ssl pretrain` killed with SIGKILL at chosen moments and rerun with
`--resume` each time ends with the weights and scores of a run never killed.

The moments (`keras_ssl.recipes.backups.fault_point`): between two steps,
inside a backup's writing (files written, sealed but not renamed, renamed but
the older one not deleted), after the outputs were written but not moved
into place, halfway through moving them, and after the outputs are in place
but before the backup is deleted. Each rerun goes on from where the last one
died, and the next kill comes later in the run.
"""

import json
import os
import signal
import subprocess
import sys

import keras

import keras_ssl
import numpy as np
import pytest

from conftest import BACKEND

# 64 images in batches of 16: 4 steps per epoch, 3 epochs, a backup per step.
TINY = ["--max-examples", "64", "--batch-size", "16", "--epochs", "3",
        "--knn-every", "1", "--backup-every", "1", "--quiet"]
# (fault point, passage), in the order they strike; each rerun resumes. All
# of them under torch (the fastest to start); under the others a kill between
# steps and one after the outputs are in place (the file handling is
# backend-free).
KILLS = [
    ("train.step", 3),        # after step 3, before its backup
    ("backup.files", 2),      # a backup's files written, not sealed
    ("backup.sealed", 2),     # sealed, not renamed into place
    ("backup.renamed", 2),    # renamed, the older backup not deleted
    ("outputs.written", 1),   # training over, outputs not moved into place
    ("outputs.publish", 3),   # outputs half moved
    ("outputs.published", 1), # outputs in place, backup not deleted
]
if BACKEND != "torch":
    KILLS = [KILLS[i] for i in (0, 6)]


def _cli(out, *extra, fault=None):
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    env.pop("KERAS_SSL_FAULT", None)
    if fault:
        env["KERAS_SSL_FAULT"] = f"{fault[0]}:{fault[1]}"
    return subprocess.run(
        [sys.executable, "-m", "keras_ssl.cli", "pretrain", "simclr", *TINY,
         "--out", str(out), *extra],
        env=env, capture_output=True, text=True, check=False)


def _weights(out):
    encoder = keras_ssl.load_model(out / "encoder.keras")
    return [keras.ops.convert_to_numpy(w) for w in encoder.weights]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = _cli(out)
    assert done.returncode == 0, done.stderr[-3000:]
    # No framework noise: TensorFlow's C++ logs go to OUT/framework.log.
    assert "oneDNN" not in done.stderr and "I0000" not in done.stderr
    assert "oneDNN" in (out / "framework.log").read_text()
    return out


def test_killed_at_every_moment_ends_as_the_uninterrupted_run(
        uninterrupted, tmp_path):
    out = tmp_path / "killed"
    for i, fault in enumerate(KILLS):
        done = _cli(out, *(["--resume"] if i else []), fault=fault)
        assert done.returncode == -signal.SIGKILL, (fault, done.stderr[-3000:])
    done = _cli(out, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    # The last kill came after the outputs were in place: nothing to train.
    assert "is finished" in done.stdout
    assert not (out / "backup").exists()
    assert not (out / ".incomplete").exists()
    expected = json.loads((uninterrupted / "summary.json").read_text())
    got = json.loads((out / "summary.json").read_text())
    assert set(got["scores"]) == set(expected["scores"])
    for row, scores in expected["scores"].items():
        assert got["scores"][row] == pytest.approx(scores, abs=1e-6), row
    # The logs of the epochs that ended, across the kills (an epoch that a
    # kill cut is logged by the resumed run, shifted to end later).
    history = json.loads((out / "history.json").read_text())["history"]
    assert 1 <= len(history["loss"]) <= 3
    for a, b in zip(_weights(uninterrupted), _weights(out)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_other_settings_are_refused_and_a_damaged_backup_passed_over(tmp_path):
    if BACKEND != "torch":
        pytest.skip("backend-free file handling: tested under torch")
    out = tmp_path / "damaged"
    done = _cli(out, fault=("train.step", 6))  # backups of steps 1-5
    assert done.returncode == -signal.SIGKILL
    done = _cli(out, "--resume", "--epochs", "1")
    assert done.returncode == 2  # other settings than the backup's: refused
    assert "config.epochs 3 in the backup, 1 now" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "keras" not in done.stderr.lower().replace("keras-ssl", "")
    [newest] = sorted((out / "backup").glob("step-*"))
    (newest / "latest.weights.h5").write_bytes(b"")  # a disk lost its contents
    # The only backup is damaged: the run starts over, saying so once.
    done = _cli(out, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("latest.weights.h5 is damaged") == 1
    assert "starting from the beginning" in done.stdout
