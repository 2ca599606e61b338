"""``python -m tfseti.scan --config FILE.toml key=value ...``: the scan's settings from a TOML file,
the flags and ``key=value`` overrides (``tfseti.config.load_settings``): a file gives what the
same flags give, flags given and overrides beat the file, a key given twice on the command line
is refused, and every mistake is one ``error:`` line naming the file, flag or override and the key,
with nothing written to ``--out``."""

from __future__ import annotations

import json

import pytest
from scan_helpers import shared_cadences

from tfseti.scan.__main__ import main, parse_command_line, split_extras
from tfseti.scan.settings import ScanSettings

# Every kind of field: int, float, int-or-word, word choices, Literal-like int.
FILE = """\
overlap = 0
fine_per_coarse = "none"
time_resample = "linear"
tta = "flips"
batch_size = 8
max_drift_hz = 0.3
drifts = 33
pattern_snr = 5
min_probability = 0.7
min_dedoppler = 7.5
read_mb = 16
top = 3
hit_snr = 12
event_filter = 2
"""
FLAGS = ["--overlap", "0", "--fine-per-coarse", "none", "--time-resample", "linear", "--tta", "flips",
         "--batch-size", "8", "--max-drift-hz", "0.3", "--drifts", "33", "--pattern-snr", "5",
         "--min-probability", "0.7", "--min-dedoppler", "7.5", "--read-mb", "16", "--top", "3",
         "--hit-snr", "12", "--event-filter", "2"]
BASE = ["--cadence", "a.h5,b.h5,c.h5,d.h5,e.h5,f.h5"]


def settings(tmp_path, *argv) -> ScanSettings:
    return parse_command_line([*BASE, "--out", str(tmp_path / "out"), *argv])[1]


@pytest.fixture
def scan_toml(tmp_path):
    path = tmp_path / "my_scan.toml"
    path.write_text(FILE)
    return path


def test_a_file_gives_what_the_same_flags_give(tmp_path, scan_toml):
    from_file, from_flags = settings(tmp_path, "--config", str(scan_toml)), settings(tmp_path, *FLAGS)
    assert from_file == from_flags != ScanSettings()
    assert from_file.to_dict() == from_flags.to_dict()     # what scan.json records
    assert settings(tmp_path) == ScanSettings()             # no file, no flag: the defaults
    # ".toml" may be left out, as for recipes
    assert settings(tmp_path, "--config", str(scan_toml)[: -len(".toml")]) == from_file


def test_flags_given_and_overrides_beat_the_file(tmp_path, scan_toml):
    config = ["--config", str(scan_toml)]
    assert settings(tmp_path, *config, "--overlap", "64").overlap == 64
    got = settings(tmp_path, *config, "hit_snr=15", "drifts=auto", "fine_per_coarse=1024", "tta=none")
    assert (got.hit_snr, got.drifts, got.fine_per_coarse, got.tta) == (15.0, "auto", 1024, "none")
    assert got.overlap == 0 and got.top == 3           # the file's other keys stay
    # overrides after (or between) the flags, and a flag left out does not hide the file's value
    got = settings(tmp_path, "top=1", *config, "--read-mb", "8", "overlap=32")
    assert (got.top, got.read_mb, got.overlap, got.batch_size) == (1, 8.0, 32, 8)


def test_a_typo_is_one_line_with_the_closest_key_and_writes_nothing(tmp_path, scan_toml, capsys):
    out = tmp_path / "out"
    assert main([*BASE, "--out", str(out), "--config", str(scan_toml), "hit_snrr=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: override hit_snrr=3 (command line): hit_snrr: unknown key")
    assert "did you mean 'hit_snr'?" in err and err.count("\n") == 1
    assert not out.exists()
    bad = tmp_path / "typo.toml"
    bad.write_text("hit_snr = 12\nover_lap = 0\n")
    assert main([*BASE, "--out", str(out), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: over_lap: unknown key") and "did you mean 'overlap'?" in err
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("file, argv, message", [
    # a file's bad value: the file and the key
    ("overlap = -1\n", [], "{file}: overlap: expected an integer >= 0, got -1"),
    ("hit_snr = 0\n", [], "{file}: hit_snr: expected a finite number > 0, got 0.0"),
    ("overlap = 1.5\n", [], "{file}: overlap: expected int, got float 1.5"),
    ("drifts = \"many\"\n", [], "{file}: drifts: expected auto or an integer >= 1, got 'many'"),
    ("tta = \"flip\"\n", [], "{file}: tta: expected one of 'none' | 'flips', got str 'flip' "
                             "(did you mean 'flips'?)"),
    ("hit_snr = \n", [], "{file}: <root>: not valid TOML"),
    # an override's: the override and the key (even when the file is fine)
    ("overlap = 0\n", ["read_mb=0"],
     "override read_mb=0 (command line): read_mb: expected a finite number > 0, got 0.0"),
    ("", ["event_filter=4"],
     "override event_filter=4 (command line): event_filter: expected 1, 2 or 3, got 4"),
    ("", ["min_probability=nan"],
     "override min_probability=nan (command line): min_probability: expected a finite number, got nan"),
    ("", ["hit_snr"], "unknown arguments ['hit_snr'] (Beam pipeline options need --runner)"),
    # a flag's: the flag, in the words it always had
    ("overlap = 0\n", ["--overlap", "-1"], "--overlap: expected an integer >= 0, got -1"),
    ("", ["--read-mb", "inf"], "--read-mb: expected a finite number > 0, got inf"),
    # one key twice on the command line: refused, whichever order
    ("", ["--hit-snr", "12", "hit_snr=15"],
     "hit_snr: set twice on the command line: --hit-snr 12.0 and override hit_snr=15; give one of them"),
])
def test_a_bad_value_names_where_and_the_key(tmp_path, capsys, file, argv, message):
    path = tmp_path / "scan.toml"
    path.write_text(file)
    out = tmp_path / "out"
    assert main([*BASE, "--out", str(out), "--config", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message.format(file=path)}"), err
    assert err.count("\n") == 1 and not out.exists()


def test_a_missing_settings_file_is_one_line_with_the_closest_name(tmp_path, scan_toml, capsys,
                                                                   monkeypatch):
    out = tmp_path / "out"
    assert main([*BASE, "--out", str(out), "--config", str(tmp_path / "my_scna.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: settings file '{tmp_path / 'my_scna.toml'}' not found")
    assert f"did you mean '{scan_toml}'?" in err and err.count("\n") == 1 and not out.exists()
    monkeypatch.chdir(tmp_path)   # a training recipe's name is no scan settings file
    with pytest.raises(FileNotFoundError, match="settings file 'cpu' not found"):
        settings(tmp_path, "--config", "cpu")


def test_overrides_and_beam_options_are_told_apart():
    assert split_extras(["hit_snr=12", "--direct_num_workers", "1", "scan.top=0"]) == (
        ["hit_snr=12", "scan.top=0"], ["--direct_num_workers", "1"])
    # a Beam option's value (--labels team=seti) is Beam's; --name=value options are whole
    assert split_extras(["--labels", "team=seti", "--project=p", "overlap=0"]) == (
        ["overlap=0"], ["--labels", "team=seti", "--project=p"])
    assert split_extras(["gs://bucket/x", "-1"]) == ([], ["gs://bucket/x", "-1"])


@pytest.mark.slow
def test_the_file_settings_are_the_ones_scanned_and_recorded(tmp_path_factory, worker_id, tmp_path,
                                                             capsys):
    """The resolved settings are what scan.json records; a rerun with the same settings as flags
    resumes the scan (the settings are the same), one with another value is refused."""
    cadences = shared_cadences(tmp_path_factory, worker_id)["h5"]
    path = tmp_path / "quick.toml"
    path.write_text("overlap = 0\nmax_drift_hz = 0.2\ntop = 0\nhit_snr = 12\n")
    out = tmp_path / "out"
    argv = ["--cadence", ",".join(cadences), "--out", str(out), "--no-progress"]
    assert main([*argv, "--config", str(path), "event_filter=2"]) == 0
    recorded = json.loads((out / "scan.json").read_text())["settings"]
    expected = ScanSettings(overlap=0, max_drift_hz=0.2, top=0, hit_snr=12.0, event_filter=2)
    assert recorded == expected.to_dict()
    capsys.readouterr()
    flags = ["--overlap", "0", "--max-drift-hz", "0.2", "--top", "0", "--hit-snr", "12",
             "--event-filter", "2"]
    assert main([*argv, *flags]) == 0
    assert "skipped" in capsys.readouterr().out
    assert main([*argv, "--config", str(path)]) == 2          # event_filter 3: another search
    assert "holds a scan of cadence" in capsys.readouterr().err
