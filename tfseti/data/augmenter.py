"""The ``Augmenter``: view, needle injection, augmentation and mixup as one batched function.

``Augmenter(view, augment, mixup)`` composes, from the recipe's sections: needle injection
(``tfseti.data.inject``; it also sets the injected targets to 1) and ``shuffle_off_panels`` on the
raw cadences, the view (``tfseti.data.views``), the image ops (``tfseti.data.augment_ops``,
fused), then mixup/cutmix (``tfseti.data.mixup``).

Where augmentation runs is the config switch ``AugmentConfig.augment_on``:

* ``"device"``: the host pipeline yields raw cadences; the trainer calls ``augmenter(batch, step)``
  (``augment_and_mix``) inside its compiled ``train_step``, so the work runs on the TPU/GPU;
* ``"host"``: ``augment_on_host(dataset, augmenter)`` maps the same function (XLA-compiled on the
  host CPU) over the tf.data batches (the batch index is the step), and the dataset yields
  finished images.

The same seed and step give the same batch in both places (integer-based RNG, see ``rng``).
Under a multi-replica strategy each replica folds its replica id into the seed, so replicas draw
different augmentations (host mode has no replica context: the batch index alone seeds it).
"""

from __future__ import annotations

import tensorflow as tf

from tfseti.data import rng
from tfseti.data.augment_ops import NUM_OP_SEEDS, OP_IDS, augment_images, shuffle_off_panels
from tfseti.data.config import AugmentConfig, MixupConfig, ViewConfig
from tfseti.data.inject import inject_needles
from tfseti.data.mixup import mix
from tfseti.data.views import make_view, view_shape


def _replica_fold(seed: tf.Tensor) -> tf.Tensor:
    # Under a multi-replica strategy every replica sees the same step: fold in the replica id so
    # that replicas draw different augmentations for their different samples.
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return seed
    return rng.op_seed(seed, 1000 + tf.cast(context.replica_id_in_sync_group, tf.int64))


class Augmenter:
    """View + augmentations + mixup/cutmix as one batched function, composed from config.

    ``augmenter(batch, step)`` takes a pipeline batch ``{"cadence": (B, P, T, F), "target": (B,),
    ...}`` and returns ``{"image": (B, H, W, C) float32, "target": (B,) float32, ...}``; other keys
    (``id``, ``index``, ``mask``) pass through. Inside an XLA-compiled step the batch must hold no
    string tensors: drop ``id`` before the step (``DataConfig(with_ids=False)`` or ``pop("id")``). ``training=False`` gives the view only (evaluation,
    prediction). ``step`` is the global step (e.g. ``optimizer.iterations``): it seeds the draws
    and drives the mixup schedule, so pass ``total_steps`` when ``MixupConfig.off_after < 1``.
    """

    def __init__(self, view: ViewConfig = ViewConfig(), augment: AugmentConfig = AugmentConfig(),
                 mixup: MixupConfig = MixupConfig(), total_steps: int | None = None):
        if mixup.off_after < 1.0 and mixup.active and not total_steps:
            raise ValueError("Augmenter: MixupConfig.off_after < 1 needs total_steps (the number "
                             "of training steps) to know when to switch mixing off")
        self.view = view
        self.augment = augment
        self.mixup = mixup
        self.total_steps = total_steps

    @property
    def on_host(self) -> bool:
        """True when augmentation belongs in the tf.data pipeline rather than the train step."""
        return self.augment.augment_on == "host"

    def image_shape(self, panels: int = 6) -> tuple[int, int, int]:
        """Static ``(H, W, C)`` of the images this augmenter produces."""
        return view_shape(self.view, panels)

    def __call__(self, batch: dict, step=0, training: bool = True, with_info: bool = False):
        cadence = batch["cadence"]
        out = {k: v for k, v in batch.items() if k != "cadence"}
        out["target"] = tf.cast(batch["target"], tf.float32)
        if not training:
            out["image"] = make_view(cadence, self.view)
            return (out, {}) if with_info else out
        seed = _replica_fold(rng.step_seed(self.augment.seed, step))
        seeds = rng.split(seed, NUM_OP_SEEDS)
        info = {}
        if self.augment.inject.active:   # first: it makes the cadence the data would have been
            cadence, out["target"], info["inject"] = inject_needles(
                cadence, out["target"], seeds[OP_IDS["inject"]], self.augment.inject)
        if self.augment.off_shuffle_p > 0:
            cadence, info["off_shuffle"] = shuffle_off_panels(
                cadence, seeds[OP_IDS["off_shuffle"]], self.augment.off_shuffle_p)
        images = make_view(cadence, self.view)
        images, image_info = augment_images(images, seeds[0], self.augment)
        info.update(image_info)
        if self.mixup.active:
            images, out["target"], info["mix"] = mix(
                images, out["target"], seeds[OP_IDS["mix"]], self.mixup,
                step=step, total_steps=self.total_steps)
        out["image"] = images
        return (out, info) if with_info else out


def augment_and_mix(batch: dict, step, augmenter: Augmenter) -> dict:
    """The trainer's one call inside ``train_step`` (device mode): ``augmenter(batch, step)``."""
    return augmenter(batch, step)


def augment_on_host(dataset: tf.data.Dataset, augmenter: Augmenter, initial_step: int = 0,
                    jit_compile: bool = True) -> tf.data.Dataset:
    """Host mode: map ``augmenter`` over the batches of ``dataset``; batch k gets step
    ``initial_step + k`` (pass the resumed step so a resumed run draws the same augmentations).

    With ``jit_compile`` the numeric part runs XLA-compiled on the host CPU (about twice as fast
    as TF's graph kernels here); string tensors (``id``) bypass it.
    """
    def numeric(batch, step):
        return augmenter(batch, step)

    compiled = tf.function(numeric, jit_compile=True, autograph=False) if jit_compile else numeric

    def apply(step, batch):
        strings = {k: v for k, v in batch.items() if v.dtype == tf.string}
        out = compiled({k: v for k, v in batch.items() if k not in strings}, step)
        return {**out, **strings}

    return (dataset.enumerate(start=initial_step)
            .map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
