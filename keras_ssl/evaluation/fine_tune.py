"""Fine-tuning: the whole pretrained encoder trained end to end with a new head.

Masked image models are known to probe worse than they fine-tune (MAE, He et
al. 2021, section 4.3: "linear probing and fine-tuning results are largely
uncorrelated"), so their representation is also measured this way. The
encoder is copied first: the caller's pretrained weights are never changed.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_ssl.layers.vit import TokenPooling, prefix_tokens
from keras_ssl.optimizers.schedules import warmup_cosine_schedule


def copy_encoder(encoder: keras.Model) -> keras.Model:
    """A trainable copy of `encoder` with copied (not shared) weights.

    Rebuilt from `get_config()` (keras-hub backbones, functional and
    `Sequential` models), its weights set from NumPy copies.
    """
    copy = type(encoder).from_config(encoder.get_config())
    if not copy.built:
        copy.build(encoder.input_shape)
    copy.set_weights([keras.ops.convert_to_numpy(w) for w in encoder.weights])
    copy.trainable = True
    return copy


def _classifier(encoder, image_shape, num_classes):
    inputs = keras.Input(image_shape)
    features = encoder(inputs)
    rank = len(features.shape)
    if rank == 4:
        features = keras.layers.GlobalAveragePooling2D()(features)
    elif rank == 3:
        features = TokenPooling("avg", prefix_tokens(encoder))(features)
    elif rank != 2:
        raise ValueError(
            "The encoder must return features of rank 2, 3 or 4 to be "
            f"fine-tuned with a linear head; got shape {tuple(features.shape)}."
        )
    logits = keras.layers.Dense(num_classes, name="head")(features)
    return keras.Model(inputs, logits, name="fine_tuned")


def fine_tune_accuracy(
    encoder: keras.Model,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    epochs: int = 30,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.05,
    warmup_epochs: int = 2,
    label_smoothing: float = 0.1,
    seed: int = 0,
    verbose: int = 0,
) -> float:
    """Test accuracy after fine-tuning a copy of `encoder` with a linear head.

    The copy and a new `Dense(num_classes)` head (after global average
    pooling of feature maps or tokens) are trained together on the labelled
    training split with AdamW, linear warmup then cosine decay and label
    smoothing (MAE's fine-tuning recipe, without its layer-wise decay,
    mixup or drop path), then scored on the test split. Use the same
    arguments for a pretrained encoder and for the same architecture at
    random initialisation to see what pretraining buys.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_ssl.evaluation import fine_tune_accuracy

    encoder = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16)
    ])
    x = np.random.rand(64, 8, 8, 1).astype("float32")
    y = np.random.randint(0, 4, 64)
    fine_tune_accuracy(encoder, x[:48], y[:48], x[48:], y[48:], epochs=2)
    ```

    Args:
        encoder: A `keras.Model` mapping images to features; it is copied
            and left unchanged.
        x_train, y_train: Labelled training images and integer class ids.
        x_test, y_test: Test images and class ids.
        epochs: Passes over the training split.
        batch_size: Images per step.
        learning_rate: Peak learning rate of the schedule.
        weight_decay: AdamW's decoupled weight decay.
        warmup_epochs: Epochs of linear warmup.
        label_smoothing: Of the cross-entropy.
        seed: Seed of the head's initialisation and of the shuffling.
        verbose: `fit`'s verbosity.

    Returns:
        The fraction of test images classified correctly.
    """
    x_train = np.asarray(x_train, "float32")
    x_test = np.asarray(x_test, "float32")
    y_train = np.asarray(y_train).reshape(-1).astype("int32")
    y_test = np.asarray(y_test).reshape(-1).astype("int32")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            "Images and labels must be as many: got "
            f"{len(x_train)}/{len(y_train)} (train), "
            f"{len(x_test)}/{len(y_test)} (test)."
        )
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError("Fine-tuning needs non-empty train and test splits.")
    if int(epochs) < 1:
        raise ValueError(f"`epochs` must be >= 1; got {epochs}.")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    keras.utils.set_random_seed(seed)
    model = _classifier(copy_encoder(encoder), x_train.shape[1:], num_classes)
    steps = max(1, -(-len(x_train) // batch_size))
    total = steps * int(epochs)
    schedule = warmup_cosine_schedule(
        learning_rate, total, min(total - 1, warmup_epochs * steps)
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        ),
        metrics=["accuracy"],
    )
    one_hot = np.eye(num_classes, dtype="float32")
    model.fit(
        x_train,
        one_hot[y_train],
        batch_size=batch_size,
        epochs=int(epochs),
        shuffle=True,
        verbose=verbose,
    )
    logits = model.predict(x_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y_test))
