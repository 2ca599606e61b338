"""The report's figures, written as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from tfseti.io.kaggle import ON_PANELS  # noqa: E402
from tfseti.metrics import auc, is_defined  # noqa: E402

DPI = 80


def _save(fig, path: str) -> str:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def training_curves(logs: dict[int, "object"], path: str) -> str:
    """Loss and validation AUC against epoch, one line per fold (``logs``: fold -> log.csv)."""
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for fold, log in sorted(logs.items()):
        epochs = log["epoch"].to_numpy() + 1
        line = None
        if "loss" in log:
            (line,) = ax_loss.plot(epochs, log["loss"], marker="o", label=f"fold {fold} train")
        if "val_loss" in log:
            ax_loss.plot(epochs, log["val_loss"], marker="x", linestyle="--",
                         color=None if line is None else line.get_color(), label=f"fold {fold} val")
        if "val_auc" in log:
            ax_auc.plot(epochs, log["val_auc"], marker="o", label=f"fold {fold}")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_auc.set(title="validation AUC (whole fold)", xlabel="epoch", ylim=(0.0, 1.02))
    epochs = sorted({int(e) + 1 for log in logs.values() for e in log["epoch"]})
    for ax in (ax_loss, ax_auc):
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


def roc_curves(oof, path: str) -> str:
    """ROC of every fold with both classes, and of all out-of-fold predictions together."""
    fig, ax = plt.subplots(figsize=(5.2, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for fold, rows in sorted(oof.groupby("fold")):
        value = auc(rows["target"], rows["score"])
        if not is_defined(value):
            ax.plot([], [], " ", label=f"fold {fold}: AUC undefined (one class)")
            continue
        fpr, tpr, _ = roc_curve(rows["target"], rows["score"])
        ax.plot(fpr, tpr, linewidth=1.2, label=f"fold {fold}: AUC {value:.4f}")
    value = auc(oof["target"], oof["score"])
    if is_defined(value) and oof["fold"].nunique() > 1:
        fpr, tpr, _ = roc_curve(oof["target"], oof["score"])
        ax.plot(fpr, tpr, color="black", linewidth=2.2, label=f"out-of-fold: AUC {value:.4f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title="ROC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def roc_versus(curves: dict, path: str, title: str) -> str:
    """ROC curves of several scorers on the same records (``{label: (target, score)}``)."""
    fig, ax = plt.subplots(figsize=(5.2, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for label, (target, score) in curves.items():
        value = auc(target, score)
        if not is_defined(value):
            ax.plot([], [], " ", label=f"{label}: AUC undefined (one class)")
            continue
        fpr, tpr, _ = roc_curve(target, score)
        ax.plot(fpr, tpr, linewidth=1.8, label=f"{label}: AUC {value:.4f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def waterfall(cadence: np.ndarray, title: str, path: str) -> str:
    """Every panel of one cadence, top to bottom in observing order (time down, frequency
    across), ON panels framed; one colour scale for the whole cadence so that a needle's
    brightness compares across panels. One image with gaps between panels: a grid of six axes
    takes five times longer to draw."""
    cadence = np.asarray(cadence, dtype=np.float32)
    n_panels, n_time, n_freq = cadence.shape
    on_panels = ON_PANELS if n_panels == 6 else tuple(range(n_panels))  # ON-only shards: A A A
    low, high = np.percentile(cadence, [1.0, 99.5])
    gap = max(1, n_time // 10)
    stride = n_time + gap
    image = np.full((n_panels * stride - gap, n_freq), np.nan, dtype=np.float32)
    for index in range(n_panels):
        image[index * stride:index * stride + n_time] = cadence[index]
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    fig = plt.figure(figsize=(4.6, 1.2 * n_panels + 0.7))
    ax = fig.add_axes((0.17, 0.07, 0.8, 0.86))
    ax.imshow(image, aspect="auto", cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ticks, labels = [], []
    for index in range(n_panels):
        top = index * stride
        ticks.append(top + n_time / 2)
        on = index in on_panels
        labels.append(f"{index} {'ON' if on else 'OFF'}")
        if on:
            ax.add_patch(Rectangle((-0.5, top - 0.5), n_freq, n_time, fill=False,
                                   edgecolor="crimson", linewidth=2))
    ax.set_yticks(ticks, labels, fontsize=8)
    for label, index in zip(ax.get_yticklabels(), range(n_panels)):
        if index in on_panels:
            label.set(color="crimson", fontweight="bold")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("frequency channel", fontsize=8)
    ax.set_ylabel(f"time, {n_time} rows per panel", fontsize=8)
    ax.set_title(title, fontsize=7)
    return _save(fig, path)
