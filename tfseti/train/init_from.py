"""``train.init_from``: start a fold from another run's weights (a teacher, a pre-trained model).

What ``train.init_from`` may name:

* a run folder (holding ``fold<K>/``): the weights of the fold being trained, ``fold<K>/model.keras``
  (the teacher of a noisy-student round validates on the same fold, so none of its weights
  saw that fold's labels);
* a fold folder (holding ``model.keras``), or a ``.keras`` file: loaded in safe mode and matched
  to the new network layer by layer, by name (nested models such as the backbone, layer by
  layer inside), weight shapes compared;
* a ``.weights.h5`` file: weights of the *same* architecture (Keras loads them into a copy of the
  new network, refusing a mismatch), then copied as above.

``train.init_scope``: ``all`` (every matching layer) or ``backbone`` (only the layers inside the
backbone: a new head, pooling or stem-free input layer start fresh). A layer left out (absent from
the source, other shapes, or outside the scope) keeps its fresh initialisation; what was loaded
and what was not is printed and written to the fold's ``init.json``. A source from which nothing
fits is an error. A fold resumed from its backup does not load again (the backup has the state).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

import keras

from tfseti.command import Refusal
from tfseti.io import fs as fsutil

BACKBONE_LAYER = "backbone"
MODEL_FILE = "model.keras"
INIT_FILE = "init.json"
SHOWN = 6


class InitFromError(ValueError, Refusal):
    """``train.init_from`` names nothing usable; the message says what was expected."""


@dataclass
class InitReport:
    source: str
    scope: str
    loaded: list[str] = field(default_factory=list)           # layer paths
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (layer path, why)
    tensors: int = 0

    def summary(self) -> str:
        text = (f"init_from {self.source} (scope {self.scope}): loaded {self.tensors} weight "
                f"tensors of {len(self.loaded)} layers")
        if self.skipped:
            shown = "; ".join(f"{name} ({why})" for name, why in self.skipped[:SHOWN])
            more = len(self.skipped) - SHOWN
            text += (f"; not loaded, left as initialised: {shown}"
                     + (f"; and {more} more (listed in {INIT_FILE})" if more > 0 else ""))
        return text

    def to_dict(self) -> dict:
        return {"source": self.source, "scope": self.scope, "tensors": self.tensors,
                "loaded": self.loaded, "not_loaded": [{"layer": n, "why": w}
                                                      for n, w in self.skipped]}


def resolve_source(init_from: str, fold: int) -> str:
    """The file ``init_from`` names for ``fold``: ``RUN/fold<K>/model.keras``,
    ``FOLD/model.keras``, or the ``.keras`` / ``.weights.h5`` file itself."""
    fs, inner = fsutil.url_to_fs(init_from.rstrip("/"))
    if init_from.endswith((".keras", ".weights.h5")):
        if not fs.isfile(inner):
            raise InitFromError(f"train.init_from: {init_from}: no such file")
        return init_from
    if not fs.isdir(inner):
        raise InitFromError(f"train.init_from: {init_from}: expected a run folder, a fold folder, "
                            f"a .keras or a .weights.h5 file; there is no such file or folder")
    for candidate in (f"fold{fold}/{MODEL_FILE}", MODEL_FILE):
        if fs.isfile(f"{inner}/{candidate}"):
            return fsutil.join(init_from.rstrip("/"), *candidate.split("/"))
    folds = sorted(name for name in (p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(inner))
                   if name.startswith("fold"))
    raise InitFromError(f"train.init_from: {init_from} holds neither fold{fold}/{MODEL_FILE} (a "
                        f"finished fold {fold} of a run) nor {MODEL_FILE}"
                        + (f"; it has {folds}" if folds else ""))


def _local(path: str) -> tuple[str, str | None]:
    """A local copy of ``path`` when it is a URL: ``(local path, temporary folder or None)``."""
    if not fsutil.is_url(path):
        return path, None
    folder = tempfile.mkdtemp(prefix="tfseti-init-")
    local = os.path.join(folder, path.rstrip("/").rsplit("/", 1)[-1])
    fs, inner = fsutil.url_to_fs(path)
    fs.get(inner, local)
    return local, folder


def load_source(path: str, like: keras.Model, build_like) -> keras.Model:
    """The network holding the weights of ``path``; ``build_like()`` builds a fresh copy of the
    new network (for a ``.weights.h5`` file)."""
    from tfseti.models import load_network

    local, temporary = _local(path)
    try:
        if path.endswith(".weights.h5"):
            source = build_like()
            try:
                source.load_weights(local)
            except (ValueError, KeyError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise InitFromError(
                    f"train.init_from: {path} does not fit the network {like.name!r} ({first}); a "
                    f".weights.h5 file must come from the same architecture; a fold folder or a "
                    f".keras file is matched layer by layer") from None
            return source
        try:
            return load_network(local)
        except (ValueError, TypeError, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InitFromError(f"train.init_from: {path}: cannot load the model ({first})") from None
    finally:
        if temporary:
            import shutil

            shutil.rmtree(temporary, ignore_errors=True)


def _layers(model: keras.Model) -> dict:
    return {layer.name: layer for layer in model.layers}


def transfer(source: keras.Model, target: keras.Model, scope: str, report: InitReport,
             prefix: str = "", inside_backbone: bool = False) -> None:
    """Copy the weights of ``source``'s layers into ``target``'s layers of the same name and
    shapes (recursing into nested models), recording what was and was not copied."""
    available = _layers(source)
    for layer in target.layers:
        if not layer.weights:
            continue
        path = f"{prefix}{layer.name}"
        in_scope = scope == "all" or inside_backbone or layer.name == BACKBONE_LAYER
        if not in_scope:
            report.skipped.append((path, "outside init_scope 'backbone'"))
            continue
        other = available.get(layer.name)
        if other is None:
            report.skipped.append((path, "not in the source"))
            continue
        if isinstance(layer, keras.Model) and isinstance(other, keras.Model):
            transfer(other, layer, scope, report, prefix=f"{path}/",
                     inside_backbone=inside_backbone or layer.name == BACKBONE_LAYER)
            continue
        mine = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(w.shape) for w in other.weights]
        if mine != theirs:
            report.skipped.append((path, f"shapes {mine} here, {theirs} in the source"))
            continue
        layer.set_weights(other.get_weights())
        report.loaded.append(path)
        report.tensors += len(mine)


def initialise(net: keras.Model, init_from: str, scope: str, fold: int, build_like,
               out_dir: str | None = None) -> InitReport:
    """Load ``init_from``'s matching weights into ``net`` (see the module docstring); writes
    ``init.json`` into ``out_dir`` and returns the report."""
    path = resolve_source(init_from, fold)
    source = load_source(path, net, build_like)
    report = InitReport(source=path, scope=scope)
    transfer(source, net, scope, report)
    if not report.loaded:
        reasons = "; ".join(f"{n} ({w})" for n, w in report.skipped[:SHOWN])
        raise InitFromError(f"train.init_from: nothing in {path} fits the network "
                            f"(scope {scope}): {reasons}")
    if out_dir is not None:
        with open(os.path.join(out_dir, INIT_FILE), "w") as handle:
            json.dump(report.to_dict(), handle, indent=2)
    return report
