"""Search real observations: ``python -m tfseti.scan`` over six-file ABACAD cadences of
filterbank (``.fil``) or HDF5 (``.h5``) files.

One module per step, data flowing one way: ``tfseti.io.observations`` (open and check the files,
read channel ranges) -> ``windows`` (the window plan, DC spikes and coarse-channel flags, the
model's snippets) -> ``stream`` (read groups, batches) -> ``scoring`` (SavedModels on the snippets,
the classical de-Doppler search on the native integrations, window-table rows) -> ``filehits``
(each file searched alone as turboSETI's ``find_doppler`` does: its ``.dat`` hits, then
``find_event_pipeline``'s events) -> ``outputs`` (cadence folders, resumable; ``dat``: turboSETI hit
tables) -> ``page`` (the top-N candidates).
``run`` is the local runner, ``beam`` the same scan as an Apache Beam pipeline; ``settings`` holds
the options as plain data; ``__main__`` is the CLI.
"""
