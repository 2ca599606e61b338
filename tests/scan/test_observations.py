"""Reading observation files and cadences (``tfseti.io.observations``): channel-range reads equal
blimpy's, the header checks name the file and field, cadence lists."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from scan_helpers import FCHANS, shared_cadences

from tfseti.io.observations import ObservationError, open_cadence, open_observation, read_cadence_list
from tfseti.synth.observation import write_observation_cadence


@pytest.fixture(scope="module")
def cadences(tmp_path_factory, worker_id):
    return shared_cadences(tmp_path_factory, worker_id)


@pytest.mark.parametrize("fmt", ["h5", "fil"])
def test_channel_reads_equal_blimpy(cadences, fmt):
    from blimpy import Waterfall

    path = cadences[fmt][2]
    obs = open_observation(path)
    try:
        whole = Waterfall(path).data[:, 0, :]
        assert (obs.rows, obs.nchans) == whole.shape == (16, FCHANS)
        np.testing.assert_array_equal(obs.read(1000, 1256), whole[:, 1000:1256])
        np.testing.assert_array_equal(obs.read(0, FCHANS), whole)
        assert obs.source_name == "SYNTH_ON" and obs.foff < 0 and obs.tsamp == pytest.approx(18.253611008)
        with pytest.raises(ObservationError, match="outside the file's 4096"):
            obs.read(4000, 4100)
    finally:
        obs.close()


def test_cadence_facts(cadences):
    cad = open_cadence(cadences["h5"])
    try:
        assert cad.rows == 16 and cad.nchans == FCHANS and cad.notes == []
        assert cad.gap_rows == round(30.0 / 18.253611008)    # the writer's 30 s slew
        assert cad.read(10, 20).shape == (6, 16, 10)
        assert cad.freq_mhz(0) == cad.fch1 and cad.freq_mhz(1) == pytest.approx(cad.fch1 + cad.foff)
        assert cad.input_bytes == 6 * 16 * FCHANS * 4
    finally:
        cad.close()


def _other(tmp_path, **kw):
    args = dict(fchans=FCHANS, tchans=16, noise="chi2", fmt="h5", seed=9)
    args.update(kw)
    return write_observation_cadence(str(tmp_path / "other"), **args)


def test_mismatched_headers_name_file_and_field(cadences, tmp_path):
    paths = list(cadences["h5"])
    shifted = _other(tmp_path, fch1_mhz=6000.5)
    with pytest.raises(ObservationError, match=r"synth_3_OFF.h5: header field 'fch1' = 6000.5"):
        open_cadence(paths[:3] + [shifted[3]] + paths[4:])
    narrow = write_observation_cadence(str(tmp_path / "narrow"), fchans=2048, tchans=16,
                                       noise="chi2", fmt="h5", seed=1)
    with pytest.raises(ObservationError, match=r"synth_1_OFF.h5: header field 'nchans' = 2048"):
        open_cadence(paths[:1] + [narrow[1]] + paths[2:])
    coarse = _other(tmp_path / "dt", dt_s=10.0)
    with pytest.raises(ObservationError, match=r"header field 'tsamp' = 10.0"):
        open_cadence(paths[:5] + [coarse[5]])


def test_order_is_checked_against_source_names_and_tstart(cadences, tmp_path):
    paths = list(cadences["fil"])
    with pytest.raises(ObservationError, match=r"synth_1_OFF.fil: header field 'source_name' = "
                                               r"'SYNTH_OFF1', but file 1 of an ABACAD cadence is ON"):
        open_cadence([paths[1], paths[0], *paths[2:]])
    with pytest.raises(ObservationError, match=r"synth_2_ON.fil: header field 'source_name' = "
                                               r"'SYNTH_ON' is the ON source, but file 2"):
        open_cadence([paths[0], paths[2], paths[1], paths[3], paths[4], paths[5]])
    with pytest.raises(ObservationError, match=r"synth_1_OFF.fil: header field 'tstart' .* is not after"):
        open_cadence([paths[4], paths[1], paths[2], paths[3], paths[0], paths[5]])
    same = write_observation_cadence(str(tmp_path / "same"), fchans=FCHANS, tchans=16, noise="chi2",
                                     fmt="h5", seed=2, off_sources=("SYNTH_ON",) * 3)
    cad = open_cadence(same)
    assert "ON/OFF taken from the list order" in cad.notes[0]
    cad.close()


def test_bad_files_are_refused(cadences, tmp_path):
    with pytest.raises(ObservationError, match="expected 6 files"):
        open_cadence(cadences["h5"][:5])
    with pytest.raises(ObservationError, match="listed twice"):
        open_cadence(cadences["h5"][:5] + cadences["h5"][:1])
    with pytest.raises(ObservationError, match="nope.h5: no such file"):
        open_observation(str(tmp_path / "nope.h5"))
    text = tmp_path / "x.npy"
    text.write_bytes(b"\x93NUMPY")
    with pytest.raises(ObservationError, match="expected a filterbank .fil or HDF5 .h5 file"):
        open_observation(str(text))
    cut = tmp_path / "cut.fil"
    shutil.copy(cadences["fil"][0], cut)
    with open(cut, "r+b") as handle:
        handle.truncate(os.path.getsize(cut) - 3)
    with pytest.raises(ObservationError, match="not a whole number of integrations .*truncated"):
        open_observation(str(cut))
    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"not hdf5")
    with pytest.raises(ObservationError, match="fake.h5: not an HDF5 file"):
        open_observation(str(fake))


def test_nifs_other_than_one_is_refused(tmp_path):
    import h5py

    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as handle:
        data = handle.create_dataset("data", data=np.zeros((16, 2, 64), np.float32))
        data.attrs.update({"fch1": 6000.0, "foff": -1e-6, "tsamp": 1.0, "nifs": 2, "nchans": 64})
    with pytest.raises(ObservationError, match=r"two.h5: header field 'nifs' = 2: expected 1"):
        open_observation(str(path))


def test_cadence_list(cadences, tmp_path):
    lst = tmp_path / "obs.lst"
    lines = ["# two cadences", *cadences["h5"], "", *[os.path.relpath(p, tmp_path) for p in cadences["fil"]]]
    lst.write_text("\n".join(lines) + "\n")
    groups = read_cadence_list(str(lst))
    assert groups[0] == cadences["h5"]
    assert [os.path.realpath(p) for p in groups[1]] == [os.path.realpath(p) for p in cadences["fil"]]
    lst.write_text("\n".join(cadences["h5"][:4]) + "\n")
    with pytest.raises(ObservationError, match="six files per cadence.*got 4"):
        read_cadence_list(str(lst))
    lst.write_text("a.txt\n")
    with pytest.raises(ObservationError, match="line 1: expected a .fil or .h5 path"):
        read_cadence_list(str(lst))
