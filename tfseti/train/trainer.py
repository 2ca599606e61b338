"""The fit loop of one fold: model + augmentation + mixup-OR in one compiled train step.

:class:`CadenceClassifier` wraps the classifier network (``tfseti.models.create_model``) and the
pipeline's :class:`~tfseti.data.augmenter.Augmenter`. Its steps take the pipeline's batches as
they come (``{"cadence", "target", "mask", "id"}``, or ``"image"`` when augmentation ran on the
host) and hand Keras's own ``train_step`` / ``test_step`` the images and targets, so loss
scaling (mixed_float16), distribution and metrics stay Keras's. The augmentation seed is the
global step, so a resumed run draws the same augmentations.

:func:`fit_fold` builds everything inside ``strategy.scope()``, compiles with
``jit_compile=True`` explicitly (Keras's ``"auto"`` switches XLA off under any strategy) and
``steps_per_execution`` from the config, and trains with an exact whole-fold validation AUC,
the best checkpoint by that AUC, CSV and TensorBoard logs and optional early stopping.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from tfseti.console import keras_verbose
from tfseti.data.augmenter import Augmenter
from tfseti.data.views import view_shape
from tfseti.io import fs as fsutil
from tfseti.io.atomic import finite_or_none, write_json
from tfseti.models import create_model
from tfseti.models.heads import positive_logit
from tfseti import config as config_lib
from tfseti.train import resume as resume_lib
from tfseti.train import run_folder
from tfseti.train import strategy as strategy_lib
from tfseti.train.csv_log import AtomicCSVLogger
from tfseti.train.callbacks import (AverageMovingStatistics, NonFiniteTrainingError,
                                    StopAtNonFinite, ValidationAUC, non_finite_weights,
                                    predict_all)
from tfseti.train.export import export_saved_model
from tfseti.train.losses import make_loss
from tfseti.train.optim import make_optimizer
from tfseti.train.run_config import RunConfig
from tfseti.train.train_config import TrainConfig

BACKBONE_LAYER = "backbone"  # the nested backbone model of create_model (frozen for head warm-up)


class CadenceClassifier(keras.Model):
    """Pipeline batches in, logits out; ``call`` takes the (already viewed) images."""

    def __init__(self, net: keras.Model, augmenter: Augmenter, step_offset: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.augmenter = augmenter
        # Steps done by an earlier phase (head warm-up) with another optimizer: keeps the
        # augmentation seeds and the mixup schedule on the global step.
        self.step_offset = step_offset

    def call(self, images, training=False):
        return self.net(images, training=training)

    def compile(self, *args, jit_compile="auto", **kwargs):
        # Keras compiles the whole `strategy.run(...)` with XLA. A multi-device Mirrored /
        # MultiWorkerMirrored strategy cannot be one XLA cluster (its variables live on several
        # devices), so there each replica's forward + backward is compiled instead and the
        # cross-replica gradient all-reduce and update run outside XLA.
        self.jit_per_replica = bool(jit_compile is True
                                    and strategy_lib.mirrors_variables(tf.distribute.get_strategy()))
        if self.jit_per_replica:
            jit_compile = False
            self._forward_backward_xla = tf.function(self._forward_backward, jit_compile=True,
                                                     reduce_retracing=True)
        super().compile(*args, jit_compile=jit_compile, **kwargs)
        # Build the model and the compiled loss on one image batch now: left unbuilt, Keras
        # builds them symbolically from the first pipeline batch, a dict the network cannot take.
        images = tf.zeros((1, *self.net.input_shape[1:]))
        self.compute_loss(x=images, y=self._targets(tf.zeros((1,))), y_pred=self(images))

    def average_moving_statistics(self) -> None:
        """Give every replica the mean over all replicas of the BatchNorm moving statistics.

        Each replica updates its own copy from its own batches (Keras creates them without a
        cross-replica aggregation), so under Mirrored / MultiWorkerMirrored strategies the copies
        drift apart. Moving averages are linear in the batch statistics, so averaging the copies
        at any point gives exactly the moving average of the replica-mean statistics, and
        training itself (which normalises with batch statistics) is unaffected. Called before
        every validation, backup and save; a collective: every worker calls it at the same point.
        """
        strategy = self.distribute_strategy
        if strategy.num_replicas_in_sync == 1 or not strategy_lib.mirrors_variables(strategy):
            return
        variables = [v for layer in batchnorm_layers(self.net)
                     for v in (layer.moving_mean, layer.moving_variance)]
        if not variables:
            return

        def flat():
            return tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in variables], 0)

        mean = strategy.reduce("MEAN", strategy.run(flat), axis=None)
        offset = 0
        for v in variables:
            size = int(np.prod(v.shape))
            v.assign(tf.cast(tf.reshape(mean[offset:offset + size], v.shape), v.dtype))
            offset += size

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras would take the shapes from a first batch, reduced across replicas with
        # `strategy.reduce` — which MultiWorkerMirroredStrategy cannot do on a dict batch. The
        # network and the loss take images, not pipeline batches: build from an image batch.
        images = tf.zeros((1, *self.net.input_shape[1:]))
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=(images, self._targets(tf.zeros((1,)))))

    def _targets(self, target):
        # (B, 1) for a single-logit head (Keras BCE/focal compare shapes); the 2-class loss
        # takes the positive-class target in any shape.
        return tf.reshape(tf.cast(target, tf.float32), (-1, 1))

    def _images(self, batch: dict, training: bool):
        if "image" in batch:  # augmented on the host already (AugmentConfig.augment_on = "host")
            return batch["image"], batch["target"]
        step = 0
        if training:
            step = tf.cast(self.optimizer.iterations, tf.int64) + self.step_offset
        out = self.augmenter(batch, step=step, training=training)
        return out["image"], out["target"]

    def _reducible(self, logs: dict) -> dict:
        # Keras reduces the step's logs across workers with strategy.reduce("MEAN", v, axis=0),
        # which fails on the scalar logs of a MultiWorkerMirroredStrategy (tensorflow#72388):
        # one-element vectors reduce over that axis to the same cross-replica mean.
        if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return logs
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}

    def train_step(self, batch):
        if not getattr(self, "jit_per_replica", False):
            images, target = self._images(batch, training=True)
            return self._reducible(super().train_step((images, self._targets(target))))
        loss, gradients, images, target, logits = self._forward_backward_xla(batch)
        self.optimizer.apply(gradients, self.trainable_weights)
        # As Keras's own train_step: the tracker gets the per-replica loss unscaled.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self._loss_tracker.update_state(loss * tf.cast(replicas, loss.dtype),
                                        sample_weight=tf.shape(images)[0])
        return self._reducible(self.compute_metrics(images, target, logits))

    def _forward_backward(self, batch):
        """Augment, forward, loss and gradients of one replica's batch (XLA-compiled)."""
        images, target = self._images(batch, training=True)
        target = self._targets(target)
        with tf.GradientTape() as tape:
            logits = self(images, training=True)
            loss = self._compute_loss(x=images, y=target, y_pred=logits, training=True)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_weights)
        return loss, gradients, images, target, logits

    def test_step(self, batch):
        images, target = self._images(batch, training=False)
        mask = batch.get("mask")
        weight = None if mask is None else tf.cast(tf.reshape(mask, (-1,)), tf.float32)
        return self._reducible(super().test_step((images, self._targets(target), weight)))

    def predict_step(self, batch):
        images, target = self._images(batch, training=False)
        logits = self(images, training=False)
        mask = batch.get("mask")
        if mask is None:
            mask = tf.ones_like(target, tf.float32)
        outputs = {"score": positive_logit(logits), "target": tf.cast(target, tf.float32),
                   "mask": tf.cast(mask, tf.float32)}
        if "index" in batch:  # the record's position in the eval read order (maps back to ids)
            outputs["index"] = batch["index"]
        return outputs


def batchnorm_layers(net: keras.Model) -> list:
    """Every BatchNormalization layer of ``net``, those of nested models (the backbone) included."""
    return [layer for layer in net._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def configure_batchnorm(net: keras.Model, momentum: float | None = None,
                        synchronized: bool | None = None) -> int:
    """Set ``momentum`` and/or ``synchronized`` (None: leave as built) on every
    BatchNormalization layer, nested ones included; returns the count."""
    layers = batchnorm_layers(net)
    for layer in layers:
        if momentum is not None:
            layer.momentum = momentum
        if synchronized is not None:
            layer.synchronized = synchronized
    return len(layers)


def create_network(run: RunConfig, cadence_shape: tuple[int, int, int]) -> keras.Model:
    """``create_model`` for the images of ``run.view`` on cadences of ``(panels, time, freq)``;
    with ``view.resize_method = "learned"`` the images are full-resolution and the network's
    learned resizer outputs ``view.resize``."""
    return create_model(run.model.name, view_shape(run.view, *cadence_shape),
                        config=run.model.options, resizer_size=run.view.learned_resize)


def build_classifier(run: RunConfig, cadence_shape: tuple[int, int, int], augmenter: Augmenter,
                     step_offset: int = 0) -> CadenceClassifier:
    """The network of ``run`` for cadences of ``(panels, time, freq)`` around ``augmenter`` (the
    one the pipeline was built with; call inside ``strategy.scope()``)."""
    net = create_network(run, cadence_shape)
    strategy = tf.distribute.get_strategy()
    if (run.train.sync_batchnorm and run.train.jit_compile and strategy.num_replicas_in_sync > 1
            and strategy_lib.mirrors_variables(strategy)):
        # Their XLA step is compiled per replica, and a cross-replica sum cannot sit inside it.
        raise ValueError("train.sync_batchnorm needs train.jit_compile = false under the "
                         "mirrored and multiworker strategies (TPUs take both)")
    configure_batchnorm(net, run.train.bn_momentum, run.train.sync_batchnorm)
    return CadenceClassifier(net, augmenter, step_offset=step_offset, name="cadence_classifier")


def compile_classifier(model: CadenceClassifier, run: RunConfig, steps_per_epoch: int,
                       train=None) -> None:
    """Compile with the run's loss and optimizer (call inside ``strategy.scope()``)."""
    train = train or run.train
    model.compile(optimizer=make_optimizer(train, steps_per_epoch), loss=make_loss(train),
                  jit_compile=run.train.jit_compile,
                  steps_per_execution=run.train.steps_per_execution)


@dataclasses.dataclass
class FoldResult:
    best_val_auc: float
    history: dict
    out_dir: str
    model_path: str
    saved_model_path: str
    predictions: dict  # model.predict of the validation fold with the best weights


@dataclasses.dataclass(frozen=True)
class Phase:
    """One compiled stage of a fold's training: epochs ``[first_epoch, end_epoch)``."""

    index: int
    first_epoch: int
    end_epoch: int
    train: TrainConfig          # what the optimizer is compiled from
    backbone_trainable: bool
    ema: bool


def _phases(train: TrainConfig) -> list[Phase]:
    warmup = train.head_warmup_epochs
    if not warmup:
        return [Phase(0, 0, train.epochs, train, True, train.ema)]
    # 2nd place: train the new head alone first, backbone frozen, at a constant rate. Only the
    # nested "backbone" model freezes: the layers around it (a learned resizer, a pre-stem stack,
    # the pooling and head) start from scratch and train in the warm-up too.
    head = dataclasses.replace(train, schedule="constant", warmup_epochs=0.0, ema=False)
    rest = dataclasses.replace(train, epochs=train.epochs - warmup)
    return [Phase(0, 0, warmup, head, False, False),
            Phase(1, warmup, train.epochs, rest, True, train.ema)]


def _callbacks(run: RunConfig, val_dataset, out_dir: str, phase: Phase, history: dict,
               keep_training_weights=None, backup_callback=None, stop_at_non_finite=None):
    callbacks = [keep_training_weights] if keep_training_weights is not None else []
    if stop_at_non_finite is not None:
        # Before the checkpoint and the backup: a NaN step must stop the fit before either
        # can save it.
        callbacks.append(stop_at_non_finite)
    if phase.ema:
        # Swap the EMA weights in for validation and the checkpoint (must come first).
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    # A later fit keeps the earlier fits' best checkpoint unless it beats it.
    best_so_far = _best(history.get("val_auc", []))
    callbacks += [
        AverageMovingStatistics(),  # before validation and the checkpoints
        ValidationAUC(val_dataset),
        keras.callbacks.ModelCheckpoint(os.path.join(out_dir, "best.weights.h5"), monitor="val_auc",
                                        mode="max", save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=best_so_far),
        AtomicCSVLogger(os.path.join(out_dir, "log.csv"), append=bool(history)),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
    ]
    if run.train.early_stopping_patience is not None:
        callbacks.append(resume_lib.ResumedEarlyStopping(
            resume_lib.history_rows(history), monitor="val_auc", mode="max",
            patience=run.train.early_stopping_patience, start_from_epoch=phase.first_epoch))
    callbacks.append(resume_lib.EpochLogs(history))
    if backup_callback is not None:
        callbacks.append(backup_callback)  # last: sees the complete epoch logs
    return callbacks


def fit_fold(run: RunConfig, strategy: tf.distribute.Strategy, augmenter: Augmenter,
             train_dataset, val_dataset, steps_per_epoch: int, out_dir: str,
             cadence_shape: tuple[int, int, int] = (6, 273, 256), verbose="auto",
             after_backup=None) -> FoldResult:
    """Train one fold; writes ``config.json``, ``log.csv``, ``tensorboard/``, the best weights
    (``best.weights.h5``, by val AUC), the weights at the end of training
    (``final.weights.h5``), the best network as ``model.keras`` and as a serving SavedModel
    (``saved_model/``, cadences in, probabilities out) into ``out_dir``.

    ``augmenter`` is the one the datasets were built with (``Augmenter(run.view, run.augment,
    run.mixup, total_steps=train.epochs * steps_per_epoch)``): in device mode the train step
    calls it. ``train_dataset`` yields global batches (it may repeat); either a dataset, or a function
    ``initial_step -> dataset`` whose dataset starts at that global step (needed for an exact
    resume: ``data.deterministic``). ``val_dataset`` yields the whole validation fold once,
    padded batches marked by ``mask``.

    With ``train.backup_every_steps`` the training state is backed up into ``out_dir/backup``
    (see :mod:`tfseti.train.resume`); the same call after a kill continues from the newest
    backup, and the folder is removed once the fold is done. ``after_backup()`` runs after each
    backup is written (the CLI mirrors the run folder to its ``gs://`` home there). A fold that
    starts from scratch (no backup to resume from) first removes what an earlier attempt left in
    ``out_dir`` (:data:`FOLD_OUTPUTS`), so its logs, events and weights are this run's alone.

    A NaN/Inf loss, weight or validation score stops the fold at once with
    :class:`~tfseti.train.callbacks.NonFiniteTrainingError` naming the epoch and step: nothing
    is exported (the weights are checked again before ``model.keras`` / ``saved_model/``), and
    the backup keeps its last finite state (``BackupCallback`` refuses to save another).
    ``result.json`` is strict JSON: an undefined best AUC (one-class fold) is ``null``.

    ``verbose`` as Keras takes it, except that ``"auto"`` and ``1`` give one line per epoch
    (``2``) when stdout is not a terminal: no carriage returns and escape codes in logs.
    """
    if fsutil.is_url(out_dir):
        raise ValueError(f"fit_fold writes into a local folder, got {out_dir}; stage remote "
                         "outputs with tfseti.io.staging.StagedFolder (the CLI does)")
    os.makedirs(out_dir, exist_ok=True)
    train = run.train
    backup, state = None, None
    if train.backup_every_steps:
        # What must match for a resume: the same recipe as the run-folder check compares.
        backup = resume_lib.Backup(os.path.join(out_dir, "backup"), run_meta={
            "config": run_folder.recipe(config_lib.to_dict(run)),
            "steps_per_epoch": steps_per_epoch}, after_save=after_backup)
        state = backup.latest_state()
    if state is None:  # from scratch: no earlier attempt's events, weights or results mix in
        _remove_earlier_outputs(out_dir)
    config_lib.save_json(run, out_dir)
    policy = strategy_lib.set_precision(train.precision, strategy)
    keras.utils.set_random_seed(train.seed)
    dataset_at = train_dataset if callable(train_dataset) else (lambda step: train_dataset)

    history: dict = state["history"] if state else {}
    start_step = state["step"] if state else 0
    if state:
        epoch, batch = divmod(start_step, steps_per_epoch)
        print(f"resuming from step {start_step} (epoch {epoch + 1}, batch {batch} of "
              f"{steps_per_epoch}) from {backup.backup_dir}", flush=True)
        resume_lib.truncate_csv_log(os.path.join(out_dir, "log.csv"), epoch)

    with strategy.scope():
        model = build_classifier(run, cadence_shape, augmenter)
        if state is None and train.init_from:  # a resumed fold has its state in the backup
            from tfseti.train.init_from import initialise

            report = initialise(
                model.net, train.init_from, train.init_scope, train.fold,
                lambda: create_network(run, cadence_shape), out_dir=out_dir)
            print(report.summary(), flush=True)
    phases = _phases(train)

    def step_of(model) -> tuple[int, int]:  # the (epoch, batch) just trained, 1-based
        epoch, batch = divmod(resume_lib.global_step(model) - 1, steps_per_epoch)
        return epoch + 1, batch + 1

    for phase in phases:
        phase_end = phase.end_epoch * steps_per_epoch
        if start_step >= phase_end:
            continue  # done before the backup
        with strategy.scope():
            if len(phases) > 1:
                model.net.get_layer(BACKBONE_LAYER).trainable = phase.backbone_trainable
            # Steps of earlier phases (other optimizer): keeps augmentation on the global step.
            model.step_offset = phase.first_epoch * steps_per_epoch
            compile_classifier(model, run, steps_per_epoch, train=phase.train)
            if state is not None:
                backup.restore(model, state, with_optimizer=state["phase"] == phase.index)
                state = None
        step = max(start_step, phase.first_epoch * steps_per_epoch)
        while step < phase_end:
            epoch, batch = divmod(step, steps_per_epoch)
            # A resume mid-epoch: the rest of that epoch first, as a fit of its own.
            end_epoch = epoch + 1 if batch else phase.end_epoch
            steps = steps_per_epoch - batch
            keep = resume_lib.KeepTrainingWeights() if batch and phase.ema else None
            backup_callback = None if backup is None else resume_lib.BackupCallback(
                backup, train.backup_every_steps, phase.index, history,
                steps_in_first_epoch=steps, steps_per_epoch=steps_per_epoch)
            callbacks = _callbacks(run, val_dataset, out_dir, phase, history, keep,
                                   backup_callback, StopAtNonFinite(step_of))
            model.fit(dataset_at(step), epochs=end_epoch, initial_epoch=epoch, shuffle=False,
                      steps_per_epoch=steps, callbacks=callbacks, verbose=keras_verbose(verbose))
            if keep is not None and end_epoch < phase.end_epoch:
                keep.put_back()
            if model.stop_training:  # early stopping ends the phase
                break
            step = end_epoch * steps_per_epoch

    model.average_moving_statistics()
    model.net.save_weights(os.path.join(out_dir, "final.weights.h5"))
    best_path = os.path.join(out_dir, "best.weights.h5")
    if os.path.exists(best_path):
        model.load_weights(best_path)
    bad = non_finite_weights(model.net)
    if bad:  # never export a NaN model (the per-step checks should have stopped it earlier)
        raise NonFiniteTrainingError(f"the weights to export hold NaN/Inf ({bad[0]}"
                                     f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''})")
    model_path = os.path.join(out_dir, "model.keras")
    model.net.save(model_path)
    saved_model_path = export_saved_model(model.net, run.view, os.path.join(out_dir, "saved_model"),
                                          cadence_shape)
    # The best weights' predictions on the whole validation fold (out-of-fold predictions).
    predictions = predict_all(model, val_dataset)
    best = _best(history.get("val_auc", []))
    # Strict JSON: an undefined AUC (a one-class fold) is null, never a bare NaN.
    write_json(os.path.join(out_dir, "result.json"), finite_or_none(
        {"best_val_auc": best, "precision": policy, "replicas": strategy.num_replicas_in_sync,
         "history": history}))
    best = float("nan") if best is None else best
    if backup is not None:
        backup.remove()  # the fold is done: nothing left to resume
    return FoldResult(best_val_auc=best, history=history, out_dir=out_dir, model_path=model_path,
                      saved_model_path=saved_model_path, predictions=predictions)


# What fit_fold writes into a fold folder (config.json is rewritten at every start), and the
# flip-TTA out-of-fold cache tfseti.train.calibration keeps there (stale once the fold retrains).
FOLD_OUTPUTS = ("log.csv", "tensorboard", "best.weights.h5", "final.weights.h5", "model.keras",
                "saved_model", "result.json", "oof.csv", "backup", "init.json", "oof_flips.csv")


def _remove_earlier_outputs(out_dir: str) -> None:
    """Remove what an earlier attempt of this fold left (a finished fold retrained, a run
    killed before its first backup): TensorBoard would show both attempts as one, and a stale
    ``best.weights.h5`` could stand in for a run whose validation AUC is undefined."""
    from tfseti.train.run_folder import remove_present

    removed = remove_present(out_dir, FOLD_OUTPUTS)
    if removed:
        print(f"{out_dir}: training from scratch; removed what an earlier attempt left "
              f"({', '.join(removed)})", flush=True)


def _best(aucs) -> float | None:
    aucs = [a for a in aucs if not np.isnan(a)]
    return max(aucs) if aucs else None
