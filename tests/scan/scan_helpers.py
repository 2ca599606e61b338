"""Helpers of the scan tests: a setigen-made observation cadence with needles and RFI at known
frequencies, and a SavedModel with the trainer's serving signature whose probability is the
classical ON/OFF score of the snippet it is given (imported by the test modules; not a conftest).

The "oracle" model is not trained: its job in the tests is to be a model whose answer is known,
so that a wrong snippet (panels out of order, time or frequency mangled by the resampling, the
wrong channels) shows as a missed needle.
"""

from __future__ import annotations

import os

from harness import once_per_session

from tfseti.synth.observation import ObservationNeedle, ObservationRFI, write_observation_cadence

FCHANS = 4096
FCH1 = 6000.0
DF_HZ = 2.7939677238464355
# Needles (ON files only) and RFI (all six), MHz at the start of the first file. The drifts move a
# needle by at most ~110 channels over the cadence (inside one half-overlapping window).
NEEDLES = (ObservationNeedle(5999.9980, 0.15, 40.0), ObservationNeedle(5999.9950, -0.15, 25.0),
           ObservationNeedle(5999.9920, 0.0, 30.0), ObservationNeedle(5999.9897, 0.05, 20.0))
RFI = (ObservationRFI(5999.9966, 0.0, 80.0), ObservationRFI(5999.9935, -0.1, 60.0))


def channel_of(freq_mhz: float) -> float:
    return (FCH1 - freq_mhz) * 1e6 / DF_HZ


def _make_cadences(root: str) -> dict:
    out = {}
    for fmt in ("h5", "fil"):
        paths = write_observation_cadence(os.path.join(root, fmt), fchans=FCHANS, tchans=16,
                                          fch1_mhz=FCH1, needles=NEEDLES, rfi=RFI, noise="chi2",
                                          fmt=fmt, seed=3)
        out[fmt] = paths
    return out


def shared_cadences(tmp_path_factory, worker_id: str) -> dict:
    """``{"h5": [six paths], "fil": [six paths]}``: the same cadence in both formats."""
    return once_per_session(tmp_path_factory, worker_id, "scan_cadences", _make_cadences)


def export_oracle(path: str) -> str:
    """A SavedModel taking ``float16[None, 6, 273, 256]`` whose probability is
    ``sigmoid((two_of_three - 6) / 2)`` of the classical search on the snippet."""
    import tensorflow as tf

    from tfseti.data.config import DedopplerConfig
    from tfseti.dedoppler.scores import _score_function

    score = _score_function(DedopplerConfig(), 273)

    class Oracle(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 6, 273, 256], tf.float16, name="cadence")])
        def serve(self, cadence):
            two_of_three = score(cadence)[1]
            return {"output_0": tf.sigmoid((two_of_three - 6.0) / 2.0)}

    module = Oracle()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def shared_oracle(tmp_path_factory, worker_id: str) -> str:
    return once_per_session(tmp_path_factory, worker_id, "scan_oracle",
                   lambda root: export_oracle(os.path.join(root, "saved_model")))
