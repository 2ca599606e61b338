"""The scan's settings: plain data (no TensorFlow), written next to the outputs as ``scan.json``.

A settings file (``python -m tfseti.scan --config FILE.toml``) holds them as top-level keys named
as the fields (the ``settings`` of ``scan.json``, written as TOML, is such a file); the flags and
``key=value`` arguments override it (:func:`load_scan_settings`). The checks below name the flag
(``--overlap: ...``); a mistake in a file or an override is reported under the key's name.

Defaults and why:

* ``overlap`` 128 (half a 256-channel window): a needle's track over the whole cadence (~30
  min) spans ``drift x 30 min`` of frequency, 111 channels at 0.2 Hz/s; half-overlapping windows
  hold every track of up to 128 channels wholly inside some window, at twice the model's cost of
  ``overlap 0`` (the classical band search searches each channel once, whatever the overlap;
  touching hit windows are one candidate). (Without overlap, windows of 256 never cross a coarse channel boundary of
  Breakthrough Listen's 2^20-channel coarse channels; with it, every other window does at each
  boundary and is flagged ``edge``.)
* ``drifts`` auto: enough drift rates that a straight path through the whole cadence is never
  more than half a channel from the searched rate at its ends (``2 ceil(max_drift x span) + 1``,
  span = integrations from the cadence's reference time to its last integration); 399 for the
  GBT high-resolution product.
* ``max_drift_hz`` 0.52 Hz/s: the classical search's 0.2 channels per row at the Kaggle
  resolution (2.79 Hz x 1.07 s), the range the detector was tuned on. Paths that drift further
  leave a 256-channel window within the cadence anyway (0.52 Hz/s x ~30 min = 335 channels).
* ``min_probability`` 0.5 / ``min_dedoppler`` 6: a window is a hit when the model's (ensemble
  mean) probability or the classical ``two_of_three`` score (the second-best ON file's SNR along
  the path minus the largest OFF SNR near it) reaches its threshold. The search's SNR is the
  path's sum over a file's integrations in units of its noise, with the needle's power in the
  path's whole channel only: a setigen needle of nominal SNR 40 and 10 Hz width measured ~17 per
  file and 17.4 two_of_three, the 509 noise-only windows of that cadence at most 2.1 (median
  1.2). So 6 keeps setigen SNR-20 needles; over a whole GBT band (~500 k windows) expect some
  noise windows above it, ranked below the real hits by the model.
* ``read_mb`` 32: channels are read for all six files in blocks of about this many MB of float32
  (plus the band search's reach either side). Peak memory follows it (the block, its cleaned
  copy, the windows when a model needs them, and the per-file search's coarse channel beside
  them), not the file size (``tests/scan/test_scan_large.py`` checks that the peak does not grow
  with the file at 32). On the 201 MB cadence of ``benchmarks/scan_bench.py`` without a model
  the scan peaked at 620-637 MB at 32 and at 723-748 MB at 64 (turboSETI: 589 MB), and took
  2.3 s at 32, 2.4-2.5 s at 64 and 2.8 s at 16 (the halo re-read is under 1 % of a block). It was
  64 before: a scan folder started with the old default resumes with ``--read-mb 64`` (the
  refusal names the setting).
* ``hit_snr`` 10: the threshold of the per-file hit search (``tfseti.scan.filehits``: turboSETI's
  ``find_doppler`` on each file alone, its ``.dat`` rows), in turboSETI's SNR (the drift sum over
  one file's integrations, normalised by the median and the 5-95 % clipped std of the coarse
  channel's zero-drift spectrum). turboSETI's ``FindDoppler`` default is 25 (Enriquez et al. 2017
  searched at 25); 10 is what later Breakthrough Listen searches and ``benchmarks/scan_bench.py``
  use. On the tests' setigen cadence (16 integrations, chi^2 noise, 4096 channels) a needle of
  setigen SNR 20 measured 22-25, one of SNR 40 46-48, and noise at most 6: 25 would lose the
  SNR-20 needle in two of its three ON files. Pass ``--hit-snr 25`` for turboSETI's default.
  The search's drift range is ``max_drift_hz`` (written as the ``.dat``'s ``max_drift_rate``).
* ``event_filter`` 3: the level of ``find_event_pipeline`` run on the six ``.dat`` files
  (``tfseti.dedoppler.events``; turboSETI's default): 1 every ON hit, 2 ON hits with no OFF hit
  within ``max_drift_rate x obs_length``, 3 level-2 hits found in every ON file along their drift.
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass
from typing import Literal

from tfseti.config import load_settings
from tfseti.scan.windows import TIME_RESAMPLES

DEFAULT_MAX_DRIFT_HZ = 0.52
# Channels a path may move inside one block of summed rows (the Kaggle search: 7 rows x 0.2).
BLOCK_SMEAR_CHANNELS = 1.4
MAX_DRIFTS = 2049
# Choices as types: a settings file's or override's wrong choice is refused by the loader with
# a "did you mean" (``tfseti.config``); __post_init__ checks values built directly.
TimeResample = Literal["area", "linear"]
Tta = Literal["none", "flips"]
assert typing.get_args(TimeResample) == TIME_RESAMPLES


@dataclass(frozen=True)
class ScanSettings:
    overlap: int = 128
    fine_per_coarse: int | str | None = "auto"
    time_resample: TimeResample = "area"
    tta: Tta = "none"
    batch_size: int = 32
    max_drift_hz: float = DEFAULT_MAX_DRIFT_HZ
    drifts: int | str = "auto"
    pattern_snr: float = 6.0
    min_probability: float = 0.5
    min_dedoppler: float = 6.0
    read_mb: float = 32.0
    top: int = 24
    hit_snr: float = 10.0
    event_filter: int = 3

    def __post_init__(self):
        if self.time_resample not in TIME_RESAMPLES:
            raise ValueError(f"--time-resample: expected one of {TIME_RESAMPLES}, got {self.time_resample!r}")
        if self.tta not in ("none", "flips"):
            raise ValueError(f"--tta: expected none or flips, got {self.tta!r}")
        ints = [("batch_size", 1), ("overlap", 0), ("top", 0)]
        if self.drifts != "auto":
            ints.append(("drifts", 1))
        for name, low in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                what = "auto or an integer" if name == "drifts" else "an integer"
                raise ValueError(f"--{name.replace('_', '-')}: expected {what} >= {low}, got {value!r}")
        for name in ("max_drift_hz", "read_mb"):
            if not 0 < float(getattr(self, name)) < math.inf:
                raise ValueError(f"--{name.replace('_', '-')}: expected a finite number > 0, got "
                                 f"{getattr(self, name)!r}")
        # A NaN threshold compares False with everything: no panel present, no hit, silently.
        for name in ("pattern_snr", "min_dedoppler"):
            if not math.isfinite(float(getattr(self, name))):
                raise ValueError(f"--{name.replace('_', '-')}: expected a finite number, got "
                                 f"{getattr(self, name)!r}")
        if not (math.isfinite(float(self.hit_snr)) and self.hit_snr > 0):
            raise ValueError(f"--hit-snr: expected a finite number > 0, got {self.hit_snr!r}")
        if self.event_filter not in (1, 2, 3) or isinstance(self.event_filter, bool):
            raise ValueError(f"--event-filter: expected 1, 2 or 3, got {self.event_filter!r}")
        if not 0.0 <= self.min_probability <= 1.0:
            raise ValueError(f"--min-probability: expected a number in [0, 1], got {self.min_probability!r}")
        fpc = self.fine_per_coarse
        if not (fpc in (None, "auto", "none") or (isinstance(fpc, int) and fpc >= 2)):
            raise ValueError(f"--fine-per-coarse: expected auto, none or an integer >= 2, got {fpc!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def load_scan_settings(config=None, overrides=(), flags=None) -> ScanSettings:
    """The scan's settings: the defaults, then the TOML file ``config`` (top-level keys), then the
    flags given (``{field: (flag, value)}``), then the ``key=value`` ``overrides``
    (:func:`tfseti.config.load_settings`: one ``ConfigError`` naming the file, flag or override
    and the key; a key set both by a flag and by an override is refused)."""
    return load_settings(ScanSettings, config, overrides, flags)
