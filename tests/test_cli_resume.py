"""`keras-ssl pretrain ... --resume`: a killed run continues from OUT/backup."""

import json

import pytest

from keras_ssl import cli
from keras_ssl.callbacks import ResumableBackup

# 192 images / batch 64: 3 steps per epoch, 2 epochs.
TINY = [
    "--epochs", "2", "--max-examples", "192", "--batch-size", "64",
    "--backbone", "cifar_resnet_tiny", "--knn-every", "1", "--quiet",
]


class _Kill(Exception):
    pass


def test_pretrain_resume_continues_a_killed_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    argv = ["pretrain", "simclr", "--out", str(out), "--resume",
            "--backup-every", "2", *TINY]
    save = ResumableBackup._save_model

    def save_then_die(self):  # killed right after the backup at step 4
        save(self)
        if self._step == 4:
            raise _Kill()

    monkeypatch.setattr(ResumableBackup, "_save_model", save_then_die)
    with pytest.raises(_Kill):
        cli.main(argv)
    metadata = json.loads((out / "backup" / "training_metadata.json").read_text())
    assert metadata == {"epoch": 1, "batch": 0, "step": 4, "steps_per_epoch": 3}

    monkeypatch.setattr(ResumableBackup, "_save_model", save)
    end, steps = ResumableBackup.on_train_end, []

    def record_steps(self, logs=None):
        steps.append(self._step)
        end(self, logs)

    monkeypatch.setattr(ResumableBackup, "on_train_end", record_steps)
    assert cli.main(argv) == 0
    assert "resuming from the backup" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]["loss"]) == 1  # the interrupted epoch
    assert steps == [6]  # 2 epochs × 3 steps, none trained twice
    assert not (out / "backup").exists()  # deleted when training ended


def test_backup_every_must_be_positive(tmp_path, capsys):
    argv = ["pretrain", "simclr", "--out", str(tmp_path), "--resume",
            "--backup-every", "0", *TINY]
    assert cli.main(argv) == 2
    assert "--backup-every must be at least 1" in capsys.readouterr().err
