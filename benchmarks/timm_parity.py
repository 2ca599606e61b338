"""Parity of the Keras NF backbones with timm: the same checkpoint gives the same features.

    python -m benchmarks.timm_parity                       # every NF name, torch in this Python
    python -m benchmarks.timm_parity --torch-python /path/to/venv-with-timm/bin/python \\
        --names eca_nfnet_l0 nf_regnet_b1

For each architecture, the torch side (this interpreter when ``torch`` and ``timm`` import,
else ``--torch-python``) builds timm's model with timm's random initialisation, then draws every
gain from U(0.8, 1.2) and every bias from N(0, 0.05) (timm starts each block's last gain at 0,
which would make every residual branch vanish and the check trivial, and the biases at 0),
saves the state dict as ``.safetensors`` and writes timm's
``forward_features`` for a seeded input. The Keras side converts the file with
``tfseti.models.convert_timm``, loads it through ``weights =`` into the 3-channel backbone, and
compares in float32. A second check loads the same file into a 1-channel backbone and compares
with timm's own ``adapt_input_conv`` of the stem on the grey image. Pass: max |diff| <= --atol
(1e-4) for both. Lines starting ``RESULT`` are JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

SELF = os.path.abspath(__file__)
NAMES = ("nf_resnet26", "nf_resnet50", "nf_regnet_b0", "nf_regnet_b1", "nf_regnet_b2",
         "nf_regnet_b3", "eca_nfnet_l0", "eca_nfnet_l1", "eca_nfnet_l2")


def torch_side(name: str, folder: str, height: int, width: int, seed: int,
               float64: bool) -> None:
    """timm's model with random parameters: its safetensors and features (NCHW → NHWC)."""
    import numpy as np
    import timm
    import torch
    from safetensors.torch import save_file
    from timm.models._manipulate import adapt_input_conv

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()   # timm's initialisation, then:
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith(".gain"):      # every gain random around 1 (conv3's start at 0)
                p.uniform_(0.8, 1.2)
            elif key.endswith(".bias"):    # timm starts them at 0
                p.normal_(0.0, 0.05)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(folder, "timm.safetensors"))
    dtype = "float64" if float64 else "float32"
    x = np.random.default_rng(seed).standard_normal((2, 3, height, width)).astype(dtype)
    if float64:
        model = model.double()
    with torch.no_grad():
        rgb = model.forward_features(torch.from_numpy(x)).numpy()
        grey = x[:, :1]
        stem_key = next(k for k in state if k.startswith("stem.conv") and k.endswith(".weight"))
        model_1ch = timm.create_model(name, pretrained=False, in_chans=1).eval()
        state_1ch = dict(state)
        state_1ch[stem_key] = adapt_input_conv(1, state[stem_key])
        model_1ch.load_state_dict(state_1ch)
        if float64:
            model_1ch = model_1ch.double()
        mono = model_1ch.forward_features(torch.from_numpy(grey)).numpy()
    np.save(os.path.join(folder, "x.npy"), x.transpose(0, 2, 3, 1))
    np.save(os.path.join(folder, "features.npy"), rgb.transpose(0, 2, 3, 1))
    np.save(os.path.join(folder, "features_1ch.npy"), mono.transpose(0, 2, 3, 1))


def keras_side(name: str, folder: str, float64: bool) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    keras.config.set_floatx("float64" if float64 else "float32")
    keras.config.set_dtype_policy("float64" if float64 else "float32")

    from tfseti.models.convert_timm import convert
    from tfseti.models.nfnet import NF_SPECS, build_nf_backbone

    out = os.path.join(folder, f"{name}.weights.h5")
    summary = convert(os.path.join(folder, "timm.safetensors"), name, out)
    x = np.load(os.path.join(folder, "x.npy"), allow_pickle=False)
    result = {"name": name, "tensors": summary["tensors"], "parameters": summary["parameters"],
              "left_out": summary["left_out"]}
    for label, inputs, expected_file in (("rgb", x, "features.npy"),
                                         ("grey", x[..., :1], "features_1ch.npy")):
        expected = np.load(os.path.join(folder, expected_file), allow_pickle=False)
        backbone = build_nf_backbone(NF_SPECS[name], inputs.shape[1:], drop_connect_rate=0.0,
                                     weights=out)
        got = np.asarray(backbone(inputs, training=False))
        if got.shape != expected.shape:
            raise SystemExit(f"{name} {label}: Keras features {got.shape} vs timm {expected.shape}")
        result[f"{label}_max_abs_diff"] = float(np.abs(got - expected).max())
        result[f"{label}_max_abs_feature"] = float(np.abs(expected).max())
    return result


def has_timm() -> bool:
    return all(importlib.util.find_spec(m) for m in ("torch", "timm", "safetensors"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--float64", action="store_true",
                        help="both sides in float64: what is left is a mapping error, not rounding")
    parser.add_argument("--torch-python", default=None,
                        help="a Python with torch + timm + safetensors, when this one lacks them")
    parser.add_argument("--torch-side", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    height, width = args.size
    if args.torch_side:
        torch_side(*args.torch_side, height, width, args.seed, args.float64)
        return 0
    torch_python = args.torch_python or (sys.executable if has_timm() else None)
    if torch_python is None:
        print("error: torch and timm are not importable here; install them (pip install torch "
              "timm) or give --torch-python PATH of a Python that has them", file=sys.stderr)
        return 2
    rows, failed = [], False
    print(f"dtype {'float64' if args.float64 else 'float32'}, input 2x{height}x{width}")
    print(f"{'model':<14} {'params':>11} {'tensors':>7} {'rgb max|diff|':>14} "
          f"{'grey max|diff|':>15} {'max|feature|':>12}  pass (atol {args.atol:g})", flush=True)
    for name in args.names:
        with tempfile.TemporaryDirectory(prefix=f"parity_{name}_") as folder:
            subprocess.run([torch_python, SELF, "--torch-side", name, folder,
                            "--size", str(height), str(width), "--seed", str(args.seed),
                            *(["--float64"] if args.float64 else [])], check=True)
            row = keras_side(name, folder, args.float64)
        ok = max(row["rgb_max_abs_diff"], row["grey_max_abs_diff"]) <= args.atol
        failed |= not ok
        rows.append({**row, "pass": ok})
        print(f"{name:<14} {row['parameters']:>11,} {row['tensors']:>7} "
              f"{row['rgb_max_abs_diff']:>14.2e} {row['grey_max_abs_diff']:>15.2e} "
              f"{row['rgb_max_abs_feature']:>12.3f}  {'yes' if ok else 'NO'}", flush=True)
    for row in rows:
        print("RESULT " + json.dumps(row))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
