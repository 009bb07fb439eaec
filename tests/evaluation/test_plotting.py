"""Tests for plot_history."""

import numpy as np
import pytest

from keras_ssl.evaluation import plot_history


def test_writes_a_png(tmp_path):
    history = {
        "loss": [2.0, 1.5, 1.2, 1.1],
        "val_loss": [2.1, 1.7, 1.4, 1.3],
        "knn_accuracy": [0.3, 0.45],
        "learning_rate": [0.1, 0.2, 0.2, 0.1],
        "accuracy": [0.2, 0.3, 0.4, 0.5],
        "val_accuracy": [0.2, 0.25, 0.3, 0.35],
    }
    path = plot_history(
        history, tmp_path / "history.png", title="test", knn_epochs=[2, 4]
    )
    assert path == str(tmp_path / "history.png")
    with open(path, "rb") as file:
        data = file.read()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_loss_only_and_history_object(tmp_path):
    class History:  # Stands in for keras.callbacks.History.
        history = {"loss": list(np.linspace(3.0, 1.0, 5))}

    path = plot_history(History(), tmp_path / "loss.png")
    with open(path, "rb") as file:
        assert file.read(4) == b"\x89PNG"


def test_partial_knn_needs_its_epochs(tmp_path):
    history = {"loss": [2.0, 1.5, 1.2], "knn_accuracy": [0.3, 0.4]}
    with pytest.raises(ValueError, match="knn_epochs"):
        plot_history(history, tmp_path / "h.png")
    with pytest.raises(ValueError, match="entries"):
        plot_history(history, tmp_path / "h.png", knn_epochs=[3])
    # Measured at every epoch: no epochs needed.
    plot_history({"loss": [2.0, 1.0], "knn_accuracy": [0.3, 0.4]},
                 tmp_path / "h.png")


def test_image_rows_write_a_png(tmp_path):
    from keras_ssl.evaluation import plot_image_rows

    rng = np.random.default_rng(0)
    x = rng.random((10, 16, 16, 3))
    path = plot_image_rows(
        {"original": x, "gray": x[..., :1], "masked": x * 0.5},
        tmp_path / "grid.png", title="rows",
    )
    with open(path, "rb") as file:
        data = file.read()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000


def test_image_rows_errors(tmp_path):
    from keras_ssl.evaluation import plot_image_rows

    x = np.zeros((4, 8, 8, 3))
    with pytest.raises(ValueError, match="at least one row"):
        plot_image_rows({}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="same, non-zero number"):
        plot_image_rows({"a": x, "b": x[:2]}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="\\(N, H, W, 1 or 3\\)"):
        plot_image_rows({"a": x[..., 0]}, tmp_path / "a.png")
