"""``python -m tfseti.report RUN_DIR``: one HTML page (plus PNGs) about a training run.

Summary (CV / out-of-fold AUC, per-fold best val AUC, precision, replicas), training curves,
ROC per fold and out of fold, calibration (the run's ``calibration.json``: reliability diagram,
ECE over 15 equal-width bins before and after), AUC by needle family and SNR bin when the data's ``truth.csv`` is
found, waterfalls of the most confident true / false positives and the most missed needles,
Grad-CAM heat maps of the first of those (``tfseti.explain``, with each fold's ``model.keras``),
and the config. Reads files only (run folder, shard manifest, Kaggle folder, truth, networks):
it never imports the trainer, which calls :func:`write_report` at the end of training.
"""

__all__ = ["write_report", "RunFolderError"]


def __getattr__(name):
    # Imported on first use: the page helpers (tfseti.report.page, which the scan's page uses)
    # must not pull matplotlib and scikit-learn (~4 s) into every process that imports them.
    if name == "write_report":
        from tfseti.report.build import write_report

        return write_report
    if name == "RunFolderError":
        from tfseti.report.runs import RunFolderError

        return RunFolderError
    raise AttributeError(f"module 'tfseti.report' has no attribute {name!r}")
