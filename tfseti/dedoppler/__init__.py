"""The classical search (incoherent de-Doppler, ON/OFF scores, hit tables): ``python -m tfseti.dedoppler``.

The transform itself is ``tfseti.data.drift_sums`` (shared with the ``dedoppler`` view of the
models); ``scores`` turns its maps into cadence scores and hits; ``__main__`` is the CLI.

Without TensorFlow (numpy + Numba): ``taylor`` holds turboSETI's Taylor-tree de-Doppler and a
brute-force reference; ``hitsearch`` is turboSETI's per-file hit search of one coarse channel on
top of it (``find_doppler``'s normalisation, drift grid, thresholds and top-hit windows, its
``.dat`` rows; byte for byte turboSETI 2.3.2's ``.dat`` on the files of
``tests/dedoppler/test_hits_parity.py``); ``events`` is turboSETI's ``find_event_pipeline`` on
the ``.dat`` files; ``window_scores`` is ``scores`` (the ON/OFF window scores of the observation
scan) without TensorFlow.
"""
