"""The recipes are visible at the top level: ``configs/`` is a git-tracked link to
``tfseti/recipes/`` (the package ships them), and ``--config configs/NAME.toml`` loads the same
recipe as ``--config NAME``."""

from __future__ import annotations

import os
import subprocess

import pytest

from tfseti.train.run_config import load_run_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = sorted(n[:-5] for n in os.listdir(os.path.join(ROOT, "tfseti", "recipes")) if n.endswith(".toml"))


def test_configs_is_a_tracked_link_to_the_packaged_recipes():
    link = os.path.join(ROOT, "configs")
    assert os.path.islink(link) and os.readlink(link) == os.path.join("tfseti", "recipes")
    listed = subprocess.run(["git", "ls-files", "-s", "configs"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert listed.startswith("120000 "), listed        # a symbolic link in git, not a copy
    assert len(RECIPES) >= 8


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_loads_alike_by_path_and_by_name(name):
    assert load_run_config(os.path.join(ROOT, "configs", f"{name}.toml")) == load_run_config(name)
