"""``python -m tfseti.dedoppler DATA --config FILE.toml key=value ...``: the search's settings
(``DedopplerSettings``: the drift search's ``DedopplerConfig`` and the command's own) from a TOML
file, the flags and ``key=value`` overrides: a file gives what the same flags give, flags given and
overrides beat the file, and every mistake is one ``error:`` line naming the file, flag or override
and the key, before any data is read (``--out`` is not written)."""

from __future__ import annotations

import dataclasses

import pytest

from tfseti.data.config import DedopplerConfig
from tfseti.dedoppler.__main__ import DedopplerSettings, main, parse_command_line

FILE = """\
# the drift search: the keys of a recipe's [view.dedoppler] table
max_drift = 0.1
drifts = 9
block = 5
background = "panel_median"
reference = "panel"
panel_gap = 10
clip = 0
# the command's own
score = "straight_line"
pattern_snr = 4.5
channel_hz = 3
row_seconds = 2.0
batch_size = 2
"""
FLAGS = ["--max-drift", "0.1", "--drifts", "9", "--block", "5", "--background", "panel_median",
         "--panel-gap", "10", "--clip", "0", "--score", "straight_line", "--pattern-snr", "4.5",
         "--channel-hz", "3", "--row-seconds", "2.0", "--batch-size", "2", "reference=panel"]


def settings(tmp_path, *argv) -> DedopplerSettings:
    return parse_command_line(["data", "--out", str(tmp_path / "s.csv"), *argv])[1]


@pytest.fixture
def dedoppler_toml(tmp_path):
    path = tmp_path / "search.toml"
    path.write_text(FILE)
    return path


def test_the_settings_hold_the_search_with_its_defaults():
    search = {f.name: f.default for f in dataclasses.fields(DedopplerConfig)}
    ours = {f.name: f.default for f in dataclasses.fields(DedopplerSettings)}
    assert {name: ours[name] for name in search} == search
    assert DedopplerSettings().search() == DedopplerConfig()


def test_a_file_gives_what_the_same_flags_give(tmp_path, dedoppler_toml):
    from_file = settings(tmp_path, "--config", str(dedoppler_toml))
    assert from_file == settings(tmp_path, *FLAGS) != DedopplerSettings()
    assert from_file.search() == DedopplerConfig(max_drift=0.1, drifts=9, block=5,
                                                 background="panel_median", reference="panel",
                                                 panel_gap=10, clip=0.0)
    assert settings(tmp_path) == DedopplerSettings()


def test_flags_given_and_overrides_beat_the_file(tmp_path, dedoppler_toml):
    config = ["--config", str(dedoppler_toml)]
    assert settings(tmp_path, *config, "--drifts", "17").drifts == 17
    got = settings(tmp_path, *config, "drifts=5", "background=off_median")
    assert (got.drifts, got.background, got.block) == (5, "off_median", 5)   # block: the file's
    # overrides between the flags (DATA first), and a flag left out keeps the file's value
    got = parse_command_line(["data", "clip=2", *config, "--out", "x.csv", "score=panel_maxima"])[1]
    assert (got.clip, got.score, got.batch_size) == (2.0, "panel_maxima", 2)


def test_a_typo_is_one_line_with_the_closest_key_and_writes_nothing(tmp_path, dedoppler_toml,
                                                                    capsys):
    out = tmp_path / "s.csv"
    assert main(["data", "--out", str(out), "--config", str(dedoppler_toml), "driftz=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: override driftz=3 (command line): driftz: unknown key in "
                          "DedopplerSettings; did you mean 'drifts'?")
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("file, argv, message", [
    ("max_drift = 9\n", [], "{file}: max_drift: expected channels per row in (0, 4], got 9.0"),
    ("drifts = 0\n", [], "{file}: drifts: expected an int >= 1, got 0"),
    ("drifts = 2.5\n", [], "{file}: drifts: expected int, got float 2.5"),
    ("row_seconds = 0\n", [], "{file}: row_seconds: expected a finite number > 0, got 0.0"),
    ("background = \"off\"\n", [],
     "{file}: background: expected one of 'panel_median' | 'off_median', got str 'off'"),
    ("", ["score=two_of_3"], "override score=two_of_3 (command line): score: expected one of "
                             "'straight_line' | 'two_of_three' | 'panel_maxima', got str 'two_of_3' "
                             "(did you mean 'two_of_three'?)"),
    ("", ["batch_size=0"], "override batch_size=0 (command line): batch_size: expected an int >= 1"),
    ("", ["pattern_snr=nan"], "override pattern_snr=nan (command line): pattern_snr: expected a "
                              "finite number, got nan"),
    # the flags' messages are the ones they always had
    ("max_drift = 0.1\n", ["--max-drift", "9"],
     "--max-drift: expected channels per row in (0, 4], got 9.0"),
    ("", ["--channel-hz", "inf"], "--channel-hz: expected a finite number > 0, got inf"),
    ("", ["--drifts", "3", "drifts=5"],
     "drifts: set twice on the command line: --drifts 3 and override drifts=5; give one of them"),
])
def test_a_bad_value_names_where_and_the_key(tmp_path, capsys, file, argv, message):
    path = tmp_path / "search.toml"
    path.write_text(file)
    out = tmp_path / "s.csv"
    assert main(["data", "--out", str(out), "--config", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message.format(file=path)}"), err
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.slow
def test_a_file_scores_as_the_same_flags_do(tmp_path, dedoppler_toml):
    from harness import write_kaggle_dir

    root = tmp_path / "kaggle"
    write_kaggle_dir(root, n_train=1, n_test=3, seed=2)
    by_file, by_flags = tmp_path / "file.csv", tmp_path / "flags.csv"
    assert main([str(root), "--out", str(by_file), "--no-progress", "--config",
                 str(dedoppler_toml)]) == 0
    assert main([str(root), "--out", str(by_flags), "--no-progress", *FLAGS]) == 0
    assert by_file.read_text() == by_flags.read_text()
    hits = (tmp_path / "file_hits.csv").read_text()
    assert hits == (tmp_path / "flags_hits.csv").read_text()
    # and the settings were used: the file's score is the target, its units make the Hz/s
    import pandas as pd

    table = pd.read_csv(tmp_path / "file_hits.csv", dtype={"id": str})
    target = pd.read_csv(by_file, dtype={"id": str})["target"]
    assert list(target) == pytest.approx(list(table["straight_line"]))
    assert list(table["drift_hz_s"]) == pytest.approx(list(table["drift_ch_per_row"] * 3 / 2.0))
