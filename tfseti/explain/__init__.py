"""Grad-CAM: where in a cadence a trained network found the evidence for its score.

``python -m tfseti.explain --model RUN --ids ID1,ID2 --out DIR`` loads each id's out-of-fold
network (``fold<K>/model.keras``, safe mode), computes Grad-CAM on the view the network was
trained on (:mod:`tfseti.explain.gradcam`), maps the heat back onto the six-panel waterfall (or,
for the ``dedoppler`` view, onto the drift-rate maps; :mod:`tfseti.explain.panels`) and writes a
PNG per id and ``gradcam.csv`` with the score and the heat's peak. The run report
(``tfseti.report``) shows the same heat maps for its example cadences.

Last stage, beside the report: it reads run folders and data and imports ``tfseti.models`` and
``tfseti.data``, never the trainer. Names load lazily, so importing the package is cheap.
"""

_LAZY = {
    "gradcam": "gradcam", "GradCam": "gradcam", "GradCamNetwork": "gradcam",
    "GradCamError": "gradcam", "feature_layer": "gradcam",
    "map_heat": "panels", "PanelHeat": "panels",
    "ExplainError": "networks", "FoldNetwork": "networks", "find_networks": "networks",
    "explain_cadences": "heatmaps", "Explanation": "heatmaps",
    "explain_run": "run",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
