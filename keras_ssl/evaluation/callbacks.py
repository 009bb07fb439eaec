"""Callbacks that evaluate the representation while a model trains."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.evaluation.features import check_labelled_dataset
from keras_ssl.evaluation.knn import evaluate_knn, resolve_implementation


class KNNMonitor(keras.callbacks.Callback):
    """Measures the k-NN accuracy of the encoder's features during `fit`.

    Every `every_n_epochs` epochs, and at the last epoch of `fit`, the
    encoder embeds the training and test images, and the accuracy of the
    weighted k-NN classifier (see `knn_predict`) on the test set is written
    to the epoch logs as `"knn_accuracy"`. It therefore shows in the
    progress bar, in `History.history["knn_accuracy"]` and to any later
    callback (`ModelCheckpoint(monitor="knn_accuracy", mode="max")`, ...).

    Epochs without an evaluation get no `"knn_accuracy"` key, so with
    `every_n_epochs > 1` the History list is shorter than the loss list; the
    epochs it belongs to are kept in `evaluated_epochs` (numbered from 1, as
    in the progress bar), next to `accuracies`. Pass them on as
    `plot_history(history, path, knn_epochs=monitor.evaluated_epochs)`.

    The callback runs between epochs, where every backend (JAX included,
    whose `fit` writes its functional training state back into the model's
    variables before `on_epoch_end`) exposes the current weights. The
    encoder runs in inference mode. The evaluation costs a forward pass over
    both sets.

    The labelled images come as four arrays, `KNNMonitor(x_train, y_train,
    x_test, y_test)`, held in memory, or as two finite `tf.data.Dataset`s of
    `(images, labels)` batches, `KNNMonitor(train_dataset, test_dataset)`,
    read batch by batch at each evaluation (uint8 images become float32 in
    `[0, 1]`, see `extract_features`); only the `(N, D)` features are in
    memory at once. The k-NN runs on the backend's device when it has one
    (see `knn_predict`).

    Example:

    ```python
    from keras_ssl.evaluation import KNNMonitor, plot_history

    # `model`: any keras-ssl model, e.g. keras_ssl.models.SimCLR(encoder);
    # x_*, y_*: labelled images and integer labels held out from training.
    monitor = KNNMonitor(x_train[:5000], y_train[:5000], x_test, y_test,
                         every_n_epochs=5)
    # or, streaming labelled datasets of (images, labels) batches:
    # monitor = KNNMonitor(train_ds, test_ds, every_n_epochs=5)
    history = model.fit(dataset, epochs=100, callbacks=[monitor])
    plot_history(history.history, "history.png",
                 knn_epochs=monitor.evaluated_epochs)
    ```

    Args:
        x_train: Labelled images whose features are the neighbours: an
            array, or a `tf.data.Dataset` of `(images, labels)` batches.
        y_train: Integer class ids of `x_train`; for datasets, the test
            dataset (`KNNMonitor(train_dataset, test_dataset)`).
        x_test: Labelled images whose features are classified; unused for
            datasets.
        y_test: Integer class ids of `x_test`; unused for datasets.
        every_n_epochs: Evaluate after epochs `n, 2n, ...` (and the last).
        k: Number of neighbours that vote.
        temperature: Temperature of the vote weights.
        encoder: The `keras.Model` mapping images to features. By default the
            trained model's `encoder` attribute, which every keras-ssl model
            has.
        batch_size: Images per forward pass of the encoder (arrays; a
            dataset keeps its own batches).
        verbose: 1 to print each accuracy, 0 for silence.
        num_classes: Number of classes; by default one more than the largest
            label (of the arrays, or of the labels read at each evaluation).
        implementation: `"auto"`, `"keras"` or `"numpy"`: where the k-NN
            runs (see `knn_predict`).
    """

    def __init__(
        self,
        x_train: Any,
        y_train: Any,
        x_test: Any = None,
        y_test: Any = None,
        every_n_epochs: int = 1,
        k: int = 20,
        temperature: float = 0.07,
        encoder: keras.Model | None = None,
        batch_size: int = 256,
        verbose: int = 1,
        num_classes: int | None = None,
        implementation: str = "auto",
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(
                f"`every_n_epochs` must be >= 1; got {every_n_epochs}."
            )
        resolve_implementation(implementation)  # Fails early when unknown.
        if isinstance(x_train, tf.data.Dataset):
            if not isinstance(y_train, tf.data.Dataset) or (
                x_test is not None or y_test is not None
            ):
                raise ValueError(
                    "KNNMonitor takes two labelled datasets, "
                    "`KNNMonitor(train_dataset, test_dataset)`, or four "
                    "arrays, `KNNMonitor(x_train, y_train, x_test, y_test)`; "
                    f"got a dataset with {type(y_train).__name__}, "
                    f"{type(x_test).__name__} and {type(y_test).__name__}."
                )
            # Checked now (element_spec only), not at the first evaluation.
            check_labelled_dataset(x_train, "KNNMonitor's train dataset")
            check_labelled_dataset(y_train, "KNNMonitor's test dataset")
            # Datasets carry their labels (see `features_and_labels`).
            self.x_train, self.y_train = x_train, None
            self.x_test, self.y_test = y_train, None
        else:
            if any(part is None for part in (y_train, x_test, y_test)) or (
                isinstance(y_train, tf.data.Dataset)
            ):
                raise ValueError(
                    "KNNMonitor takes four arrays, `KNNMonitor(x_train, "
                    "y_train, x_test, y_test)`, or two labelled datasets of "
                    "`(images, labels)` batches, `KNNMonitor(train_dataset, "
                    "test_dataset)`."
                )
            self.x_train = x_train
            self.y_train = np.asarray(y_train).reshape(-1)
            self.x_test = x_test
            self.y_test = np.asarray(y_test).reshape(-1)
            if num_classes is None:
                num_classes = (
                    int(max(self.y_train.max(), self.y_test.max())) + 1
                )
        self.num_classes = num_classes
        self.implementation = implementation
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
            implementation=self.implementation,
        )
        self.evaluated_epochs.append(number)
        self.accuracies.append(accuracy)
        if logs is not None:
            logs["knn_accuracy"] = accuracy
        if self.verbose:
            print(f"\nEpoch {number}: knn_accuracy = {accuracy:.4f}")
