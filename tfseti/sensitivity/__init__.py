"""How deep did a scan look: injection-recovery completeness of the scan's own searches on a
cadence's own data, false alarms per MHz, SNR50 / SNR90 per drift rate, and transmitter limits.

``python -m tfseti.sensitivity`` plants signals in memory into the cadence (the files are only
read), runs the scan's window stage (band search, and a model when given) and its per-file search
and events on the planted data at the scan's thresholds, and matches what they report to what was
planted. Modules:

* :mod:`tfseti.sensitivity.plant`: the signals, their rendering, the noise estimate, and the
  cadence wrapper the scan reads through;
* :mod:`tfseti.sensitivity.layout`: units, slots, chunks and the seeded draws;
* :mod:`tfseti.sensitivity.match`: detections against the planted truth;
* :mod:`tfseti.sensitivity.stats`: Wilson intervals, SNR50 / SNR90 with their seeded bootstrap
  95 % intervals, false-alarm rates;
* :mod:`tfseti.sensitivity.limits`: S_min, EIRP_min and CWTFM (Enriquez et al. 2017);
* :mod:`tfseti.sensitivity.run`: the resumable run; :mod:`tfseti.sensitivity.report`: the tables;
  :mod:`tfseti.sensitivity.plot`: the figures.

A run whose ``--out`` is ``SCAN_OUT/sensitivity`` is shown on the scan's page
(``tfseti.scan.page``): the completeness curves, the SNR50 / SNR90 table and the false alarms.

No TensorFlow unless a model is given.
"""
