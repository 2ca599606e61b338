"""Typed run configs: TOML data files -> frozen dataclasses, validated before anything is built.

The loader is generic: any frozen dataclass (nested dataclasses, ``Literal``, ``Optional``,
tuples, lists, dicts of plain values) is filled from a plain dict. Every mistake is one
:class:`ConfigError` naming the dotted key path, what was expected and what was given:

* an unknown key (a typo) -> the path and, via :mod:`difflib`, the closest valid key;
* a wrong type -> the path, the expected type and the given type;
* a missing required key -> the path;
* a bad value or an impossible combination -> the ``ValueError`` raised by the dataclass's own
  ``__post_init__`` (or a run-level check), prefixed with the section's path.

The message starts with where the mistake is: the ``.toml`` file, or ``override KEY=VALUE
(command line)`` when the key came from the command line.

``key=value`` command-line overrides address any field by its dotted path; the value is parsed
as a TOML literal (``train.lr=3e-4``, ``view.panels="on"``, ``augment.vflip=true``); a value that
is not a TOML literal is taken as a bare string (``train.optimizer=sgd``).

Recipes: ``--config NAME`` is a recipe shipped inside the package (``tfseti/recipes/NAME.toml``,
package data: it works from an installed wheel); ``configs/NAME`` is accepted for the same
recipe. A path to a ``.toml`` file (``.toml`` optional) is read as it is.

A command's settings (``ScanSettings`` of ``python -m tfseti.scan``, the de-Doppler search's,
the snippet matcher's) use the same loader (:func:`load_settings`): ``--config FILE.toml`` holds
the settings as top-level keys, the command's flags given on the command line override the
file, and ``key=value`` arguments override single keys (a key set both by a flag and by an
override is refused).

One validation style for every section: a choice is a ``Literal`` field, checked by the loader for
files and overrides and by :func:`check_choices` (each section's ``__post_init__`` calls it) for
direct construction; ``__post_init__`` itself only checks ranges and cross-field rules.

This module imports no TensorFlow: configs are checked before any heavy import.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.resources
import json
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

T = typing.TypeVar("T")

# The recipes shipped with the package, and the folder a checkout used to keep them in (its
# spelling ``configs/NAME`` still names a shipped recipe).
RECIPES_PACKAGE = "tfseti.recipes"
LEGACY_RECIPE_FOLDER = "configs"
# Integers a config may hold: what TensorFlow / NumPy int64 take.
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1


class ConfigError(ValueError):
    """A config that cannot be used; the message names the source, the key path and the problem."""

    def __init__(self, key: str, problem: str, source: str | None = None):
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        # A dataclass's own check usually names the field already ("train.epochs must be ...").
        named = key and problem.startswith(key)
        super().__init__(f"{where}{problem}" if named else f"{where}{key or '<root>'}: {problem}")


# --------------------------------------------------------------------------------------------
# dict -> dataclass
# --------------------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (tuple, list, dict):
        args = typing.get_args(tp)
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]" if args else origin.__name__
    if dataclasses.is_dataclass(tp):
        return f"table ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _given(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _convert(value: Any, tp: Any, path: str) -> Any:
    """``value`` checked against (and converted to) the annotation ``tp``; raises ConfigError."""
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table ({tp.__name__}), got {_given(value)}")
        return from_dict(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        # bool is an int subclass: True must not match a Literal[1].
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        raise ConfigError(path, f"expected one of {_type_name(tp)}, got {_given(value)}"
                                f"{_did_you_mean(value, choices)}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(path, f"expected {_type_name(tp)}, got None")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1 and errors[0].key != path:
            raise errors[0]  # a problem inside the one non-None member (a nested table)
        raise ConfigError(path, f"expected {_type_name(tp)}, got {_given(value)}")
    if origin is tuple or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected {_type_name(tp)}, got {_given(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(path, f"expected {_type_name(tp)} ({len(args)} items), "
                                        f"got {len(value)} items {list(value)!r}")
            items = [_convert(v, a, _join(path, i)) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected {_type_name(tp)}, got {_given(value)}")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {_convert(k, key_tp, path): _convert(v, val_tp, _join(path, k))
                for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            # TOML ints have no size limit; TensorFlow, NumPy and Keras take int64 at most and
            # raise an OverflowError deep inside training otherwise.
            if not INT_MIN <= value <= INT_MAX:
                raise ConfigError(path, f"expected an integer that fits in 64 bits "
                                        f"(|value| < 2**63), got {value}")
            return value
    elif tp is float:
        # An integer literal is a fine float (lr = 1 or epochs-like values written without ".0").
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # nan/inf (TOML literals) would pass every range check (all comparisons with NaN
            # are false) and poison training; a huge int does not fit a float at all.
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(path, f"expected a finite number, got {value!r}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(path, f"expected {_type_name(tp)}, got {_given(value)}")


def from_dict(cls: type[T], data: dict, path: str = "", given: dict | None = None) -> T:
    """Build the dataclass ``cls`` from ``data``, checking every key and type (see module doc).

    ``given``: values of top-level fields taken as they are, over ``data``'s (a command's own
    flags, already typed by argparse: the dataclass's ``__post_init__`` still checks them, with
    its own messages, which the flags' users have always seen)."""
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a table ({cls.__name__}), got {_given(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    given = given or {}
    unknown = [name for name in given if name not in fields]
    if unknown:  # a programming error of the command, not the user's
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {_join(path, close[0])!r}?" if close else ""
            raise ConfigError(_join(path, key), f"unknown key in {cls.__name__}{hint} "
                                                f"(valid keys: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name in given:
            kwargs[name] = given[name]
        elif name in data:
            kwargs[name] = _convert(data[name], hints[name], key_path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(key_path, f"required key is missing ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if path and not err.key.startswith(path):
            raise ConfigError(_join(path, err.key), err.problem) from None
        raise
    except (ValueError, TypeError) as err:
        # The dataclass's own value validation (__post_init__): keep its message, add the path.
        raise ConfigError(path or cls.__name__, str(err)) from None


@functools.lru_cache(maxsize=None)
def _choice_fields(cls: type) -> tuple[tuple[str, tuple, bool], ...]:
    """``(field, choices, is_sequence)`` of every ``Literal`` (or ``tuple[Literal, ...]``) field."""
    out = []
    for name, tp in typing.get_type_hints(cls).items():
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is Literal:
            out.append((name, args, False))
        elif origin is tuple and args and typing.get_origin(args[0]) is Literal:
            out.append((name, typing.get_args(args[0]), True))
    return tuple(out)


def check_choices(config: Any) -> None:
    """Raise ValueError naming ``Class.field`` when a ``Literal`` field of the dataclass instance
    ``config`` holds a value outside its choices (for sections built directly, not loaded), or
    when a float field (or a float in a tuple field) is NaN or infinite: every section calls
    this first, so no range check downstream ever compares a NaN (which passes them all)."""
    cls = type(config)
    for field in dataclasses.fields(cls):
        value = getattr(config, field.name)
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{cls.__name__}.{field.name}: expected a finite number, "
                                 f"got {value!r}")
    for name, choices, sequence in _choice_fields(cls):
        value = getattr(config, name)
        for item in (value if sequence and isinstance(value, (list, tuple)) else (value,)):
            if not any(item == c and type(item) is type(c) for c in choices):
                expected = " | ".join(repr(c) for c in choices)
                raise ValueError(f"{cls.__name__}.{name}: expected one of {expected}, got {item!r}"
                                 f"{_did_you_mean(item, choices)}")


def is_number(value) -> bool:
    """An int or float, not a bool (for the sections' range checks)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value, low: int) -> bool:
    """An int (not a bool) ``>= low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _did_you_mean(value: Any, choices) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def to_dict(config: Any) -> dict:
    """A plain JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


# --------------------------------------------------------------------------------------------
# overrides, files
# --------------------------------------------------------------------------------------------

def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> ``(["train", "lr"], 0.0003)``; the value is a TOML literal."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(key or text, f"override {text!r} is not of the form dotted.key=value")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as sgd or on: a string; the type check still applies
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """A copy of ``data`` with each ``dotted.key=value`` set (tables created as needed)."""
    result = json.loads(json.dumps(data))
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(parts[: i + 1]),
                                  f"override {text!r} goes inside a value that is not a table")
            node = child
        node[parts[-1]] = value
    return result


def recipe_names() -> list[str]:
    """The recipes shipped with the package (``tfseti/recipes/*.toml``), sorted."""
    folder = importlib.resources.files(RECIPES_PACKAGE)
    return sorted(entry.name[: -len(".toml")] for entry in folder.iterdir()
                  if entry.name.endswith(".toml"))


def _recipe_name(name: Path) -> str | None:
    """``cpu_demo``, ``cpu_demo.toml``, ``configs/cpu_demo`` -> ``"cpu_demo"``; other paths: None."""
    parts = name.parts
    if len(parts) == 2 and parts[0] == LEGACY_RECIPE_FOLDER:
        parts = parts[1:]
    if len(parts) != 1 or name.is_absolute():
        return None
    return parts[0][: -len(".toml")] if parts[0].endswith(".toml") else parts[0]


def resolve_config_path(name: str | os.PathLike) -> Path:
    """A recipe name (``cpu_demo``, ``configs/cpu_demo``) or a ``.toml`` path -> the file to read.

    A file at ``name`` (or ``name.toml``) wins; otherwise a recipe shipped in the package.
    """
    name = Path(name)
    candidates = [name, name.with_name(name.name + ".toml")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    recipe = _recipe_name(name)
    looked = [str(c) for c in dict.fromkeys(candidates)]
    if recipe is not None:
        shipped = importlib.resources.files(RECIPES_PACKAGE) / f"{recipe}.toml"
        if shipped.is_file():
            return Path(str(shipped))
        looked.append(f"the recipes shipped in {RECIPES_PACKAGE}: {', '.join(recipe_names())}")
    raise FileNotFoundError(f"config {str(name)!r} not found (looked for {'; '.join(looked)})"
                            f"{_close_config(name)}")


def _close_config(name: Path, recipes: bool = True) -> str:
    """``"; did you mean 'configs/k1_style'?"`` for a typo, written the way ``name`` was (among
    the ``.toml`` files next to it and, with ``recipes``, the shipped recipes)."""
    stem = name.name[: -len(".toml")] if name.name.endswith(".toml") else name.name
    known = {p.stem for p in name.parent.glob("*.toml")} if name.parent.is_dir() else set()
    if recipes and _recipe_name(name) is not None:
        known.update(recipe_names())
    close = difflib.get_close_matches(stem, sorted(known), n=1)
    if not close:
        return ""
    suffix = ".toml" if name.name.endswith(".toml") else ""
    return f"; did you mean {str(name.with_name(close[0] + suffix))!r}?"


def read_toml(path: str | os.PathLike) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("", f"not valid TOML: {err}", source=str(path)) from None


def load(cls: type[T], name: str | os.PathLike | None = None,
         overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read the TOML config ``name`` (or start from defaults), apply overrides, validate."""
    source = None
    data: dict = {}
    if name is not None:
        path = resolve_config_path(name)
        source = str(path)
        data = read_toml(path)
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as err:
        raise ConfigError(err.key, err.problem,
                          source=_source_of(err, overrides, source, cls)) from None


def _source_of(err: ConfigError, overrides, file_source: str | None, cls: type) -> str | None:
    """Where a mistake comes from: the command-line override that set the bad key (or a table
    above it, or the key a section's check is about); for a check over several keys, the file
    with the overrides the message names; else the file."""
    key = "" if err.key in ("", cls.__name__) else err.key
    setting, inside = [], []
    for text in overrides:
        over = text.partition("=")[0].strip()
        if key and (key == over or key.startswith(over + ".")):
            setting.append(text)
        elif not key or over.startswith(key + "."):
            inside.append(text)
    # A section's own check usually starts with the key it is about: "train.epochs must be",
    # or "ModelConfig.pooling: expected" for a field of the section. (A run-level check, key
    # "", is about a combination: the file's values and the overrides it names.)
    for text in inside if key else ():
        over = text.partition("=")[0].strip()
        parent, _, field = over.rpartition(".")
        if (re.match(rf"{re.escape(over)}(?!\w)", err.problem)
                or (parent == key and re.match(rf"\w+\.{re.escape(field)}(?!\w)", err.problem))):
            setting.append(text)
    if setting:
        return f"override {setting[-1]} (command line)"
    named = [t for t in inside
             if re.search(rf"(?<!\w){re.escape(t.partition('=')[0].strip().rsplit('.', 1)[-1])}"
                          rf"(?!\w)", err.problem)]
    blamed = named or (inside if file_source is None else [])
    if not blamed:
        return file_source
    words = "override" if len(blamed) == 1 else "overrides"
    where = f"{words} {' '.join(blamed)} (command line)"
    return f"{file_source} with {where}" if file_source else where


# --------------------------------------------------------------------------------------------
# a command's settings: a TOML file, the command's flags, key=value overrides
# --------------------------------------------------------------------------------------------

SETTINGS_FILE_HELP = ("a TOML file of settings, the keys at its top level named as the settings "
                      "(key=value arguments override single keys; flags given override the file)")
"""The help of ``--config FILE`` of the commands whose settings a file may hold."""


def resolve_settings_path(name: str | os.PathLike) -> Path:
    """The settings file ``name`` (``.toml`` optional). Unlike :func:`resolve_config_path` no
    recipe is looked up: a command's settings are not a training recipe."""
    name = Path(name)
    candidates = [name] if name.name.endswith(".toml") else [
        name, name.with_name(name.name + ".toml")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = "; ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"settings file {str(name)!r} not found (looked for {looked})"
                            f"{_close_config(name, recipes=False)}")


def flag_values(parser, args, cls: type) -> dict[str, tuple[str, Any]]:
    """``{field: (flag, value)}``: the flags of the argparse ``parser`` that set a field of the
    dataclass ``cls`` (their ``dest`` is the field's name) and were given in ``args``. A settings
    flag has ``default=argparse.SUPPRESS``, so it is in ``args`` only when it was given: a flag left
    out must not hide the file's value with the default."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {action.dest: (action.option_strings[0], getattr(args, action.dest))
            for action in parser._actions  # noqa: SLF001 (argparse has no public list)
            if action.option_strings and action.dest in names and hasattr(args, action.dest)}


def load_settings(cls: type[T], name: str | os.PathLike | None = None,
                  overrides: list[str] | tuple[str, ...] = (),
                  flags: dict[str, tuple[str, Any]] | None = None) -> T:
    """A command's settings, the flat dataclass ``cls`` (its fields are the file's top-level keys),
    from, lowest first: its defaults, the TOML file ``name``, the command's flags given (``flags``,
    :func:`flag_values`; typed by argparse, taken as they are), the ``key=value`` ``overrides``.

    A field set both by a flag and by an override is refused: which of the two was meant cannot
    be known (``python -m tfseti.train`` lets its flags win; a refusal keeps both orders right).
    Every mistake is one :class:`ConfigError` naming where it is (the file, ``override KEY=VALUE
    (command line)``, or the flag) and the key; a check of ``cls.__post_init__`` that starts with
    the field it is about (``field``, ``Class.field`` or the field's flag ``--field-name``) is
    reported under that field's name, or under the flag when a flag set it (the flag's message is
    the one the command printed before it took files)."""
    flags = dict(flags or {})
    source, data = None, {}
    for text in overrides:
        parts, _ = parse_override(text)
        if parts[0] in flags:
            flag, value = flags[parts[0]]
            raise ConfigError(parts[0], f"set twice on the command line: {flag} {value} and "
                                        f"override {text}; give one of them")
    if name is not None:
        path = resolve_settings_path(name)
        source = str(path)
        data = read_toml(path)
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data, given={key: value for key, (_, value) in flags.items()})
    except ConfigError as err:
        key, tail = _about_field(err, cls)
        if key in flags:
            flag = flags[key][0]
            raise ConfigError(flag, _named(flag, tail)) from None
        located = ConfigError(key, _named(key, tail))
        raise ConfigError(located.key, located.problem,
                          source=_source_of(located, overrides, source, cls)) from None


def _about_field(err: ConfigError, cls: type) -> tuple[str, str]:
    """``(field, the message after its name)`` of a mistake in ``cls``'s settings."""
    if err.key not in ("", cls.__name__):
        return err.key, f": {err.problem}"  # the loader's own: the key is the field
    names = {f.name for f in dataclasses.fields(cls)}
    match = re.match(r"(--[A-Za-z][\w-]*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)(?=[:\s]|$)", err.problem)
    if match:
        token = match.group(1)
        field = (token[2:].replace("-", "_") if token.startswith("--")
                 else token.rpartition(".")[2])
        if field in names:
            return field, err.problem[match.end():]
    return err.key or cls.__name__, f": {err.problem}"


def _named(name: str, tail: str) -> str:
    """``name: problem`` (``tail`` ``": problem"``) or ``name must be ...``."""
    return f"{name}: {tail[1:].strip()}" if tail.startswith(":") else f"{name}{tail}"


def save_json(config: Any, directory: str | os.PathLike, filename: str = "config.json") -> str:
    """Write the resolved config as JSON into ``directory`` (local or any fsspec URL)."""
    from tfseti.io import fs as fsutil

    fs, root = fsutil.url_to_fs(str(directory))
    fs.makedirs(root, exist_ok=True)
    path = fsutil.join(str(directory), filename)
    with fs.open(fsutil.join(root, filename), "w") as handle:
        json.dump(to_dict(config), handle, indent=2, sort_keys=False)
        handle.write("\n")
    return path
