"""The generic config loader: dict/TOML -> frozen dataclasses, overrides, clear errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from tfseti import config as config_lib
from tfseti.config import ConfigError, apply_overrides, from_dict, parse_override
from tfseti.train.run_config import RunConfig, load_run_config
from tfseti.train.train_config import TrainConfig


@dataclass(frozen=True)
class Inner:
    size: tuple[int, int] = (64, 32)
    mode: Literal["on", "all"] = "all"
    scale: float = 1.0
    note: str | None = None

    def __post_init__(self):
        if self.scale <= 0:
            raise ValueError(f"inner.scale must be > 0, got {self.scale}")


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    steps: int = 1
    flags: tuple[str, ...] = ()
    enabled: bool = False


def test_from_dict_builds_nested_frozen_dataclasses_with_defaults():
    cfg = from_dict(Outer, {"name": "x", "inner": {"size": [8, 4], "scale": 2}, "flags": ["a"]})
    assert cfg == Outer(name="x", inner=Inner(size=(8, 4), scale=2.0), flags=("a",))
    assert isinstance(cfg.inner.scale, float) and isinstance(cfg.inner.size, tuple)
    with pytest.raises(Exception):
        cfg.steps = 3  # frozen


def test_unknown_key_names_the_path_and_suggests_the_close_match():
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"name": "x", "inner": {"sclae": 2.0}})
    assert err.value.key == "inner.sclae"
    assert "did you mean 'inner.scale'" in str(err.value)


@pytest.mark.parametrize("data, key, words", [
    ({"name": "x", "steps": "3"}, "steps", ["int", "str '3'"]),
    ({"name": "x", "steps": 2.5}, "steps", ["int", "float 2.5"]),
    ({"name": "x", "enabled": 1}, "enabled", ["bool", "int 1"]),
    ({"name": "x", "steps": True}, "steps", ["int", "bool True"]),
    ({"name": "x", "inner": {"size": [1, 2, 3]}}, "inner.size", ["2 items", "3 items"]),
    ({"name": "x", "inner": {"size": [1, "b"]}}, "inner.size.1", ["int", "str 'b'"]),
    ({"name": "x", "inner": 5}, "inner", ["table (Inner)", "int 5"]),
    ({"name": "x", "inner": {"mode": "onn"}}, "inner.mode", ["'on' | 'all'", "did you mean 'on'"]),
    ({"name": "x", "inner": {"note": 3}}, "inner.note", ["str | None", "int 3"]),
])
def test_wrong_type_names_key_expected_and_given(data, key, words):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert err.value.key == key
    for word in words:
        assert word in str(err.value)


def test_missing_required_key_and_bad_value_are_named():
    with pytest.raises(ConfigError, match=r"name: required key is missing"):
        from_dict(Outer, {})
    with pytest.raises(ConfigError, match=r"inner.scale must be > 0, got -1.0"):
        from_dict(Outer, {"name": "x", "inner": {"scale": -1}})


def test_overrides_parse_toml_literals_and_bare_words():
    assert parse_override("train.learning_rate=3e-4") == (["train", "learning_rate"], 3e-4)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("size=[8, 4]") == (["size"], [8, 4])
    assert parse_override('view="on"') == (["view"], "on")
    assert parse_override("train.optimizer=sgd") == (["train", "optimizer"], "sgd")
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_override("no_equals_sign")
    data = apply_overrides({"inner": {"scale": 1.0}}, ["inner.scale=3", "inner.size=[2, 2]", "steps=4"])
    assert data == {"inner": {"scale": 3, "size": [2, 2]}, "steps": 4}
    with pytest.raises(ConfigError, match="not a table"):
        apply_overrides({"steps": 1}, ["steps.x=2"])


def test_load_resolves_toml_applies_overrides_and_writes_json(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.toml").write_text(
        'name = "tiny"\n[train]\nepochs = 3\nbatch_per_replica = 4\n')
    monkeypatch.chdir(tmp_path)
    cfg = load_run_config("configs/tiny", ["train.learning_rate=0.01", "train.optimizer=sgd"])
    assert cfg.name == "tiny"
    assert cfg.train == TrainConfig(epochs=3, batch_per_replica=4, learning_rate=0.01, optimizer="sgd")
    path = config_lib.save_json(cfg, tmp_path / "run")
    saved = json.loads(open(path).read())
    assert saved["train"]["epochs"] == 3 and saved["train"]["optimizer"] == "sgd"
    # The JSON round-trips to the same config.
    assert config_lib.from_dict(RunConfig, saved) == cfg


def test_load_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepocs = 3\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(str(bad))
    assert str(bad) in str(err.value) and "did you mean 'train.epochs'" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_run_config(str(tmp_path / "nope"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_run_config(str(broken))


@pytest.mark.parametrize("overrides, message", [
    (["train.epochs=0"], "train.epochs must be >= 1"),
    (["train.epochs=2", "train.warmup_epochs=2"], "warmup_epochs (2.0) must be smaller than train.epochs"),
    (["train.epochs=2", "train.head_warmup_epochs=2"], "head_warmup_epochs (2) leaves no epoch"),
    (["train.loss=bce", "train.focal_alpha=0.7"], "focal_alpha is set but train.loss is 'bce'"),
    (["train.schedule=constant", "train.warmup_epochs=1"], "needs train.schedule = 'cosine'"),
    (["train.precision=fp16"], "expected one of 'auto'"),
    (["train.bn_momentum=1.0"], "train.bn_momentum must be in [0, 1)"),
    (["train.steps_per_epoch=15", "train.steps_per_execution=4"],
     "train.steps_per_epoch (15) must be a multiple of train.steps_per_execution (4)"),
    (["train.optimizr=sgd"], "did you mean 'train.optimizer'"),
])
def test_impossible_train_settings_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_run_config(None, overrides)
    assert message in str(err.value)


def test_run_config_composes_the_areas_sections(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(
        'name = "r"\n'
        '[view]\nname = "on"\nresize = [64, 32]\n'
        '[model]\nname = "efficientnet_b0"\n'
        '[model.options]\nstem_strides = [1, 2]\npooling = "gem"\nhead = "two_class"\n'
        '[train]\nloss = "ce2"\nepochs = 2\n')
    cfg = load_run_config(str(path))
    assert cfg.view.resize == (64, 32)
    assert cfg.model.options.stem_strides == (1, 2) and cfg.model.options.num_outputs == 2
    with pytest.raises(ConfigError) as err:
        load_run_config(str(path), ["train.loss=bce"])
    assert "train.loss = 'bce' needs 1 logit(s): set model.options.head = 'single_logit'" in str(err.value)
    # The areas' own value checks come through with the key path.
    with pytest.raises(ConfigError, match=r"view.name: expected one of 'on' \| 'on_off'"):
        load_run_config(str(path), ["view.name=sideways"])
    with pytest.raises(ConfigError, match=r"model.options.pooling: expected one of 'gem'"):
        load_run_config(str(path), ["model.options.pooling=median"])
    with pytest.raises(ConfigError, match=r"did you mean 'model.options.stem_strides'"):
        load_run_config(str(path), ["model.options.stem_stride=[1, 1]"])


def test_override_errors_name_the_override_not_the_file(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text('name = "r"\n[model.options]\nhead = "two_class"\n[train]\nloss = "ce2"\n'
                    'epochs = 2\n')
    cases = [
        (["train.epochs=0"], "override train.epochs=0 (command line): train.epochs must be >= 1"),
        (["train.optimizr=sgd"], "override train.optimizr=sgd (command line): train.optimizr: "
                                 "unknown key"),
        (["model.options.pooling=median"], "override model.options.pooling=median (command line): "
                                           "model.options.pooling: expected one of"),
        (["train.warmup_epochs=2"], "override train.warmup_epochs=2 (command line): "
                                    "train.warmup_epochs (2.0) must be smaller than train.epochs"),
    ]
    for overrides, start in cases:
        with pytest.raises(ConfigError) as err:
            load_run_config(str(path), overrides)
        assert str(err.value).startswith(start), str(err.value)
        assert str(path) not in str(err.value)
    # A combination of the file's values and an override: both are named.
    with pytest.raises(ConfigError) as err:
        load_run_config(str(path), ["train.loss=bce"])
    assert str(err.value).startswith(f"{path} with override train.loss=bce (command line): ")
    # A mistake in the file is still the file's, overrides or not.
    path.write_text('[train]\nepochs = 0\n')
    with pytest.raises(ConfigError) as err:
        load_run_config(str(path), ["train.seed=3"])
    assert str(err.value).startswith(f"{path}: train.epochs must be >= 1")


def test_config_name_typo_suggests_the_close_name(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    for name in ("k1_style", "cpu_demo"):
        (tmp_path / "configs" / f"{name}.toml").write_text('name = "x"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load_run_config("configs/k1_styel")
    assert str(err.value).startswith("config 'configs/k1_styel' not found (looked for ")
    assert str(err.value).endswith("; did you mean 'configs/k1_style'?")
    with pytest.raises(FileNotFoundError, match=r"did you mean 'configs/cpu_demo.toml'\?$"):
        load_run_config("configs/cpu_dmeo.toml")
    with pytest.raises(FileNotFoundError) as err:
        load_run_config("configs/nothing_like_it")
    assert "did you mean" not in str(err.value)
    # A bare name is looked up among the recipes shipped in the package as well.
    with pytest.raises(FileNotFoundError, match=r"did you mean 'cpu_demo'\?$"):
        load_run_config("cpu_dem")
