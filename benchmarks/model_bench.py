"""Training throughput and peak memory of tfseti models, and of timm's equivalent in PyTorch.

    python -m benchmarks.model_bench --models efficientnet_b0 --size 128x128 --batch 8 --steps 5

For each model x XLA (on/off) x bf16 (on/off) a fresh subprocess builds the Keras model with
``create_model``, compiles it (Adam, BCE on logits), runs ``--warmup`` training steps (tracing,
XLA compilation) and then times ``--steps`` steps on one fixed batch already on the device
(model speed, not input speed). Memory: the allocator's peak on GPU
(``tf.config.experimental.get_memory_info``), the process' peak RSS on CPU (includes the TF
runtime). When ``torch`` and ``timm`` are importable and a CUDA GPU is present, the same run
trains timm's equivalent (the spec's ``timm_name``: ``tf_efficientnet_b0``, ``eca_nfnet_l2``,
``nf_regnet_b1``, ``resnet50`` …; channels-last, bf16 autocast for bf16, ``torch.compile`` for
"XLA on") and prints Keras/timm ratios. ``--save-check`` also saves each trained Keras model as
``.keras``, reloads it in safe mode and requires identical logits: with ``--xla on --bf16 on``
that is the "builds, trains a step under bf16 + XLA, saves and reloads" check of every name
(the NF families take minutes each on a CPU, so the test suite runs small versions instead):

    python -m benchmarks.model_bench --models nf_resnet26,nf_resnet50,nf_regnet_b0,\
nf_regnet_b1,nf_regnet_b2,nf_regnet_b3,eca_nfnet_l0,eca_nfnet_l1,eca_nfnet_l2,resnet50,\
resnet101 --size 64x32 --batch 2 --steps 1 --warmup 1 --xla on --bf16 on --save-check

Lines starting ``RESULT`` are JSON, for scripts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

SELF = os.path.abspath(__file__)


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size: expected HxW like 128x128, got {text!r}")
    return height, width


def on_off(text: str) -> list[bool]:
    choices = {"on": [True], "off": [False], "both": [False, True]}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected on, off or both, got {text!r}")
    return choices[text]


# --------------------------------------------------------------------------- workers


def keras_worker(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    from tfseti.models import ModelConfig, create_model

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if args.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = ModelConfig.from_options(**json.loads(args.options))
    height, width = args.size
    model = create_model(args.model, (height, width, args.channels), config=config)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=(keras.losses.BinaryCrossentropy(from_logits=True) if config.num_outputs == 1
                        else keras.losses.CategoricalCrossentropy(from_logits=True)),
                  jit_compile=args.xla)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, height, width, args.channels)).astype("float32")
    labels = rng.integers(0, 2, args.batch)
    y = (labels[:, None] if config.num_outputs == 1 else np.eye(2)[labels]).astype("float32")
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    if gpus:  # keep the batch on the GPU: time the model, not the host → device copy
        data = data.apply(tf.data.experimental.prefetch_to_device("/GPU:0"))

    start = time.perf_counter()
    model.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)
    warmup_s = time.perf_counter() - start
    if gpus:
        tf.config.experimental.reset_memory_stats("GPU:0")
    start = time.perf_counter()
    history = model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    assert np.isfinite(history.history["loss"][-1])
    if gpus:
        peak_mb, memory = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "gpu_peak"
    else:
        peak_mb, memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_peak_rss"
    device = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
              if gpus else f"CPU ({os.cpu_count()} cores)")
    result = dict(framework="keras", device=device, warmup_s=round(warmup_s, 2),
                  images_per_s=args.batch * args.steps / elapsed,
                  step_ms=1000 * elapsed / args.steps, peak_mb=peak_mb, memory=memory,
                  params=model.count_params())
    if args.save_check:   # the trained model through .keras and a safe-mode load: same logits
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path, compile=False, safe_mode=True)
            same = np.array_equal(np.asarray(reloaded(x, training=False)),
                                  np.asarray(model(x, training=False)))
        result["reload_identical"] = bool(same)
        assert same, "the reloaded .keras model gives other logits"
    return result


def torch_worker(args) -> dict:
    import torch

    if not torch.cuda.is_available():
        return dict(framework="timm", skipped="no CUDA GPU for torch")
    import timm

    from tfseti.models.config import ModelConfig
    from tfseti.models.factory import MODEL_REGISTRY

    config = ModelConfig.from_options(**json.loads(args.options))
    timm_name = getattr(MODEL_REGISTRY[args.model].spec, "timm_name", None)
    if not timm_name:
        return dict(framework="timm", skipped=f"{args.model} has no timm equivalent")
    model = timm.create_model(timm_name, pretrained=False,
                              num_classes=config.num_outputs, in_chans=args.channels,
                              drop_rate=config.dropout, drop_path_rate=config.drop_connect_rate)
    # The first conv (conv_stem, stem.conv1, conv1 ...): TF-ported "same" padding adapts to the
    # stride; the NF convs' symmetric padding is the same for stride 1 and 2 (3x3 and 7x7).
    model.get_submodule(model.pretrained_cfg["first_conv"]).stride = tuple(config.stem_strides)
    model = model.cuda().to(memory_format=torch.channels_last).train()
    if args.xla:
        model = torch.compile(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    height, width = args.size
    x = torch.randn(args.batch, args.channels, height, width, device="cuda").to(
        memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (args.batch,), device="cuda")
    if config.num_outputs == 1:
        y, loss_fn = labels[:, None].float(), torch.nn.BCEWithLogitsLoss()
    else:
        y, loss_fn = labels, torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.bf16):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        optimizer.step()
        return loss

    start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - start
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    assert torch.isfinite(loss)
    return dict(framework="timm", device=torch.cuda.get_device_name(0),
                warmup_s=round(warmup_s, 2), images_per_s=args.batch * args.steps / elapsed,
                step_ms=1000 * elapsed / args.steps,
                peak_mb=torch.cuda.max_memory_allocated() / 2**20, memory="gpu_peak",
                params=sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------- driver


def run_worker(kind: str, model: str, xla: bool, bf16: bool, args) -> dict:
    command = [sys.executable, SELF, "--worker", kind, "--models", model,
               "--size", f"{args.size[0]}x{args.size[1]}", "--channels", str(args.channels),
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--options", args.options,
               "--xla", "on" if xla else "off", "--bf16", "on" if bf16 else "off",
               *(["--save-check"] if args.save_check else [])]
    base = dict(framework="keras" if kind == "keras" else "timm", model=model, xla=xla, bf16=bf16)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return dict(base, error=f"timed out after {args.timeout} s")
    for line in done.stdout.splitlines():
        if line.startswith("WORKER "):
            return dict(base, **json.loads(line[len("WORKER "):]))
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return dict(base, error=f"exit {done.returncode}: " + " | ".join(tail))


def describe(result: dict) -> str:
    head = (f"{result['framework']:5s} {result['model']:18s} xla={'on ' if result['xla'] else 'off'} "
            f"bf16={'on ' if result['bf16'] else 'off'}")
    if "error" in result or "skipped" in result:
        return f"{head}  {result.get('error') or 'skipped: ' + result['skipped']}"
    reload = {True: "  reload identical", False: "  RELOAD DIFFERS"}.get(
        result.get("reload_identical"), "")
    return (f"{head}  {result['images_per_s']:9.1f} img/s  {result['step_ms']:9.1f} ms/step  "
            f"peak {result['peak_mb']:8.0f} MiB ({result['memory']})  warm-up "
            f"{result['warmup_s']:.1f} s  [{result['device']}]{reload}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="efficientnet_b0",
                        help="comma-separated create_model names")
    parser.add_argument("--size", type=parse_size, default=(256, 256), help="HxW")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation)")
    parser.add_argument("--xla", type=on_off, default=[False, True], help="on, off or both")
    parser.add_argument("--bf16", type=on_off, default=[False, True], help="on, off or both")
    parser.add_argument("--options", default='{"pooling": "avg"}',
                        help="JSON of ModelConfig options (default avg pooling, as timm)")
    parser.add_argument("--timm", choices=("auto", "off"), default="auto",
                        help="auto: also run timm when torch+timm are installed and CUDA works")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    parser.add_argument("--save-check", action="store_true",
                        help="also save the trained Keras model as .keras, reload it in safe "
                             "mode and require identical logits")
    parser.add_argument("--worker", choices=("keras", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        args.model, args.xla, args.bf16 = args.models, args.xla[0], args.bf16[0]
        result = keras_worker(args) if args.worker == "keras" else torch_worker(args)
        print("WORKER " + json.dumps(result), flush=True)
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    from tfseti.models.config import ModelConfig

    ModelConfig.from_options(**json.loads(args.options))  # fail early on a bad option
    with_timm = (args.timm == "auto" and importlib.util.find_spec("torch") is not None
                 and importlib.util.find_spec("timm") is not None)
    print(f"size {args.size[0]}x{args.size[1]}x{args.channels}, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, options {args.options}; "
          f"timm: {'yes' if with_timm else 'not installed'}", flush=True)
    failed = False
    for model in models:
        for bf16 in args.bf16:
            for xla in args.xla:
                keras_result = run_worker("keras", model, xla, bf16, args)
                print(describe(keras_result), flush=True)
                print("RESULT " + json.dumps(keras_result), flush=True)
                failed |= "error" in keras_result
                if not with_timm:
                    continue
                timm_result = run_worker("torch", model, xla, bf16, args)
                print(describe(timm_result), flush=True)
                print("RESULT " + json.dumps(timm_result), flush=True)
                if "images_per_s" in keras_result and "images_per_s" in timm_result:
                    print(f"      ratio keras/timm: throughput "
                          f"{keras_result['images_per_s'] / timm_result['images_per_s']:.2f}x, "
                          f"peak memory {keras_result['peak_mb'] / timm_result['peak_mb']:.2f}x",
                          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
