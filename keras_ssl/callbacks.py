"""Training callbacks: the guards every keras-ssl method gets (exact
resumption and a loud stop on a non-finite loss) and method-specific monitors
(`DINOCollapseMonitor`).

`SSLModel.fit` calls `prepare_fit`, which

- puts a `NonFiniteLossGuard` first in the callbacks unless the caller
  passed one (or Keras' `TerminateOnNaN`): a NaN/Inf loss raises a
  `NonFiniteLossError` naming the method, the step, the loss and the likely
  causes, instead of training on;
- when a `ResumableBackup` among the callbacks holds a backup, moves the
  `tf.data` input forward past the batches that run already trained on.

What Keras' own `keras.callbacks.BackupAndRestore` (3.15) restores, and what
`ResumableBackup` adds:

- restored by Keras: `model.save_weights` / `load_weights`, i.e. every
  variable in `model.weights` (trainable and non-trainable: target
  encoders, MoCo queues and their pointers, DINO centers, batch-norm
  statistics, step counters kept as variables) and the optimizer's
  variables (its `iterations`, hence every schedule driven by it, and its
  moments); the epoch to start from.
- not restored by Keras, added here: the states of `keras.random.
  SeedGenerator`s (MAE/BEiT masks, VQ codebook restarts), which are model
  variables but not `model.weights`; the position inside the epoch (Keras
  writes the batch index but restarts the interrupted epoch from its first
  batch, so a mid-epoch backup (`save_freq=int`) trained those batches
  twice); the position in the data (a resumed `fit` reads its dataset from
  the start, while an uninterrupted `fit` over a repeated dataset with
  `steps_per_epoch` goes on where the last epoch stopped); the epoch of a
  mid-epoch backup written after a resume (Keras records epoch 0 until the
  first epoch of the resumed run ends).
- not restored by either: metric accumulators (the running means of the
  interrupted epoch's logs restart), and Python-side state of other
  callbacks.
"""

import inspect
import json
import os
import shutil
import warnings

import keras
import numpy as np

from keras_ssl.recipes import backups

# Likely causes of a non-finite loss common to every method; a method adds
# its own in a class attribute `nan_hints` (e.g. SimCLR's temperature).
DEFAULT_NAN_HINTS = (
    "a learning rate too high for this batch size and optimizer (lower it "
    "or lengthen the warmup)",
    "mixed precision (`mixed_float16`) without loss scaling (use "
    "`keras.optimizers.LossScaleOptimizer` or `mixed_bfloat16`)",
    "NaN or Inf in the input batch (check the data pipeline and image "
    "scaling)",
)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


class NonFiniteLossGuard(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that says where and why it stopped.

    Keras' callback checks the training loss after every batch; this one
    does the same check, and by default raises a `NonFiniteLossError` (a
    `FloatingPointError`) whose message names the method, the step and the
    likely causes (the method's `nan_hints` first), instead of a bare
    `RuntimeError`. `SSLModel.fit` adds one automatically (first in the
    callbacks, so that a backup callback never saves the broken step); pass
    your own to change it.

    Args:
        raise_error: raise a `NonFiniteLossError` (default); otherwise, as
            `TerminateOnNaN`'s default, warn and set `model.stop_training`.

    Example:

    ```python
    model.fit(views, epochs=10, callbacks=[NonFiniteLossGuard(raise_error=False)])
    ```
    """

    def __init__(self, raise_error=True):
        super().__init__(raise_error=raise_error)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(np.asarray(loss))
        if np.isfinite(value):
            return
        message = non_finite_loss_message(
            self.model, value, self._epoch, batch, self.params
        )
        if self.raise_error:
            raise NonFiniteLossError(message)
        warnings.warn(message, stacklevel=2)
        self.model.stop_training = True


def non_finite_loss_message(model, value, epoch, batch, params=None):
    """The message of a `NonFiniteLossError`: method, step, loss, causes."""
    name = type(model).__name__
    steps = (params or {}).get("steps")
    where = f"epoch {epoch + 1}, batch {batch + 1}"
    if steps:
        where = f"step {epoch * steps + batch + 1} ({where} of {steps})"
    hints = [*getattr(model, "nan_hints", ()), *DEFAULT_NAN_HINTS]
    causes = "".join(f"\n  - {hint}" for hint in hints)
    return (
        f"{name}: the training loss is {value} at {where}; training stopped "
        f"instead of going on with broken weights. Likely causes:{causes}"
    )


class BackupMismatchError(ValueError):
    """A backup written by a run with other settings than this one."""


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that resumes exactly, mid-epoch too,
    and never loses a good backup.

    A run killed at any moment (SIGKILL included) and restarted with the same
    model, compile and `fit` arguments and a fresh callback on the same
    `backup_dir` ends with the weights of an uninterrupted run: besides what
    Keras restores (all `model.weights`, the optimizer's variables, the
    epoch) it restores the random seed generators' states, skips the batches
    already trained on (with `SSLModel.fit`, for a `tf.data.Dataset` that is
    repeated with `steps_per_epoch`, or finite) and stops after the
    uninterrupted run's number of steps.

    Each backup is a folder `step-NNNNNNNNN/` written under a temporary name,
    its files flushed to disk, a `COMPLETE` record of their sizes and SHA-256
    written last, and only then renamed into place; the previous backup is
    deleted after that. At the start the newest backup whose files match
    their record is used; a damaged or partial one is reported in one line
    and the one before it is used instead.

    After a mid-epoch resume the epochs of the resumed run are shifted: its
    first epoch starts at the backup's batch and its last one ends early, so
    per-step schedules (the optimizer's `iterations`) are exact and
    epoch-end callbacks run at other steps than without the interruption.
    Data are exact when the pipeline is deterministic given its seed (no
    unseeded random ops).

    Args:
        backup_dir, save_freq, delete_checkpoint: as
            `keras.callbacks.BackupAndRestore` (`double_checkpoint` is
            accepted and ignored: the previous backup always survives until
            the next is complete).
        run_config: a JSON-able description of the run (its settings); a
            backup written with another one is refused with a
            `BackupMismatchError` naming the settings that differ.
        on_message: where one-line notices go (default: `print`).

    Example:

    ```python
    backup = ResumableBackup("runs/simclr/backup", save_freq=100)
    model.fit(views, epochs=100, callbacks=[backup])  # rerun the same line to resume
    ```
    """

    _EXTRA = "seed_generators.npz"
    _HISTORY = "history.json"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True, run_config=None, on_message=None):
        super().__init__(
            backup_dir, save_freq=save_freq, double_checkpoint=False,
            delete_checkpoint=delete_checkpoint,
        )
        self.run_config = run_config
        self._message = on_message or print
        self._step = 0  # batches trained, over all runs
        self._epoch_start_step = 0
        self._stop_at = None
        self._history = []  # one dict of logs per finished epoch
        self._save_at_epoch_end = False
        self._selected = None  # the backup folder restored, once chosen
        self._point_to(None)

    # --- the backup folders --------------------------------------------------
    def _point_to(self, folder):
        """Sets the paths Keras reads and writes to those inside `folder`."""
        folder = folder or os.path.join(self.backup_dir, ".none")
        self._weights_path = os.path.join(folder, "latest.weights.h5")
        self._training_metadata_path = os.path.join(folder, "training_metadata.json")
        self._extra_path = os.path.join(folder, self._EXTRA)

    def select(self):
        """The backup folder a resumed run starts from (the newest complete
        one), or None; damaged ones are reported and passed over."""
        if self._selected is None:
            self._selected = backups.newest_backup(self.backup_dir,
                                                   self._message) or ""
        return self._selected or None

    def backup_metadata(self):
        """The chosen backup's `{"epoch", "batch", "step", ...}` or None."""
        folder = self.select()
        return backups.read_metadata(folder) if folder else None

    def check_run_config(self):
        """Raises a `BackupMismatchError` if the chosen backup was written
        with another `run_config` than this run's."""
        saved = backups.saved_run_config(self.select())
        if saved is None or self.run_config is None:
            return
        message = backups.mismatch_message(self.backup_dir, saved, self.run_config)
        if message:
            raise BackupMismatchError(message)

    @property
    def epoch_logs(self):
        """`[{"epoch": index, metric: value, ...}]`: the logs of every epoch
        since the run began, the interrupted runs' included."""
        return [dict(entry) for entry in self._history]

    @property
    def history(self):
        """`fit`'s history (metric → values) of the whole run; a metric
        logged only at some epochs (an online k-NN) has a value per such
        epoch."""
        found = {}
        for entry in self._history:
            for key, value in entry.items():
                if key != "epoch":
                    found.setdefault(key, []).append(value)
        return found

    # --- restore -----------------------------------------------------------
    def on_train_begin(self, logs=None):
        folder = self.select()
        self._point_to(folder)
        if folder is not None:
            self.check_run_config()
        self._load_model()  # weights, optimizer, epoch (Keras)
        metadata = self.backup_metadata() or {}
        steps = self.params.get("steps") if self.params else None
        epoch = metadata.get("epoch", 0)
        self._step = metadata.get("step", epoch * (steps or 0))
        self._current_epoch = epoch
        self._history = []
        if folder is not None:
            history = os.path.join(folder, self._HISTORY)
            if os.path.exists(history):
                with open(history) as f:
                    self._history = json.load(f)
        if folder is not None and os.path.exists(self._extra_path):
            with open(self._extra_path, "rb") as f:
                arrays = np.load(f)
                values = [arrays[k] for k in sorted(arrays.files,
                                                    key=lambda k: int(k))]
            variables = _seed_variables(self.model)
            if len(values) != len(variables):
                raise BackupMismatchError(
                    f"The backup in {self.backup_dir} holds "
                    f"{len(values)} random seed states but "
                    f"{type(self.model).__name__} has {len(variables)}; it "
                    "was written by another model."
                )
            for variable, value in zip(variables, values):
                variable.assign(value)
        epochs = self.params.get("epochs") if self.params else None
        self._stop_at = epochs * steps if epochs and steps else None
        if self._stop_at is not None and self._step >= self._stop_at:
            # The backup is of the last step: train no further batch.
            self.model._initial_epoch = epochs

    # --- bookkeeping and save ------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        self._epoch_start_step = self._step

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            try:
                entry[key] = float(value)
            except (TypeError, ValueError):
                pass
        self._history.append(entry)
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        # The backup of an epoch's last step is taken here, with the epoch's
        # logs (an online k-NN's included); so is the last one of the run.
        if (self.save_freq == "epoch" or self._save_at_epoch_end
                or self.model.stop_training):
            self._save_at_epoch_end = False
            self._save_model()

    def on_train_batch_end(self, batch, logs=None):
        self._step = self._epoch_start_step + batch + 1
        backups.fault_point("train.step")
        steps = (self.params or {}).get("steps")
        if self._should_save_on_batch(batch):
            if steps is not None and batch + 1 >= steps:
                self._save_at_epoch_end = True
            else:
                self._save_model()
        if self._stop_at is not None and self._step >= self._stop_at:
            # A mid-epoch resume shifts the epochs: the last one ends here.
            self.model.stop_training = True

    def _save_model(self):
        """Writes the backup of step `_step` under a temporary name, flushes
        it, records it as complete, renames it into place, then deletes the
        older backups."""
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"{backups.PREFIX}{self._step:09d}"
        final = os.path.join(self.backup_dir, name)
        temporary = os.path.join(self.backup_dir, f".tmp-{name}-{os.getpid()}")
        shutil.rmtree(temporary, ignore_errors=True)
        os.makedirs(temporary)
        self._point_to(temporary)
        steps = (self.params or {}).get("steps")
        self.model.save_weights(filepath=self._weights_path, overwrite=True)
        files = {
            "training_metadata.json": json.dumps({
                # Where the step falls in unshifted epochs: a resumed run
                # starts that epoch (Keras) at that batch (prepare_fit).
                "epoch": self._step // steps if steps else self._current_epoch,
                "batch": self._step % steps if steps else self._last_batch_seen,
                "step": self._step,
                "steps_per_epoch": steps,
            }),
            self._HISTORY: json.dumps(self._history),
        }
        if self.run_config is not None:
            files[backups.RUN_CONFIG] = json.dumps(self.run_config, default=str)
        for file_name, text in files.items():
            with open(os.path.join(temporary, file_name), "w") as f:
                f.write(text)
        values = {
            str(i): keras.ops.convert_to_numpy(v)
            for i, v in enumerate(_seed_variables(self.model))
        }
        with open(self._extra_path, "wb") as f:
            np.savez(f, **values)
        backups.fault_point("backup.files")
        backups.seal(temporary, self._step)
        backups.fault_point("backup.sealed")
        if os.path.exists(final):  # the same step saved again
            shutil.rmtree(final)
        os.replace(temporary, final)
        backups.fsync_dir(self.backup_dir)
        backups.fault_point("backup.renamed")
        self._point_to(final)
        self._selected = final
        for old in os.listdir(self.backup_dir):
            path = os.path.join(self.backup_dir, old)
            if path != final and (old.startswith(backups.PREFIX)
                                  or old.startswith(".tmp-")):
                shutil.rmtree(path, ignore_errors=True)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            shutil.rmtree(self.backup_dir, ignore_errors=True)


def _seed_variables(model):
    """Model variables that `save_weights` leaves out: SeedGenerator states."""
    saved = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in saved]


def _skip_trained_batches(x, steps_per_epoch, step):
    """`(x, steps_per_epoch)` that continue the stream of batches an
    uninterrupted `fit` reads at batch `step`, or None if unknown."""
    import tensorflow as tf

    if not isinstance(x, tf.data.Dataset):
        return None
    cardinality = int(x.cardinality())
    if cardinality == int(tf.data.INFINITE_CARDINALITY):
        # Keras keeps one iterator over the epochs when steps_per_epoch is
        # given: batch `step` is the stream's element `step`. A stream of
        # `multi_view_dataset` starts there without loading what it skips.
        if not steps_per_epoch:
            return None
        start = getattr(x, "from_batch", None)
        return (start(step) if start else x.skip(step)), steps_per_epoch
    if cardinality > 0 and (
        steps_per_epoch is None or cardinality % steps_per_epoch == 0
    ):
        # A finite dataset is read from its start whenever its batches run
        # out: the stream is `x.repeat()`.
        return x.repeat().skip(step), steps_per_epoch or cardinality
    return None


def prepare_fit(model, args, kwargs):
    """`(args, kwargs)` of `keras.Model.fit` with keras-ssl's guards (see the
    module docstring); called by `SSLModel.fit`."""
    bound = inspect.signature(keras.Model.fit).bind(model, *args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.pop("self", None)
    extra = arguments.pop("kwargs", {})
    callbacks = arguments.get("callbacks")
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return args, kwargs  # a caller that manages its callbacks itself
    callbacks = list(callbacks or [])
    if not any(
        isinstance(c, keras.callbacks.TerminateOnNaN)  # ours or Keras' own
        for c in callbacks
    ):
        callbacks.insert(0, NonFiniteLossGuard())
    arguments["callbacks"] = callbacks

    backups = [c for c in callbacks if isinstance(c, ResumableBackup)]
    metadata = backups[0].backup_metadata() if backups else None
    step = (metadata or {}).get("step", 0)
    if step:
        skipped = _skip_trained_batches(
            arguments.get("x"), arguments.get("steps_per_epoch"), step
        )
        if skipped is None:
            warnings.warn(
                f"Resuming {type(model).__name__} at batch {step}: the input "
                "is not a tf.data.Dataset that is finite or repeated with "
                "`steps_per_epoch`, so its already-trained batches are not "
                "skipped; the data of the resumed run differ from an "
                "uninterrupted run's.",
                stacklevel=3,
            )
        else:
            arguments["x"], arguments["steps_per_epoch"] = skipped
    return (), {**arguments, **extra}


backup_dir_of = backups.backup_dir_of


class DINOCollapseMonitor(keras.callbacks.Callback):
    """Warns (and optionally stops training) when DINO's outputs collapse.

    Reads the `teacher_entropy` DINO logs at the end of each epoch and
    compares it with log K, the entropy of the uniform distribution over the
    K outputs (paper, figure 7): near log K the outputs collapsed to the
    uniform distribution (centering without enough sharpening), near 0 one
    dimension dominates (sharpening without enough centering). It only reads
    the logs, so it works under every backend (it moves no weights).

    Args:
        uniform_fraction: collapse to uniform when `entropy ≥ uniform_fraction
            · log K`.
        one_hot_fraction: collapse to one-hot when `entropy ≤ one_hot_fraction
            · log K`.
        patience: consecutive collapsed epochs before warning/stopping.
        stop_training: stop `fit` when a collapse is detected.
        monitor: the logged entropy (default `"teacher_entropy"`).
        output_dim: K; read from `model.output_dim` when `None`.

    Attributes:
        collapses: list of `(epoch, kind, entropy)` detected so far, `kind`
            being `"uniform"` or `"one-hot"`.
    """

    def __init__(
        self,
        uniform_fraction=0.98,
        one_hot_fraction=0.02,
        patience=1,
        stop_training=False,
        monitor="teacher_entropy",
        output_dim=None,
    ):
        super().__init__()
        if not 0.0 <= one_hot_fraction < uniform_fraction <= 1.0:
            raise ValueError(
                "DINOCollapseMonitor needs 0 <= one_hot_fraction < "
                f"uniform_fraction <= 1; got {one_hot_fraction} and "
                f"{uniform_fraction}."
            )
        if int(patience) < 1:
            raise ValueError(f"`patience` must be >= 1, got {patience}.")
        self.uniform_fraction = float(uniform_fraction)
        self.one_hot_fraction = float(one_hot_fraction)
        self.patience = int(patience)
        self.stop_training = bool(stop_training)
        self.monitor = monitor
        self.output_dim = output_dim
        self.collapses = []
        self._streak = 0

    def collapse_kind(self, entropy, output_dim):
        """`"uniform"`, `"one-hot"` or `None` for an entropy over K outputs."""
        log_k = float(np.log(output_dim))
        if entropy >= self.uniform_fraction * log_k:
            return "uniform"
        if entropy <= self.one_hot_fraction * log_k:
            return "one-hot"
        return None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            return
        output_dim = self.output_dim or getattr(self.model, "output_dim", None)
        if not output_dim:
            raise ValueError(
                "DINOCollapseMonitor needs K: pass `output_dim` or use it with "
                "a model that has an `output_dim` attribute."
            )
        entropy = float(logs[self.monitor])
        kind = self.collapse_kind(entropy, output_dim)
        self._streak = self._streak + 1 if kind else 0
        if kind is None or self._streak < self.patience:
            return
        self.collapses.append((epoch, kind, entropy))
        warnings.warn(
            f"DINO collapse ({kind}) at epoch {epoch + 1}: teacher entropy "
            f"{entropy:.4f} nats vs log K = {np.log(output_dim):.4f}. "
            + (
                "Uniform outputs: sharpen more (lower teacher_temp) or "
                "lower center_momentum."
                if kind == "uniform"
                else "One dimension dominates: center more or raise "
                "teacher_temp."
            ),
            stacklevel=2,
        )
        if self.stop_training:
            self.model.stop_training = True


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` after exactly `total_steps` training steps in all, inside
    the last epoch when `total_steps` is not a multiple of `steps_per_epoch`.

    It counts from the optimizer's step at the start of `fit` (times the
    gradient accumulation), so a run resumed from a backup stops where an
    uninterrupted one does: put it after a `ResumableBackup`, which restores
    that step first.

    Example:

    ```python
    # 250 steps of 100-step epochs: 3 epochs, the last one cut at step 50.
    model.fit(data, epochs=3, steps_per_epoch=100,
              callbacks=[StopAtStep(250)])
    ```
    """

    def __init__(self, total_steps):
        super().__init__()
        if int(total_steps) < 1:
            raise ValueError(f"StopAtStep needs total_steps >= 1, got {total_steps}")
        self.total_steps = int(total_steps)
        self._done = 0

    def on_train_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        self._done = 0
        if optimizer is not None and optimizer.built:
            accumulation = optimizer.gradient_accumulation_steps or 1
            self._done = int(keras.ops.convert_to_numpy(optimizer.iterations)) * int(
                accumulation)

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        if self._done >= self.total_steps:
            self.model.stop_training = True


def fit_schedule(total_steps, steps_per_epoch):
    """`(epochs, steps_per_epoch, callbacks)` for `fit` to run exactly
    `total_steps` optimizer steps in epochs of at most `steps_per_epoch`."""
    total_steps, steps_per_epoch = int(total_steps), int(steps_per_epoch)
    per_epoch = min(total_steps, steps_per_epoch)
    epochs = -(-total_steps // per_epoch)
    extra = [] if total_steps % per_epoch == 0 else [
        StopAtStep(total_steps)]
    return epochs, per_epoch, extra


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the epoch where `seconds` ran out."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        import time

        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import time

        if time.perf_counter() - self._start > self.seconds:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True
