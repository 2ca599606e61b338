"""Helpers of the report tests: a real tiny training run, reading values back from the page,
and a headless Chromium on a local http server (imported by the test modules; not a conftest)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import threading

from harness import once_per_session

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run")
# The small files of a fold folder (the reporter reads nothing else of it).
FOLD_FILES = ("config.json", "result.json", "oof.csv", "log.csv")


def train_tiny_run(root: str) -> dict:
    """Synthetic Kaggle folder (with truth.csv) -> 2-fold shards -> ``tfseti.train --fold all``
    for one step per fold on a 32x32 view: a real run folder. Returns its paths."""
    import keras

    from tfrecords_tools.convert import convert
    from tfseti.synth import generate_dataset
    from tfseti.train import cli

    data, shards, run = (os.path.join(root, name) for name in ("data", "shards", "run"))
    generate_dataset(data, n_train=16, n_test=0, positive_rate=0.5, snr=(60.0, 150.0), seed=0,
                     workers=1, progress=False)
    convert(data, shards, split="train", folds=2, seed=0, shard_mb=20, workers=1, progress=False,
            log=lambda _: None)
    try:
        code = cli.main([
            "--config", "cpu_demo", "--strategy", "cpu", "--fold", "all", "--data", shards,
            "--out", run, "--no-report", "model.name=plain_cnn_s",  # the tests write the report
            "view.resize=[32, 32]", "train.epochs=1", "train.steps_per_epoch=1",
            "train.batch_per_replica=8", "train.steps_per_execution=1", "train.warmup_epochs=0"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert code == 0
    return {"data": data, "shards": shards, "run": run, "truth": os.path.join(data, "truth.csv")}


def shared_tiny_run(tmp_path_factory, worker_id: str) -> dict:
    """:func:`train_tiny_run` once per test session, even across pytest-xdist workers."""
    return once_per_session(tmp_path_factory, worker_id, "report_tiny_run", train_tiny_run)


def copy_fold(fold_dir: str, dest: str) -> str:
    os.makedirs(dest)
    for name in FOLD_FILES:
        shutil.copy(os.path.join(fold_dir, name), dest)
    return dest


def metric_values(html: str, metric: str) -> list:
    """Every ``data-value`` of the cells marked ``data-metric="metric"`` (None: undefined)."""
    values = re.findall(rf'data-metric="{metric}" data-value="([^"]+)"', html)
    return [None if v == "undefined" else float(v) for v in values]


def table_rows(html: str, key: str) -> dict[str, list[str]]:
    """``{data-<key> value: [cell texts]}`` of the rows marked ``data-<key>``."""
    rows = {}
    for name, body in re.findall(rf'<tr data-{key}="([^"]*)">(.*?)</tr>', html):
        rows[name] = re.findall(r"<td[^>]*>(.*?)</td>", body)
    return rows


def waterfall_ids(html: str, kind: str) -> list[str]:
    return re.findall(rf'<figure class="waterfall" data-kind="{kind}" data-id="([0-9a-f]+)">', html)


def gradcam_figures(html: str, kind: str) -> list[tuple[str, str | None]]:
    """``(id, data-peak or None)`` of the Grad-CAM figures of one example kind, in order."""
    found = re.findall(rf'<figure class="gradcam" data-kind="{kind}" data-id="([0-9a-f]+)"'
                       rf'(?: data-peak="([^"]*)")?>', html)
    return [(cadence_id, peak or None) for cadence_id, peak in found]


@contextlib.contextmanager
def served(folder: str):
    """``folder`` over http on a free loopback port; yields the base URL."""
    import portpicker

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    port = portpicker.pick_unused_port()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def headless_chromium(profile_dir: str):
    """Debian's chromium through its chromedriver (never Selenium Manager: no network)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    assert not missing, (f"{', '.join(missing)} not installed: run `make test`, which installs "
                         f"Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
