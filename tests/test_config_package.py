"""The config layer is plain data: loading and checking every recipe imports neither TensorFlow
nor setigen, and the recipes travel inside the package (an installed wheel has them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LOAD_EVERY_RECIPE = """
import json, sys, time
start = time.perf_counter()
import tfseti.config
from tfseti.train.run_config import load_run_config
names = tfseti.config.recipe_names()
paths = {name: str(tfseti.config.resolve_config_path(name)) for name in names}
for name in names:
    load_run_config(name)
print(json.dumps({"names": names, "paths": paths, "seconds": time.perf_counter() - start,
                  "heavy": [m for m in ("tensorflow", "keras", "setigen") if m in sys.modules]}))
"""


def _load_every_recipe(cwd, env=None) -> dict:
    done = subprocess.run([sys.executable, "-c", LOAD_EVERY_RECIPE], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_loading_every_recipe_imports_no_tensorflow_and_no_setigen(tmp_path):
    loaded = _load_every_recipe(tmp_path)   # from a folder that is not the checkout
    assert set(loaded["names"]) >= {"cpu", "cpu_demo", "b0_tpu", "k1_style", "k2_style", "k3_style"}
    assert loaded["heavy"] == []
    for name, path in loaded["paths"].items():
        assert Path(path) == REPO / "tfseti" / "recipes" / f"{name}.toml"


def test_the_old_folder_spelling_names_the_shipped_recipe(tmp_path, monkeypatch):
    from tfseti.config import resolve_config_path

    monkeypatch.chdir(tmp_path)
    shipped = REPO / "tfseti" / "recipes" / "k1_style.toml"
    assert resolve_config_path("k1_style") == shipped
    assert resolve_config_path("configs/k1_style") == shipped
    assert resolve_config_path("k1_style.toml") == shipped
    # A file of that name where the user is wins over the shipped recipe.
    (tmp_path / "k1_style.toml").write_text('name = "mine"\n')
    assert resolve_config_path("k1_style") == Path("k1_style.toml")


@pytest.mark.slow
def test_an_installed_wheel_carries_the_recipes(tmp_path):
    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("tfseti", "tfrecords_tools"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("tfseti-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n for n in archive.namelist() if n.startswith("tfseti/recipes/"))
    assert "tfseti/recipes/k1_style.toml" in shipped and "tfseti/recipes/cpu.toml" in shipped
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
         str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    # Only the installed copy on the path (not the checkout): --config NAME still works.
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    check = subprocess.run([sys.executable, "-c", "import tfseti; print(tfseti.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert check.stdout.strip().startswith(str(site)), (check.stdout, check.stderr[-2000:])
    loaded = _load_every_recipe(tmp_path, env)
    assert loaded["heavy"] == [] and "k1_style" in loaded["names"]
    assert all(path.startswith(str(site)) for path in loaded["paths"].values()), loaded["paths"]
