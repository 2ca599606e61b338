"""One run folder, one recipe: the folds of ``runs/<name>/`` must have been trained alike.

Each fold folder records what trained it:

* ``fold<K>/config.json``: the resolved config (written by the trainer when the fold starts, so
  an interrupted fold has it too);
* ``fold<K>/data.json``: which shards it was trained on, as a digest of the shard folder's
  ``manifest.json`` entries (name, records, bytes, CRC32C of every shard, and the cadence shape).

Before anything is trained, :func:`check_run_folder` compares every ``fold<K>/`` already in the
output folder with the run about to start. A difference refuses the run, naming each differing
key (dotted, both values); with ``--overwrite`` the differing fold folders are removed first,
together with the run-level outputs computed from them (``cv.json``, ``oof.csv``,
``calibration.json``, ``report/``).
The same config finds nothing to refuse: an interrupted fold resumes from its backup, a finished
one is skipped (``--fold all`` with backups) or trained anew, exactly as before.

Keys that do not count (:data:`IGNORED_KEYS`), because they may legitimately differ between the
folds of one run without changing what a fold learns:

* ``train.fold``: the fold index, different in every fold by definition;
* ``name``: the recipe's label (it names the default ``--out``); every setting is compared
  anyway, so a renamed copy of the same recipe is the same recipe;
* ``data.data``: *where* the shards are, not *which* shards: the same shards read from
  ``gs://`` on one machine and from a local copy on another make one run. Which shards they are
  is compared instead, as the pseudo-key ``data.shards`` (the manifest digest in ``data.json``;
  a fold folder without ``data.json``, written before it existed, is compared by ``data.data``);
  ``data.extra`` likewise: the extra folders' manifests count into that digest;
* ``data.with_ids``: the trainer never feeds ids to the model (it reads them on the host for
  ``oof.csv``); TPUs need it off, other devices may keep it on;
* ``train.backup_every_steps``: how often the training state is backed up; resuming is exact
  whatever the interval, so it may change between attempts;
* ``train.calibrate``: which TTA modes get a calibrator after training; it changes no fold.

Everything else counts, including ``data.batch_size`` (the global batch: ``batch_per_replica``
x replicas, so the same recipe on a different number of replicas is a different run) and the
precision, the dtype fed to the device and the compile settings (other numerics).

The resume check inside a fold's backup (:mod:`tfseti.train.resume`) compares the same
:func:`recipe` of the config, so both checks agree on what "the same config" is.

No TensorFlow import here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any

from tfseti.config import ConfigError
from tfseti.io.run_files import FOLD_DIR

CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
SHARDS_KEY = "data.shards"  # pseudo-key: the identity of the shards a fold was trained on
IGNORED_KEYS = ("name", "data.data", "data.extra", "data.with_ids", "train.fold",
                "train.backup_every_steps", "train.calibrate")
# Run-level outputs computed from the folds: stale once a fold is replaced.
RUN_OUTPUTS = ("cv.json", "oof.csv", "calibration.json", "report")
_ABSENT = object()


class RunFolderConflict(ConfigError):
    """The output folder holds folds trained with another config (or other shards)."""


def remove_present(directory: str, names) -> list[str]:
    """Remove each of ``names`` (file or folder) that exists in ``directory``; the names removed."""
    removed = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed.append(name)
    return removed


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 2}}`` -> ``{"train.epochs": 2}`` (lists are values)."""
    out = {}
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def recipe(config: dict) -> dict[str, Any]:
    """The flattened config without :data:`IGNORED_KEYS`: what must match between folds."""
    return {k: v for k, v in flatten(config).items() if k not in IGNORED_KEYS}


def _show(value) -> str:
    if value is _ABSENT:
        return "(absent)"
    return json.dumps(value)  # TOML-like literals: 0.002, [32, 32], "on", true, null


def differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` of every recipe key that differs (a key only on
    one side shows as absent on the other)."""
    before, after = recipe(old), recipe(new)
    return [(key, before.get(key, _ABSENT), after.get(key, _ABSENT))
            for key in sorted(set(before) | set(after))
            if before.get(key, _ABSENT) != after.get(key, _ABSENT)]


def shards_record(data: str, manifest: dict, extra_manifests=()) -> dict:
    """What ``data.json`` holds: where the shards were read and which they are (a digest of the
    manifest's shard entries and cadence shape, and a readable summary); the manifests of
    ``data.extra`` folders count into the digest and the summary."""
    digest = hashlib.sha256(json.dumps(manifest.get("cadence_shape")).encode())
    counts = []
    for document in (manifest, *extra_manifests):
        entries = sorted(document.get("shards") or [], key=lambda e: str(e.get("name")))
        for entry in entries:
            digest.update(json.dumps([entry.get(k) for k in ("name", "records", "bytes", "crc32c")])
                          .encode())
        counts.append((sum(int(e.get("records") or 0) for e in entries), len(entries)))
    (records, shards), extra = counts[0], counts[1:]
    summary = f"{records} records in {shards} shards"
    if extra:
        summary += (f" + {sum(r for r, _ in extra)} extra records in {sum(n for _, n in extra)} "
                    f"shards")
    return {"data": data, "shards": f"{summary}, digest {digest.hexdigest()[:16]}"}


def write_shards_record(fold_dir: str, record: dict) -> None:
    os.makedirs(fold_dir, exist_ok=True)
    with open(os.path.join(fold_dir, DATA_FILE), "w") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")


def fold_finished(fold_dir: str) -> bool:
    """The fold completed: its results written and its backup removed (the trainer removes the
    backup last, so a fold killed at any point before is not finished)."""
    return (all(os.path.exists(os.path.join(fold_dir, name)) for name in ("result.json", "oof.csv"))
            and not os.path.exists(os.path.join(fold_dir, "backup")))


def fold_dirs(out_dir: str) -> list[tuple[int, str]]:
    """``(fold, path)`` of every non-empty ``fold<K>/`` folder in ``out_dir``, by fold."""
    if not os.path.isdir(out_dir):
        return []
    found = []
    for name in os.listdir(out_dir):
        match = FOLD_DIR.match(name)
        path = os.path.join(out_dir, name)
        if match and os.path.isdir(path) and os.listdir(path):
            found.append((int(match[1]), path))
    return sorted(found)


def _normal_location(path: str) -> str:
    path = str(path or "").rstrip("/")
    return path if "://" in path or not path else os.path.abspath(path)


def fold_differences(fold_dir: str, config: dict, shards: dict | None) -> list[str]:
    """How the fold in ``fold_dir`` differs from a fold trained with ``config`` on ``shards``
    (a :func:`shards_record`): one ``"key: OLD there, NEW now"`` line per difference."""
    config_path = os.path.join(fold_dir, CONFIG_FILE)
    if not os.path.exists(config_path):
        return [f"no {CONFIG_FILE}: the config that trained it is unknown"]
    try:
        with open(config_path) as handle:
            old = json.load(handle)
    except (OSError, ValueError) as err:
        return [f"{CONFIG_FILE} unreadable ({err})"]
    lines = [f"{key}: {_show(before)} there, {_show(after)} now"
             for key, before, after in differences(old, config)]
    data_path = os.path.join(fold_dir, DATA_FILE)
    if shards is not None and os.path.exists(data_path):
        try:
            with open(data_path) as handle:
                old_shards = json.load(handle)
        except (OSError, ValueError):
            old_shards = {}
        if old_shards.get("shards") != shards["shards"]:
            lines.append(f"{SHARDS_KEY}: {_show(old_shards.get('shards', _ABSENT))} (read from "
                         f"{old_shards.get('data')}) there, {_show(shards['shards'])} (from "
                         f"{shards['data']}) now")
    else:  # a fold trained before data.json existed: only the location can be compared
        before = (old.get("data") or {}).get("data", "")
        after = (config.get("data") or {}).get("data", "")
        if _normal_location(before) != _normal_location(after):
            lines.append(f"data.data: {_show(before)} there, {_show(after)} now")
    return lines


def check_run_folder(out_dir: str, config: dict, shards: dict | None = None,
                     overwrite: bool = False, log=print, shown: str | None = None) -> list[str]:
    """Refuse (:class:`RunFolderConflict`) when a ``fold<K>/`` of ``out_dir`` was trained with
    another recipe than ``config`` (the resolved config dict of the run about to start, any
    fold) or on other ``shards``; with ``overwrite`` remove those fold folders and the run-level
    outputs instead. ``shown``: the folder's name in messages (its URL when ``out_dir`` is a
    local staging copy). Returns the local paths removed."""
    shown = (shown or out_dir).rstrip("/")
    conflicts = {}
    for _, fold_dir in fold_dirs(out_dir):
        lines = fold_differences(fold_dir, config, shards)
        if lines:
            conflicts[fold_dir] = lines
    if not conflicts:
        return []
    names = [os.path.basename(d) for d in conflicts]
    if not overwrite:
        listed = "\n".join(f"  {os.path.basename(d)}: {line}"
                           for d, lines in conflicts.items() for line in lines)
        raise RunFolderConflict(
            "--out", f"{shown} holds {', '.join(names)} trained with another config; one run "
                     f"folder holds one recipe, so nothing was trained:\n{listed}\n"
                     f"  rerun with the values there (see {names[0]}/{CONFIG_FILE}), train into "
                     f"another --out, or add --overwrite to delete {', '.join(names)} and "
                     f"train anew")
    removed = []
    for fold_dir, lines in conflicts.items():
        shutil.rmtree(fold_dir)
        removed.append(fold_dir)
        keys = ", ".join(line.split(":", 1)[0] for line in lines)
        log(f"--overwrite: removed {shown}/{os.path.basename(fold_dir)} (trained with another "
            f"config: {keys})")
    for name in remove_present(out_dir, RUN_OUTPUTS):
        removed.append(os.path.join(out_dir, name))
        log(f"--overwrite: removed {shown}/{name} (computed from the removed folds)")
    return removed
