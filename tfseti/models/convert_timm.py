"""Pretrained weights from timm checkpoints: a timm state dict mapped onto the Keras backbone.

    python -m tfseti.models.convert_timm CHECKPOINT.safetensors|.pth --name eca_nfnet_l2 \\
        --out eca_nfnet_l2.weights.h5

then ``weights = "eca_nfnet_l2.weights.h5"`` in ``[model.options]`` loads it into any input size,
stem stride and channel count (the stem kernel is adapted as timm's ``adapt_input_conv`` does).

* ``.safetensors`` (what the model hubs serve) is read with numpy: no torch needed. ``.pth`` /
  ``.pt`` / ``.bin`` need torch (``torch.load(weights_only=True)``); wrappers such as
  ``{"state_dict": ...}`` (Lightning) or ``{"model": ...}`` and a ``module.`` prefix (DDP) are
  unwrapped.
* Every tensor is accounted for: a backbone variable the checkpoint lacks, a checkpoint tensor
  no variable takes, or a shape that does not fit is an error naming the key. timm's classifier
  (``head.fc.*``) is the only thing left out without asking; ``--strip-prefix P`` converts the
  tensors under ``P`` (e.g. ``model.backbone.`` of a competitor's checkpoint) and leaves the rest.
* Layouts: a conv weight ``(out, in, kh, kw)`` becomes ``(kh, kw, in, out)``, a ``gain``
  ``(out, 1, 1, 1)`` becomes ``(out,)``, ECA's ``(1, 1, k)`` becomes ``(k, 1, 1)``.
* A checkpoint with another channel count in its stem (a competitor's 1-channel model) gives a
  backbone file of that many channels, which loads as it is into models of that many channels.

Exit code 0, or 2 with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import os
import re

import numpy as np

from tfseti.command import command, run_command

from .nfnet.specs import NF_SPECS, NFSpec

CLASSIFIER_PREFIX = "head."    # timm's ClassifierHead (head.fc.weight / head.fc.bias)
STATE_DICT_WRAPPERS = ("state_dict", "model", "model_state_dict", "module")
_VARIABLE_KEYS = {"kernel": "weight", "bias": "bias", "gain": "gain"}


class ConversionError(ValueError):
    """A checkpoint that does not map onto the backbone; the message names the key."""


def timm_module(layer_name: str) -> str:
    """The timm module path of a backbone layer (``stages_1_0_attn_last_conv`` →
    ``stages.1.0.attn_last.conv``)."""
    if layer_name == "final_conv":
        return layer_name
    match = re.fullmatch(r"stem_(conv\d?)", layer_name)
    if match:
        return f"stem.{match[1]}"
    match = re.fullmatch(r"stages_(\d+)_(\d+)_(.+)", layer_name)
    if not match:
        raise ConversionError(f"layer {layer_name!r} has no timm counterpart")
    rest = match[3]
    for parent in ("downsample", "attn_last", "attn"):
        if rest.startswith(parent + "_"):
            rest = f"{parent}.{rest[len(parent) + 1:]}"
            break
    return f"stages.{match[1]}.{match[2]}.{rest}"


def to_keras_layout(key: str, value: np.ndarray, shape: tuple) -> np.ndarray:
    """timm tensor ``value`` of ``key`` in the layout of a Keras variable of ``shape``."""
    value = np.asarray(value, dtype=np.float32)
    if key.endswith(".gain"):
        value = value.reshape(-1)
    elif value.ndim == 4:                     # conv (out, in, kh, kw) → (kh, kw, in, out)
        value = value.transpose(2, 3, 1, 0)
    elif value.ndim == 3:                     # conv1d (out, in, k) → (k, in, out)
        value = value.transpose(2, 1, 0)
    if tuple(value.shape) != tuple(shape):
        raise ConversionError(f"checkpoint tensor {key!r}: shape {tuple(value.shape)} (in Keras "
                              f"layout) does not fit the backbone's {tuple(shape)}")
    return value


def variable_keys(backbone) -> list[tuple[str, object]]:
    """``(timm key, Keras variable)`` of every variable of an NF backbone."""
    pairs = []
    for layer in backbone.layers:
        for variable in layer.weights:
            name = variable.name.split("/")[-1]
            if name not in _VARIABLE_KEYS:
                raise ConversionError(f"layer {layer.name!r}: variable {name!r} has no timm "
                                      "counterpart")
            pairs.append((f"{timm_module(layer.name)}.{_VARIABLE_KEYS[name]}", variable))
    return pairs


def select_tensors(state: dict, strip_prefix: str | None = None) -> tuple[dict, list[str]]:
    """The backbone's tensors of a state dict and the keys deliberately left out."""
    if strip_prefix:
        chosen = {k[len(strip_prefix):]: v for k, v in state.items() if k.startswith(strip_prefix)}
        if not chosen:
            raise ConversionError(f"--strip-prefix {strip_prefix!r}: no checkpoint key starts "
                                  f"with it; keys look like {sorted(state)[:4]}")
        return chosen, sorted(k for k in state if not k.startswith(strip_prefix))
    if state and all(k.startswith("module.") for k in state):     # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    left_out = sorted(k for k in state if k.startswith(CLASSIFIER_PREFIX))
    return {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}, left_out


def stem_channels(state: dict, spec: NFSpec) -> int:
    key = f"{timm_module(spec.stem_conv)}.weight"
    if key not in state:
        raise ConversionError(f"checkpoint has no {key!r}: not a {spec.timm_name} state dict "
                              f"(keys look like {sorted(state)[:4]})")
    return int(np.shape(state[key])[1])


def convert_state_dict(state: dict, spec: NFSpec, strip_prefix: str | None = None):
    """The Keras backbone of ``spec`` holding the checkpoint's tensors (at the checkpoint's stem
    channel count), and the keys left out. Raises :class:`ConversionError`."""
    from .nfnet.backbone import build_nf_layers

    tensors, left_out = select_tensors(state, strip_prefix)
    channels = stem_channels(tensors, spec)
    # the variables' shapes do not depend on the spatial size; 64 x 64 keeps the build cheap
    backbone = build_nf_layers(spec, (64, 64, channels))
    pairs = variable_keys(backbone)
    wanted = {key for key, _ in pairs}
    missing = sorted(wanted - set(tensors))
    unused = sorted(set(tensors) - wanted)
    if missing or unused:
        raise ConversionError(
            f"checkpoint does not match {spec.timm_name}: "
            + (f"{len(missing)} backbone tensor(s) missing (e.g. {missing[:3]})" if missing else "")
            + ("; " if missing and unused else "")
            + (f"{len(unused)} checkpoint tensor(s) unused (e.g. {unused[:3]})" if unused else ""))
    for key, variable in pairs:
        variable.assign(to_keras_layout(key, tensors[key], variable.shape))
    return backbone, left_out


def read_checkpoint(path: str) -> dict:
    """A state dict of numpy arrays from ``.safetensors`` (numpy only) or a torch file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r}: no such file")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="numpy") as f:
                return {key: f.get_tensor(key) for key in f.keys()}
        except (SafetensorError, TypeError, ValueError) as err:
            raise ConversionError(f"checkpoint {path!r}: not readable as safetensors with numpy "
                                  f"({err}); bfloat16 files need converting to float32 first"
                                  ) from err
    try:
        import torch
    except ImportError as err:
        raise ConversionError(f"checkpoint {path!r}: reading a torch file needs torch "
                              "(pip install torch); .safetensors files need only numpy") from err
    state = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(state, dict) and not any(torch.is_tensor(v) for v in state.values()):
        inner = [k for k in STATE_DICT_WRAPPERS if isinstance(state.get(k), dict)]
        if not inner:
            raise ConversionError(f"checkpoint {path!r}: no state dict inside (top-level keys "
                                  f"{sorted(state)[:6]})")
        state = state[inner[0]]
    return {k: v.detach().float().cpu().numpy() for k, v in state.items() if torch.is_tensor(v)}


def convert(checkpoint: str, name: str, out: str, strip_prefix: str | None = None) -> dict:
    """Convert ``checkpoint`` for backbone ``name`` into ``out`` (``.weights.h5``, written
    atomically); returns a summary."""
    if name not in NF_SPECS:
        raise ConversionError(f"--name {name!r}: expected one of {sorted(NF_SPECS)}")
    if not out.endswith(".weights.h5"):
        raise ConversionError(f"--out {out!r}: expected a file name ending in .weights.h5")
    state = read_checkpoint(checkpoint)
    backbone, left_out = convert_state_dict(state, NF_SPECS[name], strip_prefix)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    partial = out[: -len(".weights.h5")] + ".partial.weights.h5"
    backbone.save_weights(partial)
    os.replace(partial, out)
    return {"name": name, "tensors": len(variable_keys(backbone)),
            "parameters": int(backbone.count_params()),
            "in_channels": int(backbone.input_shape[-1]), "left_out": left_out, "out": out}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.models.convert_timm",
        description="Convert a timm checkpoint (.safetensors or torch .pth) of an NF backbone "
                    "into a Keras .weights.h5 for [model.options] weights.")
    parser.add_argument("checkpoint", help="timm checkpoint: .safetensors (numpy only) or .pth")
    parser.add_argument("--name", required=True, choices=sorted(NF_SPECS),
                        help="the architecture (timm's name)")
    parser.add_argument("--out", required=True, help="output file, NAME.weights.h5")
    parser.add_argument("--strip-prefix", default=None,
                        help="convert only keys under this prefix, with it removed "
                             "(e.g. model.backbone.)")
    return parser.parse_args(argv)


@command(ConversionError, FileNotFoundError)
def main(argv=None) -> int:
    args = parse_args(argv)
    summary = convert(args.checkpoint, args.name, args.out, args.strip_prefix)
    left = summary["left_out"]
    print(f"converted {summary['tensors']} tensors ({summary['parameters']:,} parameters, "
          f"{summary['in_channels']}-channel stem) of {summary['name']} → {summary['out']}")
    if left:
        print(f"left out {len(left)} checkpoint tensor(s) that are not the backbone: "
              f"{', '.join(left[:6])}{' ...' if len(left) > 6 else ''}")
    return 0


if __name__ == "__main__":
    run_command(main)
