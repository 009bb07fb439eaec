"""`keras-ssl pretrain`: what is checked before training starts (the output
folder, the data, the arguments), each with a one-line message. Killing
runs and resuming them: tests/test_kill_and_resume.py."""

import json
import subprocess
import sys
import time

import pytest

from keras_ssl import cli

TINY = ["--epochs", "1", "--max-examples", "64", "--batch-size", "32",
        "--knn-every", "1", "--quiet"]


def _error(args, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("keras-ssl: error: "), err
    return err[0]


def test_output_folder_checks(tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("x")
    assert "is a file" in _error(["pretrain", "simclr", "--out", str(file)], capsys)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    message = _error(["pretrain", "simclr", "--out", str(busy)], capsys)
    assert "is not empty" in message and "--restart" in message
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "summary.json").write_text("{}")
    message = _error(["pretrain", "simclr", "--out", str(finished)], capsys)
    assert "holds a finished run" in message
    assert cli.main(["pretrain", "simclr", "--out", str(finished), "--resume"]) == 0
    assert "is finished" in capsys.readouterr().out
    interrupted = tmp_path / "interrupted"
    (interrupted / "backup" / "step-000000002").mkdir(parents=True)
    message = _error(["pretrain", "simclr", "--out", str(interrupted)], capsys)
    assert "backup of an interrupted run" in message and "--resume" in message


def test_a_batch_larger_than_the_data_names_the_flag(tmp_path, capsys):
    message = _error(["pretrain", "simclr", "--out", str(tmp_path / "o"),
                      "--max-examples", "40", "--batch-size", "256"], capsys)
    assert "--batch-size 256 is larger than the" in message
    assert "pass a smaller --batch-size" in message


def test_backup_every_must_be_positive(tmp_path, capsys):
    message = _error(["pretrain", "simclr", "--out", str(tmp_path),
                      "--backup-every", "0", *TINY], capsys)
    assert "--backup-every must be at least 1" in message


def test_argument_errors_come_before_any_framework_import():
    code = ("import sys; sys.argv[0] = 'keras-ssl'\n"  # the console script
            "import sys, time; from keras_ssl import cli; t = time.time()\n"
            "for argv in (['pretrain', 'simclr', '--epochs', '0'],\n"
            "             ['pretrain', 'gpt', '--dataset', 'folder:/nowhere'],\n"
            "             ['pretrain', 'wav2vec2', '--dataset', 'mp3:x']):\n"
            "    assert cli.main(argv) == 2\n"
            "print(time.time() - t, [m for m in ('keras', 'tensorflow', 'jax', "
            "'torch') if m in sys.modules])")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True)
    seconds, imported = done.stdout.split(" ", 1)
    assert float(seconds) < 0.5 and imported.strip() == "[]"
    assert time.perf_counter() - start < 5.0
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["zero-shot", "--backend", "mxnet"])
    assert exit_info.value.code == 2


def test_restart_drops_the_backup_and_trains_again(tmp_path, capsys):
    from conftest import BACKEND

    if BACKEND != "torch":
        pytest.skip("backend-free folder handling: tested under torch")
    out = tmp_path / "run"
    assert cli.main(["pretrain", "simclr", "--out", str(out), *TINY]) == 0
    first = json.loads((out / "summary.json").read_text())
    assert not (out / "backup").exists()
    assert cli.main(["pretrain", "simclr", "--out", str(out), "--restart",
                     *TINY]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["scores"] == first["scores"]  # the same seed, the same run


def test_messages_stay_on_the_terminal_and_framework_logs_do_not(tmp_path):
    """A problem found once the framework is imported (here a batch larger
    than the data) is still one line on stderr, without TensorFlow's logs
    (those go to OUT/framework.log)."""
    from conftest import BACKEND

    if BACKEND != "torch":
        pytest.skip("backend-free: tested under torch")
    out = tmp_path / "o"
    done = subprocess.run(
        [sys.executable, "-m", "keras_ssl.cli", "pretrain", "simclr", "--out",
         str(out), "--max-examples", "40", "--batch-size", "256"],
        capture_output=True, text=True, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--batch-size 256 is larger than" in lines[0], lines
    assert "oneDNN" in (out / "framework.log").read_text()
