"""Callbacks that evaluate the representation while a model trains."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_ssl.evaluation.knn import evaluate_knn


class KNNMonitor(keras.callbacks.Callback):
    """Measures the k-NN accuracy of the encoder's features during `fit`.

    Every `every_n_epochs` epochs, and at the last epoch of `fit`, the
    encoder embeds `x_train` and `x_test`, and the accuracy of the weighted
    k-NN classifier (see `knn_predict`) on the test set is written to the
    epoch logs as `"knn_accuracy"`. It therefore shows in the progress bar, in
    `History.history["knn_accuracy"]` and to any later callback
    (`ModelCheckpoint(monitor="knn_accuracy", mode="max")`, ...).

    Epochs without an evaluation get no `"knn_accuracy"` key, so with
    `every_n_epochs > 1` the History list is shorter than the loss list; the
    epochs it belongs to are kept in `evaluated_epochs` (numbered from 1, as
    in the progress bar), next to `accuracies`. Pass them on as
    `plot_history(history, path, knn_epochs=monitor.evaluated_epochs)`.

    The callback runs between epochs, where every backend (JAX included,
    whose `fit` writes its functional training state back into the model's
    variables before `on_epoch_end`) exposes the current weights. The
    encoder runs in inference mode. The evaluation costs a forward pass over
    both sets: keep them small (a few thousand images).

    Example:

    ```python
    from keras_ssl.evaluation import KNNMonitor, plot_history

    # `model`: any keras-ssl model, e.g. keras_ssl.models.SimCLR(encoder);
    # x_*, y_*: labelled images and integer labels held out from training.
    monitor = KNNMonitor(x_train[:5000], y_train[:5000], x_test, y_test,
                         every_n_epochs=5)
    history = model.fit(dataset, epochs=100, callbacks=[monitor])
    plot_history(history.history, "history.png",
                 knn_epochs=monitor.evaluated_epochs)
    ```

    Args:
        x_train: Labelled images whose features are the neighbours.
        y_train: Integer class ids of `x_train`.
        x_test: Labelled images whose features are classified.
        y_test: Integer class ids of `x_test`.
        every_n_epochs: Evaluate after epochs `n, 2n, ...` (and the last).
        k: Number of neighbours that vote.
        temperature: Temperature of the vote weights.
        encoder: The `keras.Model` mapping images to features. By default the
            trained model's `encoder` attribute, which every keras-ssl model
            has.
        batch_size: Images per forward pass of the encoder.
        verbose: 1 to print each accuracy, 0 for silence.
    """

    def __init__(
        self,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        every_n_epochs: int = 1,
        k: int = 20,
        temperature: float = 0.07,
        encoder: keras.Model | None = None,
        batch_size: int = 256,
        verbose: int = 1,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(
                f"`every_n_epochs` must be >= 1; got {every_n_epochs}."
            )
        self.x_train = x_train
        self.y_train = np.asarray(y_train).reshape(-1)
        self.x_test = x_test
        self.y_test = np.asarray(y_test).reshape(-1)
        self.num_classes = int(max(self.y_train.max(), self.y_test.max())) + 1
        self.every_n_epochs = every_n_epochs
        self.k = k
        self.temperature = temperature
        self.encoder = encoder
        self.batch_size = batch_size
        self.verbose = verbose
        self.evaluated_epochs: list[int] = []
        self.accuracies: list[float] = []

    def _resolve_encoder(self) -> keras.Model:
        if self.encoder is not None:
            return self.encoder
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            raise ValueError(
                f"KNNMonitor: the model {type(self.model).__name__} has no "
                "`encoder` attribute; pass `encoder=` (a keras.Model mapping "
                "images to features)."
            )
        return encoder

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._resolve_encoder()  # Fail before the first epoch, not after it.

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        number = epoch + 1
        last = number == self.params.get("epochs")
        if number % self.every_n_epochs and not last:
            return
        accuracy = evaluate_knn(
            self._resolve_encoder(),
            self.x_train,
            self.y_train,
            self.x_test,
            self.y_test,
            num_classes=self.num_classes,
            k=self.k,
            temperature=self.temperature,
            batch_size=self.batch_size,
        )
        self.evaluated_epochs.append(number)
        self.accuracies.append(accuracy)
        if logs is not None:
            logs["knn_accuracy"] = accuracy
        if self.verbose:
            print(f"\nEpoch {number}: knn_accuracy = {accuracy:.4f}")
