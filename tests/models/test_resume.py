"""Exact resumption (`ResumableBackup`) and the NaN/Inf guard, on every
method of the shared harness (tests/harness.py `CASES`).

Run A trains 2 epochs × 3 steps uninterrupted. Run B trains the same model
from the same seed with a mid-epoch backup after every step and is killed by
an exception after step 4 (epoch 2, batch 1); a fresh model resumes from the
backup. B must end with A's weights: every `model.weights` (target
encoders, queues, centers, batch-norm statistics), the optimizer's
variables and the random seed generators' states.

The data are 6 distinct fixed batches (`case.fixed_inputs` of different
images, no tf random ops), repeated, so that a resumed run that re-reads
or skips a batch ends elsewhere.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import JIT_COMPILE
from harness import CASES, matrix_params
from keras_ssl.callbacks import (
    NonFiniteLossError,
    NonFiniteLossGuard,
    ResumableBackup,
)

ids = [case.name for case in CASES]
EPOCHS, STEPS, KILL_AFTER = 2, 3, 4


def _batches(case, images):
    """6 distinct fixed batches as a repeated tf.data pipeline of `(x,)`."""
    batches = [case.fixed_inputs(images[16 * i:]) for i in range(2 * STEPS)]
    stacked = keras.tree.map_structure(lambda *b: np.stack(b), *batches)
    return tf.data.Dataset.from_tensor_slices((stacked,)).repeat()


class _Kill(Exception):
    pass


class _KillAfter(keras.callbacks.Callback):
    def __init__(self, steps):
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.steps:
            raise _Kill()


def _model(case, inputs):
    keras.utils.set_random_seed(0)
    model = case.build_model()
    model(inputs)  # BackupAndRestore needs a built model
    model.compile(
        optimizer=keras.optimizers.Adam(case.learning_rate),
        jit_compile=JIT_COMPILE,
    )
    return model


def _variables(model):
    """Every variable a resumed run must restore: `model.weights`, the
    optimizer's and the random seed generators' states."""
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    return [*model.weights, *model.optimizer.variables, *seeds]


def _state(model):
    return [keras.ops.convert_to_numpy(v) for v in _variables(model)]


FIT = dict(epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0, shuffle=False)


def _killed_then_uninterrupted(case, dataset, inputs, backup):
    """`(uninterrupted final state, killed model)`: one model (one compiled
    step) is killed after step KILL_AFTER with `backup` on, then reset to
    its initial state and trained uninterrupted."""
    model = _model(case, inputs)
    model.optimizer.build(model.trainable_variables)
    initial = _state(model)
    with pytest.raises(_Kill):
        model.fit(dataset, callbacks=[backup, _KillAfter(KILL_AFTER)], **FIT)
    for variable, value in zip(_variables(model), initial):
        variable.assign(value)
    model.fit(dataset, **FIT)
    return _state(model), model


# By default the queue + EMA + momentum schedule of MoCo and the mask
# seed generator of MAE; every method with KERAS_SSL_FULL_MATRIX=1.
@pytest.mark.parametrize("case", matrix_params({"moco", "mae"}))
def test_resumed_run_ends_with_the_uninterrupted_weights(
    case, small_images, tmp_path
):
    dataset = _batches(case, small_images)
    inputs = case.fixed_inputs(small_images)
    backup_dir = str(tmp_path / "backup")
    expected, _ = _killed_then_uninterrupted(
        case, dataset, inputs, ResumableBackup(backup_dir, save_freq=1)
    )
    resumed = _model(case, inputs)  # a fresh model, as after a restart
    history = resumed.fit(
        dataset, callbacks=[ResumableBackup(backup_dir, save_freq=1)], **FIT
    )
    assert len(history.history["loss"]) == 1  # only the interrupted epoch
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS
    got = _state(resumed)
    assert len(expected) == len(got)
    for a, b, v in zip(expected, got, _variables(resumed)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=v.path)


def test_a_stock_backup_and_restore_would_retrain_batches(
    small_images, tmp_path
):
    """The control: Keras' own BackupAndRestore (and `keras.Model.fit`)
    restarts the interrupted epoch from its first batch, so the resumed run
    takes more steps than the uninterrupted one (the test above does not
    pass trivially)."""
    case = CASES[0]
    dataset = _batches(case, small_images)
    inputs = case.fixed_inputs(small_images)
    backup_dir = str(tmp_path / "stock")
    killed = _model(case, inputs)
    with pytest.raises(_Kill):
        keras.Model.fit(
            killed, dataset,
            callbacks=[keras.callbacks.BackupAndRestore(backup_dir, save_freq=1),
                       _KillAfter(KILL_AFTER)],
            **FIT,
        )
    resumed = _model(case, inputs)
    keras.Model.fit(
        resumed, dataset,
        callbacks=[keras.callbacks.BackupAndRestore(backup_dir, save_freq=1)],
        **FIT,
    )
    assert int(resumed.optimizer.iterations) == KILL_AFTER + STEPS  # not 6


# --- the NaN/Inf guard ------------------------------------------------------
def _simclr(learning_rate=1e-3):
    case = CASES[0]  # SimCLR
    model = case.build_model()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  jit_compile=JIT_COMPILE)
    return case, model


def test_nan_loss_stops_training_naming_method_step_and_causes(small_images):
    # A learning rate of 1e30 makes SimCLR's loss NaN at its second step on
    # every backend. (A NaN or Inf *input* pixel does not reliably give a
    # NaN loss: XLA's CPU max drops NaN in ReLU, so jit-compiled runs train
    # on with a finite loss.)
    case, model = _simclr(learning_rate=1e30)
    x = case.fixed_inputs(small_images)
    with pytest.raises(NonFiniteLossError) as error:
        model.fit(x=x, batch_size=8, epochs=3, verbose=0, shuffle=False)
    message = str(error.value)
    assert isinstance(error.value, FloatingPointError)
    assert message.startswith(
        "SimCLR: the training loss is nan at step 2 (epoch 1, batch 2 of 2)"
    ), message
    assert "temperature too low" in message  # SimCLR's own hint
    assert "learning rate too high" in message
    assert "NaN or Inf in the input batch" in message


def test_normal_training_is_untouched_and_a_user_guard_replaces_ours(
    small_images,
):
    from keras_ssl.callbacks import prepare_fit

    case, model = _simclr()
    x = case.fixed_inputs(small_images)
    _, kwargs = prepare_fit(model, (x,), {"callbacks": []})
    assert [type(c) for c in kwargs["callbacks"]] == [NonFiniteLossGuard]
    history = model.fit(x=x, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    guard = NonFiniteLossGuard(raise_error=False)  # stop with a warning
    assert isinstance(guard, keras.callbacks.TerminateOnNaN)  # built on Keras'
    _, kwargs = prepare_fit(model, (x,), {"callbacks": [guard]})
    assert kwargs["callbacks"] == [guard]
    keras_own = keras.callbacks.TerminateOnNaN()  # Keras' own replaces ours too
    assert prepare_fit(model, (x,), {"callbacks": [keras_own]})[1]["callbacks"] == [
        keras_own]
    model.optimizer.learning_rate.assign(1e30)
    with pytest.warns(UserWarning, match="SimCLR: the training loss is nan"):
        history = model.fit(x=x, batch_size=8, epochs=3, verbose=0,
                            shuffle=False, callbacks=[guard])
    assert len(history.history["loss"]) == 1
