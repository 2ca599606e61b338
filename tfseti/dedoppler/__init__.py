"""The classical search (incoherent de-Doppler, ON/OFF scores, hit tables): ``python -m tfseti.dedoppler``.

The transform itself is ``tfseti.data.drift_sums`` (shared with the ``dedoppler`` view of the
models); ``scores`` turns its maps into cadence scores and hits; ``__main__`` is the CLI.
"""
