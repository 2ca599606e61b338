"""timm checkpoints → Keras NF backbones (``python -m tfseti.models.convert_timm``).

Without torch: a state dict in timm's key names and layouts, written here from a Keras backbone
by the test's own inverse mapping, converts back to the same weights; every key is accounted
for. With torch + timm installed, the converted model's features equal timm's (the full table
for every architecture: benchmarks/timm_parity.py)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from tfseti.models.convert_timm import ConversionError, convert_state_dict, main, read_checkpoint
from tfseti.models.nfnet import NF_SPECS, build_nf_backbone
from tfseti.models.nfnet.backbone import build_nf_layers
from test_nfnet import TINY_SPECS

HAS_TIMM = all(importlib.util.find_spec(m) for m in ("torch", "timm"))


def timm_state_dict(backbone, seed: int = 0) -> dict:
    """Random weights in the Keras backbone, then the state dict timm would hold for them:
    keys by module path, torch layouts, plus timm's classifier."""
    rng = np.random.default_rng(seed)
    state = {}
    for layer in backbone.layers:
        for variable in layer.weights:
            value = rng.standard_normal(variable.shape).astype("float32")
            variable.assign(value)
            module = layer.name                      # e.g. stages_1_1_attn_last_conv
            if module.startswith("stages_"):
                stage, block, rest = module[len("stages_"):].split("_", 2)
                for child in ("downsample_", "attn_last_", "attn_"):
                    if rest.startswith(child):
                        rest = f"{child[:-1]}.{rest[len(child):]}"
                        break
                module = f"stages.{stage}.{block}.{rest}"
            elif module.startswith("stem_"):
                module = f"stem.{module[len('stem_'):]}"
            if variable.name == "gain":
                value = value.reshape(-1, 1, 1, 1)
            elif value.ndim == 4:
                value = value.transpose(3, 2, 0, 1)
            elif value.ndim == 3:
                value = value.transpose(2, 1, 0)
            # contiguous, as torch's tensors: safetensors' numpy writer saves a transposed
            # view's buffer in memory order, i.e. scrambled
            state[f"{module}.{ {'kernel': 'weight'}.get(variable.name, variable.name)}"] = \
                np.ascontiguousarray(value)
    state["head.fc.weight"] = rng.standard_normal((1000, int(backbone.output.shape[-1]))).astype("float32")
    state["head.fc.bias"] = np.zeros(1000, "float32")
    return state


@pytest.fixture(scope="module")
def eca_source():
    spec = TINY_SPECS["eca_nfnet"]
    backbone = build_nf_layers(spec, (64, 32, 3))
    state = timm_state_dict(backbone)
    return spec, backbone, state


def test_timm_keys_land_in_the_right_variables(eca_source):
    spec, source, state = eca_source
    # a few keys written out as timm names them
    for key in ("stem.conv1.weight", "stem.conv4.gain", "stages.1.0.downsample.conv.weight",
                "stages.1.0.conv2b.bias", "stages.1.1.attn_last.conv.weight", "final_conv.gain"):
        assert key in state, key
    converted, left_out = convert_state_dict(state, spec)
    assert left_out == ["head.fc.bias", "head.fc.weight"]
    for layer in source.layers:
        for got, want in zip(converted.get_layer(layer.name).get_weights(), layer.get_weights(),
                             strict=True):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)
    np.testing.assert_array_equal(converted.get_layer("stages_1_1_attn_last_conv").kernel.numpy()[:, 0, 0],
                                  state["stages.1.1.attn_last.conv.weight"][0, 0])
    np.testing.assert_array_equal(converted.get_layer("stem_conv1").kernel.numpy()[1, 2, 0, 3],
                                  state["stem.conv1.weight"][3, 0, 1, 2])


def test_every_tensor_is_accounted_for(eca_source):
    spec, _, state = eca_source
    missing = {k: v for k, v in state.items() if k != "stages.2.0.conv2.gain"}
    with pytest.raises(ConversionError, match=r"1 backbone tensor\(s\) missing .*stages.2.0.conv2.gain"):
        convert_state_dict(missing, spec)
    extra = {**state, "stages.0.0.skipinit_gain": np.zeros((), "float32")}
    with pytest.raises(ConversionError, match=r"1 checkpoint tensor\(s\) unused .*skipinit_gain"):
        convert_state_dict(extra, spec)
    wrong = {**state, "final_conv.bias": np.zeros(7, "float32")}
    with pytest.raises(ConversionError, match="'final_conv.bias': shape \\(7,\\)"):
        convert_state_dict(wrong, spec)
    with pytest.raises(ConversionError, match="no 'stem.conv.weight'"):
        convert_state_dict(state, TINY_SPECS["nf_regnet"])


def test_wrapped_and_prefixed_checkpoints(eca_source):
    spec, source, state = eca_source
    ddp = {f"module.{k}": v for k, v in state.items()}
    converted, _ = convert_state_dict(ddp, spec)
    np.testing.assert_array_equal(converted.get_layer("final_conv").gain.numpy(),
                                  source.get_layer("final_conv").gain.numpy())
    competitor = {**{f"model.backbone.{k}": v for k, v in state.items() if not k.startswith("head")},
                  "model.head.weight": np.zeros((1, 192), "float32")}
    converted, left_out = convert_state_dict(competitor, spec, strip_prefix="model.backbone.")
    assert left_out == ["model.head.weight"]
    with pytest.raises(ConversionError, match="--strip-prefix 'encoder.'"):
        convert_state_dict(competitor, spec, strip_prefix="encoder.")


def test_one_channel_checkpoint_converts_to_a_one_channel_file(eca_source, tmp_path):
    spec, _, state = eca_source
    grey = dict(state, **{"stem.conv1.weight": state["stem.conv1.weight"].sum(1, keepdims=True)})
    converted, _ = convert_state_dict(grey, spec)
    assert converted.input_shape[-1] == 1
    path = str(tmp_path / "grey.weights.h5")
    converted.save_weights(path)
    backbone = build_nf_backbone(spec, (64, 32, 1), weights=path)    # copied, not adapted
    np.testing.assert_array_equal(backbone.get_layer("stem_conv1").kernel.numpy(),
                                  converted.get_layer("stem_conv1").kernel.numpy())


def test_cli_converts_a_safetensors_file_and_weights_load_into_one_channel(tmp_path, capsys, harness):
    from safetensors.numpy import save_file

    source = build_nf_layers(NF_SPECS["nf_regnet_b0"], (64, 32, 3))
    state = timm_state_dict(source, seed=1)
    checkpoint = tmp_path / "nf_regnet_b0.safetensors"
    save_file(state, str(checkpoint))
    out = tmp_path / "weights" / "nf_regnet_b0.weights.h5"
    assert main([str(checkpoint), "--name", "nf_regnet_b0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"converted {len(state) - 2} tensors (7,803,288 parameters, 3-channel stem)" in printed
    assert "left out 2 checkpoint tensor(s) that are not the backbone: head.fc.bias, head.fc.weight" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["nf_regnet_b0.weights.h5"]

    model = harness.build("nf_regnet_b0", 1, weights=str(out), stem_strides=(1, 2))
    backbone = model.get_layer("backbone")
    # the stem kernel summed over RGB as timm's adapt_input_conv; the rest copied
    np.testing.assert_allclose(backbone.get_layer("stem_conv").kernel.numpy(),
                               source.get_layer("stem_conv").kernel.numpy().sum(2, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_array_equal(backbone.get_layer("stages_3_5_attn_fc2").kernel.numpy(),
                                  source.get_layer("stages_3_5_attn_fc2").kernel.numpy())
    harness.check_logits(model, harness.images(1), 1)


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    assert main([str(bad), "--name", "eca_nfnet_l0", "--out", str(tmp_path / "x.weights.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: checkpoint") and "safetensors" in err[0]
    assert main([str(bad), "--name", "eca_nfnet_l0", "--out", str(tmp_path / "x.h5")]) == 2
    assert "expected a file name ending in .weights.h5" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.safetensors"), "--name", "eca_nfnet_l0",
                 "--out", str(tmp_path / "x.weights.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)     # as where torch is not installed
    with pytest.raises(ConversionError, match="needs torch .*safetensors files need only numpy"):
        read_checkpoint(str(pth))


@pytest.mark.skipif(not HAS_TIMM, reason="parity with timm needs torch and timm installed "
                    "(pip install torch timm); benchmarks/timm_parity.py runs it for "
                    "every architecture")
@pytest.mark.parametrize("name", ["nf_regnet_b0", "nf_resnet26", "eca_nfnet_l0"])
def test_features_equal_timm(name, tmp_path):
    from benchmarks import timm_parity

    timm_parity.torch_side(name, str(tmp_path), 64, 96, seed=0, float64=False)
    result = timm_parity.keras_side(name, str(tmp_path), float64=False)
    assert result["rgb_max_abs_diff"] <= 1e-4 and result["grey_max_abs_diff"] <= 1e-4, result
