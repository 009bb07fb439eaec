"""Plots: training histories and grids of images."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Keys drawn by the two main panels, not repeated among the small ones.
_MAIN_KEYS = ("loss", "val_loss", "knn_accuracy")
_SMALL_PANELS_PER_ROW = 3
# Columns of the layout grid: 2 main panels or 3 small ones per row.
_GRID_COLUMNS = 6


def _as_dict(history: Any) -> dict[str, np.ndarray]:
    # Accept `model.fit(...)` (a keras History) as well as its `.history`.
    history = getattr(history, "history", history)
    if not isinstance(history, Mapping):
        raise TypeError(
            "`history` must be a dict of lists (History.history); got "
            f"{type(history).__name__}."
        )
    scalars = {}
    for key, values in history.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1 and len(values):
            scalars[key] = values
    return scalars


def _epochs(values: np.ndarray) -> np.ndarray:
    return np.arange(1, len(values) + 1)


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    title: str | None = None,
    knn_epochs: Sequence[int] | None = None,
) -> str:
    """Saves a PNG of a training history: loss, k-NN accuracy, other metrics.

    The first panel shows `loss` (and `val_loss`) per epoch, the second the
    `knn_accuracy` written by `KNNMonitor`, at the epochs where it was
    measured. Every other scalar metric (`val_<name>` drawn with `<name>`)
    gets a small panel below. Plotting uses matplotlib's Agg canvas directly,
    so it needs no display and leaves pyplot's global state alone.

    Example:

    ```python
    from keras_ssl.evaluation import plot_history

    history = {"loss": [2.0, 1.2, 0.9, 0.8], "knn_accuracy": [0.41, 0.55]}
    plot_history(history, "history.png", title="SimCLR",
                 knn_epochs=[2, 4])
    ```

    Args:
        history: `History.history` from `model.fit` (or the `History`
            itself): metric names mapped to one value per epoch.
        path: Where to write the PNG.
        title: Title of the figure.
        knn_epochs: Epochs (from 1) at which `knn_accuracy` was measured,
            i.e. `KNNMonitor.evaluated_epochs`. Only needed when it was not
            measured at every epoch.

    Returns:
        `path`, as a string.
    """
    scalars = _as_dict(history)
    if not scalars:
        raise ValueError("`history` holds no per-epoch values to plot.")
    knn = scalars.get("knn_accuracy")
    if knn is not None:
        knn_epochs = _knn_epochs(scalars, knn_epochs)
    others = sorted(
        key
        for key in scalars
        if key not in _MAIN_KEYS
        and not (key.startswith("val_") and key[4:] in scalars)
    )
    main_panels = [key for key in ("loss", "knn_accuracy") if key in scalars]
    small_rows = math.ceil(len(others) / _SMALL_PANELS_PER_ROW)

    width = 11.0 if len(main_panels) > 1 or others else 6.5
    figure = Figure(
        figsize=(width, 4.2 + 2.6 * small_rows), layout="constrained"
    )
    grid = figure.add_gridspec(
        1 + small_rows, _GRID_COLUMNS, height_ratios=[1.6] + [1.0] * small_rows
    )
    main_width = _GRID_COLUMNS // max(len(main_panels), 1)
    first_axis = None
    for i, key in enumerate(main_panels):
        # A shared epoch axis lines the k-NN points up with the loss curve.
        axis = figure.add_subplot(
            grid[0, i * main_width : (i + 1) * main_width], sharex=first_axis
        )
        first_axis = first_axis or axis
        if key == "loss":
            _plot_with_validation(axis, scalars, "loss")
            axis.set_ylabel("loss")
            axis.set_title("Training loss")
        else:
            axis.plot(
                knn_epochs, knn, "o-", color="tab:green", label="knn_accuracy"
            )
            axis.set_ylabel("accuracy")
            axis.set_title("k-NN accuracy")
            axis.legend()
        _style(axis)

    small_width = _GRID_COLUMNS // _SMALL_PANELS_PER_ROW
    for i, key in enumerate(others):
        row, column = divmod(i, _SMALL_PANELS_PER_ROW)
        axis = figure.add_subplot(
            grid[1 + row, column * small_width : (column + 1) * small_width]
        )
        _plot_with_validation(axis, scalars, key, fontsize="small")
        axis.set_title(key, fontsize="medium")
        _style(axis)

    if title:
        figure.suptitle(title, fontsize="x-large")
    path = os.fspath(path)
    FigureCanvasAgg(figure).print_png(path)
    return path


def _knn_epochs(
    scalars: dict[str, np.ndarray], knn_epochs: Sequence[int] | None
) -> np.ndarray:
    knn = scalars["knn_accuracy"]
    if knn_epochs is not None:
        if len(knn_epochs) != len(knn):
            raise ValueError(
                f"`knn_epochs` has {len(knn_epochs)} entries for {len(knn)} "
                "`knn_accuracy` values."
            )
        return np.asarray(knn_epochs)
    num_epochs = max(len(values) for values in scalars.values())
    if len(knn) != num_epochs:
        raise ValueError(
            f"`knn_accuracy` has {len(knn)} values for {num_epochs} epochs; "
            "pass the epochs it was measured at as "
            "`knn_epochs=monitor.evaluated_epochs`."
        )
    return _epochs(knn)


def _plot_with_validation(
    axis: Any,
    scalars: dict[str, np.ndarray],
    key: str,
    fontsize: str = "medium",
) -> None:
    for name, style in ((key, "-"), (f"val_{key}", "--")):
        if name in scalars:
            values = scalars[name]
            axis.plot(_epochs(values), values, style, label=name)
    axis.legend(fontsize=fontsize)


def _style(axis: Any) -> None:
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
    axis.xaxis.get_major_locator().set_params(integer=True)


def plot_image_rows(
    rows: Mapping[str, Any],
    path: str | os.PathLike,
    title: str | None = None,
    max_images: int = 8,
) -> str:
    """Saves a PNG grid of images: one labelled row per entry of `rows`.

    The picture a person looks at after masked image modelling: e.g.
    `{"original": x, "masked": m, "reconstruction": r}` shows each image
    above its masked input and the model's reconstruction (MAE), or above
    what a tokenizer's codes decode to (BEiT).

    Example:

    ```python
    import numpy as np
    from keras_ssl.evaluation.plotting import plot_image_rows

    x = np.random.rand(4, 16, 16, 3)
    plot_image_rows({"original": x, "noisy": np.clip(x + 0.2, 0, 1)},
                    "grid.png", title="two rows")
    ```

    Args:
        rows: row label → images `(N, H, W, C)` (C = 1 or 3) in [0, 1]; all
            rows need the same N.
        path: where to write the PNG.
        title: an optional title above the grid.
        max_images: columns shown (the first images of each row).

    Returns:
        `path`, as a string.
    """
    if not rows:
        raise ValueError("`rows` must name at least one row of images.")
    arrays = {}
    for label, images in rows.items():
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                f"Row {label!r} must hold images (N, H, W, 1 or 3); got shape "
                f"{images.shape}."
            )
        arrays[label] = np.clip(images[:max_images], 0.0, 1.0)
    counts = {len(images) for images in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            "Every row must hold the same, non-zero number of images; got "
            f"{ {label: len(a) for label, a in arrays.items()} }."
        )
    columns = counts.pop()
    figure = Figure(figsize=(1.2 * columns + 1.2, 1.25 * len(arrays) + 0.4))
    FigureCanvasAgg(figure)
    grid = figure.subplots(len(arrays), columns, squeeze=False)
    for r, (label, images) in enumerate(arrays.items()):
        for c in range(columns):
            axis = grid[r][c]
            image = images[c]
            axis.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                        cmap="gray", vmin=0.0, vmax=1.0,
                        interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if c == 0:
                axis.set_ylabel(label, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return str(path)
