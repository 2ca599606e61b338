"""A 6-file cadence of more than 1 GB is scanned without holding it in memory: the scan's peak
memory grows by a small fraction of the input over the same scan of a 50 MB cadence."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tfseti.synth.observation import ObservationNeedle, write_large_cadence

ROWS, DT = 273, 1.073741824          # Kaggle-like integrations: few windows for many bytes
CHANNELS = 152_832                   # 6 x 273 x 152832 x 4 B = 1.001 GB
RUN = ("import resource, sys\n"
       "from tfseti.scan.__main__ import main\n"
       "code = main(sys.argv[1:])\n"
       "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
       "sys.exit(code)\n")


def _scan(lst: str, out: str) -> int:
    """Peak RSS (KB) of a classical scan of the cadence list ``lst``, in its own process."""
    args = ["--cadence-list", lst, "--out", out, "--overlap", "0", "--drifts", "65", "--top", "0",
            "--read-mb", "32", "--batch-size", "32", "--no-progress"]
    done = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [l for l in done.stdout.splitlines() if l.startswith("MAXRSS_KB")]
    return int(line.split()[1])


@pytest.mark.slow
def test_a_gigabyte_cadence_streams(tmp_path):
    needle = ObservationNeedle(6000.0 - 100_000 * 2.7939677238464355e-6, 0.05, 60.0)
    kw = dict(tchans=ROWS, dt_s=DT, fmt="fil", needles=[needle], seed=4)
    big = write_large_cadence(str(tmp_path / "big"), fchans=CHANNELS, **kw)
    size = sum(os.path.getsize(p) for p in big)
    assert size >= 1e9
    small = write_large_cadence(str(tmp_path / "small"), fchans=CHANNELS // 20, **{**kw, "needles": []})
    base = _scan(os.path.join(os.path.dirname(small[0]), "cadence.lst"), str(tmp_path / "s_out"))
    for path in small:        # keep the disk use of the test down
        os.remove(path)
    peak = _scan(os.path.join(os.path.dirname(big[0]), "cadence.lst"), str(tmp_path / "b_out"))
    grown_mb = (peak - base) / 1024
    print(f"peak RSS: {base / 1024:.0f} MB (50 MB cadence), {peak / 1024:.0f} MB ({size / 1e9:.2f} GB)")
    # 20x the data; the read groups are 32 MB: the peak grows by far less than the file
    assert grown_mb < 250, (base, peak)
    (folder,) = [d for d in (tmp_path / "b_out").iterdir() if d.is_dir() and d.name != "png"]
    info = json.loads((folder / "cadence.json").read_text())
    assert info["input_bytes"] == 6 * ROWS * CHANNELS * 4 and info["windows"] == CHANNELS // 256
    hits = pd.read_csv(folder / "hits.csv")
    assert (hits.hit_channel - 100_000).abs().min() <= 3
