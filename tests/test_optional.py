"""Optional dependencies (`keras_ssl._optional.require`): a missing one fails
with one clear message naming the extra that installs it. Backend-free:
tested under TensorFlow only."""

import sys

import pytest

from conftest import BACKEND
from keras_ssl import cli
from keras_ssl._optional import MissingDependency, require
from keras_ssl.data import load_image_data

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow",
                                reason="backend-free: tested under TensorFlow")


def test_a_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # not installed
    with pytest.raises(MissingDependency) as error:
        require("tensorflow_datasets", "tfds", "the TFDS dataset 'mnist'")
    assert str(error.value) == (
        "the TFDS dataset 'mnist' needs the tensorflow-datasets package: "
        'pip install "keras-ssl[tfds]" (or pip install tensorflow-datasets)')
    assert isinstance(error.value, ImportError)
    # The loaders go through it.
    with pytest.raises(MissingDependency, match=r'pip install "keras-ssl\[tfds\]"'):
        load_image_data("tfds:mnist")


def test_a_broken_dependency_of_an_installed_module_is_not_hidden(monkeypatch,
                                                                   tmp_path):
    (tmp_path / "installed_but_broken.py").write_text("import its_own_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as error:
        require("installed_but_broken", "speech", "x")
    assert not isinstance(error.value, MissingDependency)
    assert error.value.name == "its_own_missing_dependency"


def test_the_cli_says_it_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    code = cli.main(["pretrain", "simclr", "--dataset", "tfds:mnist", "--steps", "1",
                     "--backend", "tensorflow", "--out", str(tmp_path / "run")])
    assert code == 2
    assert capsys.readouterr().err == (
        "keras-ssl: error: the TFDS dataset 'mnist' needs the tensorflow-datasets "
        'package: pip install "keras-ssl[tfds]" (or pip install tensorflow-datasets)\n')


def test_a_missing_backend_is_one_line_before_keras_needs_it(monkeypatch, capsys,
                                                             tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # the [torch] extra not installed
    assert cli.main(["pretrain", "mae", "--backend", "torch", "--steps", "1",
                     "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        "keras-ssl: error: the torch backend (--backend picks another) needs the torch "
        'package: pip install "keras-ssl[torch]" (or pip install torch)\n')


def test_the_speech_extra_is_named_for_espeak_and_flac(monkeypatch, tmp_path):
    from keras_ssl.data.audio_stream import stream_audio_folder
    from keras_ssl.datasets import load_spoken_corpus

    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(MissingDependency, match=r'pip install "keras-ssl\[speech\]"'):
        load_spoken_corpus(0.1, 0.1, 0.1, cache=False, verbose=0)
    (tmp_path / "a.flac").write_bytes(b"fLaC")
    with pytest.raises(MissingDependency, match=r'pip install "keras-ssl\[speech\]"'):
        stream_audio_folder(tmp_path)
