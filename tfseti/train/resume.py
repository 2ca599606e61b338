"""Preemption backups: periodic ``tf.train.Checkpoint`` of the training state, and the resume.

Why not ``keras.callbacks.BackupAndRestore`` (Keras 3.15): it saves the weights and the epoch
number but restores only the epoch — a backup taken mid-epoch restarts that epoch from its first
batch, on weights that already saw part of it, so the run does not end where an uninterrupted one
would. Here a backup holds:

* ``ckpt-<step>``: the network's variables (BatchNorm statistics and the random layers' seed
  states included) and the optimizer's
  (iteration count, moments, EMA copies, loss scale), via ``tf.train.CheckpointManager`` (the
  ``checkpoint`` index file is replaced only once a save is complete, so a SIGKILL mid-save
  leaves the previous backup usable; local paths or any URL ``tf.io.gfile`` writes);
* ``state-<step>.json``: the global step, the training phase (head warm-up or main) and the
  epoch logs so far (for ``result.json``, the best-checkpoint threshold and early stopping).

The trainer continues at global step N: the augmentation seed and the learning rate follow the
restored ``optimizer.iterations``, a deterministic pipeline (``data.deterministic``) skips the N
batches already consumed, and a mid-epoch resume runs the rest of that epoch as a shorter
``fit`` before the remaining whole epochs.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from tfseti.io.atomic import dumps_json, finite_or_none, write_text
from tfseti.train.callbacks import NonFiniteTrainingError, non_finite_weights

STATE_PREFIX = "state-"


def _state_path(backup_dir: str, step: int) -> str:
    return tf.io.gfile.join(backup_dir, f"{STATE_PREFIX}{step}.json")


class Backup:
    """The backups of one fold's run in ``backup_dir`` (two kept)."""

    def __init__(self, backup_dir: str, run_meta: dict | None = None, after_save=None):
        self.backup_dir = backup_dir
        self.run_meta = run_meta or {}  # what must match for a resume (config, steps per epoch)
        self.after_save = after_save  # called once a backup is complete (e.g. upload it)

    def latest_state(self) -> dict | None:
        """``{"step", "phase", "history"}`` of the newest complete backup, or None."""
        path = tf.train.latest_checkpoint(self.backup_dir) if tf.io.gfile.isdir(self.backup_dir) else None
        if path is None:
            return None
        step = int(path.rsplit("-", 1)[-1])
        state_path = _state_path(self.backup_dir, step)
        if not tf.io.gfile.exists(state_path):
            raise FileNotFoundError(f"{state_path}: missing next to its checkpoint {path}; "
                                    f"remove {self.backup_dir} to start over")
        with tf.io.gfile.GFile(state_path) as handle:
            state = json.load(handle)
        state["history"] = {key: [float("nan") if v is None else v for v in values]
                            for key, values in state.get("history", {}).items()}
        state["checkpoint"] = path
        changed = sorted(k for k in set(self.run_meta) | set(state.get("run", {}))
                         if self.run_meta.get(k) != state.get("run", {}).get(k))
        if changed:
            raise ValueError(f"{self.backup_dir}: the backup was written by a run with other "
                             f"{', '.join(changed)}; rerun the same command, or remove the folder "
                             "to start over")
        return state

    def _checkpoint(self, model, with_optimizer: bool = True) -> tf.train.Checkpoint:
        # Keras's random layers (dropout, stochastic depth) keep their SeedGenerator state in
        # variables the TF object graph does not reach: listed explicitly, in layer order (their
        # auto-generated names depend on what else the process built).
        seed_states = [generator.state for layer in model.net._flatten_layers()
                       for generator in layer._seed_generators]
        parts = {"net": model.net, "seed_states": seed_states}
        if with_optimizer:
            parts["optimizer"] = model.optimizer
        return tf.train.Checkpoint(**parts)

    def save(self, model, step: int, phase: int, history: dict) -> None:
        tf.io.gfile.makedirs(self.backup_dir)
        # The state first: a checkpoint is only listed once complete, so a listed checkpoint
        # always has its state file.
        # Strict JSON: an undefined epoch AUC (one-class fold) is null (NaN again on resume).
        text = dumps_json(finite_or_none({"step": step, "phase": phase, "history": history,
                                          "run": self.run_meta}), shown=self.backup_dir, indent=None)
        with tf.io.gfile.GFile(_state_path(self.backup_dir, step), "w") as handle:
            handle.write(text)
        manager = tf.train.CheckpointManager(self._checkpoint(model), self.backup_dir,
                                             max_to_keep=2)
        manager.save(checkpoint_number=step)
        kept = {int(p.rsplit("-", 1)[-1]) for p in manager.checkpoints}
        for name in tf.io.gfile.listdir(self.backup_dir):
            if name.startswith(STATE_PREFIX):
                number = int(name[len(STATE_PREFIX):].split(".")[0])
                if number not in kept:
                    tf.io.gfile.remove(tf.io.gfile.join(self.backup_dir, name))
        if self.after_save is not None:
            self.after_save()

    def restore(self, model, state: dict, with_optimizer: bool = True) -> None:
        """Load a backup into ``model`` compiled for ``state["phase"]`` (in the strategy scope);
        ``with_optimizer=False``: the network only (the backup's phase had another optimizer)."""
        if not with_optimizer:
            self._checkpoint(model, with_optimizer=False).restore(state["checkpoint"]).expect_partial()
            return
        model.optimizer.build(model.trainable_variables)  # slots must exist to be restored
        status = self._checkpoint(model).restore(state["checkpoint"])
        status.assert_existing_objects_matched()

    def remove(self) -> None:
        if tf.io.gfile.isdir(self.backup_dir):
            tf.io.gfile.rmtree(self.backup_dir)


def global_step(model) -> int:
    return int(model.optimizer.iterations.numpy()) + int(model.step_offset)


class BackupCallback(keras.callbacks.Callback):
    """Saves a backup once ``every_steps`` global steps have passed since the last one, and at
    each epoch start.

    Put it last: at epoch start the EMA weights are swapped out again and the previous epoch's
    logs (``val_auc``) are complete. The last batch of an epoch is never backed up (its
    validation has not run yet); the next epoch start covers it.
    """

    def __init__(self, backup: Backup, every_steps: int, phase: int, history: dict,
                 steps_in_first_epoch: int, steps_per_epoch: int):
        super().__init__()
        self.backup = backup
        self.every_steps = every_steps
        self.phase = phase
        self.history = history  # shared with EpochLogs, which comes just before
        self.steps_in_first_epoch = steps_in_first_epoch
        self.steps_per_epoch = steps_per_epoch
        self._first_epoch = None
        self._last_saved = None
        self._epochs_ended = 0

    def _save(self):
        step = global_step(self.model)
        if step != self._last_saved:
            average = getattr(self.model, "average_moving_statistics", None)
            if average is not None:  # the saved replica's BatchNorm statistics are everyone's
                average()
            bad = non_finite_weights(self.model)
            if bad:  # keep the last good backup: a NaN state would only resume into NaN
                epoch, batch = divmod(step - 1, self.steps_per_epoch)
                raise NonFiniteTrainingError(
                    f"the weights became non-finite ({bad[0]}) at epoch {epoch + 1}, step "
                    f"{batch + 1}; that state was not backed up")
            self.backup.save(self.model, step, self.phase, self.history)
            self._last_saved = step

    def on_train_begin(self, logs=None):
        self._last_saved = global_step(self.model)  # the state this fit started from

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch
        else:
            self._save()

    def on_train_batch_end(self, batch, logs=None):
        steps = self.steps_in_first_epoch if self._epochs_ended == 0 else self.steps_per_epoch
        if batch + 1 >= steps:
            return
        if global_step(self.model) - self._last_saved >= self.every_steps:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_ended += 1


class EpochLogs(keras.callbacks.Callback):
    """Appends each epoch's logs to ``history`` (one dict across fits, phases and resumes)."""

    def __init__(self, history: dict):
        super().__init__()
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class KeepTrainingWeights(keras.callbacks.Callback):
    """For a ``fit`` that stops mid-run (the rest of a resumed epoch): keeps the training
    weights that Keras's end of ``fit`` overwrites with the EMA (``finalize_variable_values``).
    Put it before ``SwapEMAWeights``; call :meth:`put_back` after ``fit``."""

    def __init__(self):
        super().__init__()
        self.values = None

    def on_epoch_end(self, epoch, logs=None):
        self.values = [v.numpy() for v in self.model.trainable_variables]

    def put_back(self):
        if self.values is not None:
            for variable, value in zip(self.model.trainable_variables, self.values):
                variable.assign(value)


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` that replays the epoch logs of earlier fits, so its patience counts
    epochs across a resume (or the split of a resumed epoch) as in one uninterrupted ``fit``."""

    def __init__(self, past_logs: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.past_logs = past_logs

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for epoch, epoch_logs in enumerate(self.past_logs):
            super().on_epoch_end(epoch, dict(epoch_logs))
        self.model.stop_training = False


def history_rows(history: dict) -> list[dict]:
    """``{key: [per epoch]}`` -> one dict of logs per epoch."""
    epochs = max((len(v) for v in history.values()), default=0)
    return [{k: v[i] for k, v in history.items() if i < len(v)} for i in range(epochs)]


def truncate_csv_log(path: str, epochs: int) -> None:
    """Drop the rows of epochs >= ``epochs`` from a CSVLogger file (the killed run may have
    logged epochs after its last backup; the resumed run logs them again)."""
    if not os.path.exists(path):
        return
    with open(path) as handle:
        lines = handle.readlines()
    keep = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < epochs]
    write_text(path, "".join(keep))  # a kill now leaves the old log, not a cut one
