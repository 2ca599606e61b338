"""``tfseti.publish``: a finished run staged as a Kaggle dataset and uploaded (to a fake API: no network)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import socket
import sys
from types import SimpleNamespace

import fsspec
import numpy as np
import pytest
import requests
from report.report_helpers import shared_tiny_run
from harness import write_kaggle_dir

from tfseti import predict as pr
from tfseti.publish import stage, upload
from tfseti.publish.__main__ import main
from tfseti.train import run_folder

REF = "someone/tfseti-tiny-run"
LEFT_OUT = ("oof.csv", "result.json", "log.csv", "best.weights.h5", "final.weights.h5", "data.json",
            "tensorboard", "backup", "report")


@pytest.fixture(scope="module")
def run(tmp_path_factory, worker_id):
    """The shared tiny 2-fold run (trained once per session)."""
    return shared_tiny_run(tmp_path_factory, worker_id)["run"]


@pytest.fixture(scope="module")
def staged(run, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("publish") / "staged")
    return stage.stage_run(run, folder, REF, "tfseti tiny run", include="saved_model,keras,config",
                           log=lambda _: None)


@pytest.fixture
def no_kaggle(monkeypatch, tmp_path):
    """No credentials anywhere the kaggle package looks, the package unimportable, no sockets."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "kaggle", None)  # any `import kaggle...` raises ImportError

    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path / "kaggle-config"


def fake_credentials(config_dir, username="someone"):
    config_dir.mkdir(exist_ok=True)
    path = config_dir / "kaggle.json"
    path.write_text(json.dumps({"username": username, "key": "0123456789abcdef"}))
    os.chmod(path, 0o600)
    return str(path)


def run_files(folder: str) -> set[str]:
    return {name for name, _ in stage.list_files(folder)}


# -- staging ---------------------------------------------------------------------------------------
def test_staging_holds_what_inference_needs_and_nothing_else(run, staged):
    files = run_files(staged.folder)
    # calibration.json: the run's calibrator, which tfseti.predict applies to the staged models.
    expected = {"README.md", "dataset-metadata.json", "cv.json", "calibration.json"}
    for fold in (0, 1):
        source = os.path.join(run, f"fold{fold}", "saved_model")
        saved = {f"fold{fold}/saved_model/{name}" for name in run_files(source)}
        assert f"fold{fold}/saved_model/saved_model.pb" in saved
        expected |= saved | {f"fold{fold}/config.json", f"fold{fold}/model.keras"}
    assert files == expected
    for name in expected - {"README.md", "dataset-metadata.json"}:  # byte-identical copies
        assert filecmp.cmp(os.path.join(run, name), os.path.join(staged.folder, name), shallow=False)
    assert not any(part in LEFT_OUT for name in files for part in name.split("/"))
    assert staged.files == sorted((name, os.path.getsize(os.path.join(staged.folder, name)))
                                  for name in expected)
    assert staged.input_shape == (6, 273, 256)


def test_metadata_and_readme(run, staged):
    with open(os.path.join(run, "cv.json")) as handle:
        cv_auc = json.load(handle)["cv_auc"]
    with open(os.path.join(staged.folder, "dataset-metadata.json")) as handle:
        metadata = json.load(handle)
    with open(os.path.join(staged.folder, "README.md")) as handle:
        readme = handle.read()
    assert metadata == {"title": "tfseti tiny run", "id": REF, "licenses": [{"name": "CC0-1.0"}],
                        "subtitle": f"tfseti SETI needle classifier, 2 fold SavedModels, "
                                    f"CV AUC {cv_auc:.4f}",
                        "description": readme}
    assert 20 <= len(metadata["subtitle"]) <= 80
    assert f"CV AUC (out-of-fold, 2 folds): **{cv_auc:.4f}**" in readme
    for fold in (0, 1):
        with open(os.path.join(run, f"fold{fold}", "result.json")) as handle:
            best = json.load(handle)["best_val_auc"]
        assert f"| fold{fold} | {'undefined' if np.isnan(best) else f'{best:.4f}'} |" in readme
    assert "python -m tfseti.predict --model /kaggle/input/tfseti-tiny-run" in readme
    assert "--tta flips" in readme
    assert 'tf.saved_model.load("/kaggle/input/tfseti-tiny-run/fold0/saved_model")' in readme
    assert "float16[batch, 6, 273, 256]" in readme
    assert "`fold<K>/model.keras`" in readme


def test_default_include_leaves_the_keras_file_out(run, tmp_path):
    result = stage.stage_run(run, str(tmp_path / "s"), REF, log=lambda _: None)
    names = run_files(result.folder)
    assert "fold0/config.json" in names and "cv.json" in names
    assert not any(name.endswith(".keras") for name in names)
    assert result.title == "tfseti-tiny-run"  # the default title: the slug
    only_models = stage.check_run(run, "saved_model").copies  # what stage_run copies
    assert only_models == sorted(n for n in run_files(run) if "/saved_model/" in n)


def test_the_staged_folder_is_a_run_folder_for_predict(run, staged, tmp_path):
    paths = pr.resolve_model_paths(staged.folder)
    assert paths == [f"{staged.folder}/fold0/saved_model", f"{staged.folder}/fold1/saved_model"]
    frames = write_kaggle_dir(tmp_path / "kaggle", n_train=1, n_test=3, seed=5)
    data = pr.open_test_data(str(tmp_path / "kaggle"))
    models = [pr.load_model(p) for p in paths]
    assert [m.view["name"] for m in models] == [json.load(open(os.path.join(
        run, f"fold{k}", "config.json")))["view"]["name"] for k in (0, 1)]  # config.json travelled
    published = pr.predict(models, data, tta="flips")
    original = pr.predict([pr.load_model(p) for p in pr.resolve_model_paths(run)], data, tta="flips")
    assert published.ids == list(frames["test"]["id"])
    np.testing.assert_array_equal(published.per_model, original.per_model)
    # Plain TensorFlow, as the dataset's README shows it.
    import tensorflow as tf

    cadence = np.load(tmp_path / "kaggle" / "test" / published.ids[0][0]
                      / f"{published.ids[0]}.npy")[None]
    model = tf.saved_model.load(paths[0])  # kept: its variables live as long as it does
    direct = model.serve(tf.constant(cadence, tf.float16)).numpy()
    # The SavedModel's own output is the raw probability; tfseti.predict calibrates it with the
    # staged calibration.json.
    np.testing.assert_allclose(direct, models[0].raw(cadence), rtol=0, atol=0)
    assert models[0].calibration == f"{staged.folder}/calibration.json"
    np.testing.assert_allclose(models[0](cadence), models[0].calibrator("none")(direct), rtol=1e-6)


def test_a_remote_run_is_staged_alike(run, staged, tmp_path):
    memory = fsspec.filesystem("memory")
    root = "/publish-test-run"
    try:
        for name in run_files(run):
            memory.pipe_file(f"{root}/{name}", open(os.path.join(run, name), "rb").read())
        result = stage.stage_run(f"memory://{root}", str(tmp_path / "s"), REF, "tfseti tiny run",
                                 include="saved_model,keras,config", log=lambda _: None)
    finally:
        memory.rm(root, recursive=True)
    generated = ("README.md", "dataset-metadata.json")  # they name the run: "publish-test-run"
    assert ([f for f in result.files if f[0] not in generated]
            == [f for f in staged.files if f[0] not in generated])
    assert "\n`publish-test-run`: recipe" in result.metadata["description"]
    assert result.run.path == f"memory://{root}"


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref, problem", [
    ("someone/short", "has 5 characters; Kaggle needs 6 to 50"),
    (f"someone/{'a' * 51}", "has 51 characters; Kaggle needs 6 to 50"),
    ("someone/Upper-Case", "may only hold lowercase letters, digits and hyphens"),
    ("someone/under_score", "may only hold lowercase letters"),
    ("someone/-leading", "neither start nor end with a hyphen"),
    ("someone/trailing-", "neither start nor end with a hyphen"),
    ("tfseti-tiny-run", "expected USER/SLUG"),
    ("a/b/tfseti-tiny-run", "expected USER/SLUG"),
    ("some one/tfseti-tiny-run", "must be a Kaggle user name"),
])
def test_bad_dataset_names_are_refused(ref, problem):
    with pytest.raises(stage.PublishError, match=problem.replace("(", r"\(")):
        stage.validate_dataset_ref(ref)


def test_good_names_and_titles():
    assert stage.validate_dataset_ref("some-one/abc-123") == ("some-one", "abc-123")
    assert stage.validate_dataset_ref(f"u/{'a' * 50}")[1] == "a" * 50
    assert stage.validate_title("  six ch  ") == "six ch"
    for title in ("short", "x" * 51):
        with pytest.raises(stage.PublishError, match=f"--title: .* has {len(title)} characters; "
                                                     f"Kaggle needs 6 to 50"):
            stage.validate_title(title)
    with pytest.raises(stage.PublishError, match="subset of saved_model, keras, config, got weights"):
        stage.parse_include("saved_model,weights")
    with pytest.raises(stage.PublishError, match="must hold saved_model"):
        stage.parse_include("keras,config")
    assert stage.parse_include("config,saved_model") == ("saved_model", "config")


def test_cli_refuses_a_bad_slug_before_staging(run, tmp_path, capsys, no_kaggle):
    staging = tmp_path / "staging"
    assert main([run, "--kaggle-dataset", "someone/Bad_Slug", "--dry-run", "--staging",
                 str(staging)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --kaggle-dataset: the slug 'Bad_Slug'")
    assert not staging.exists() or not os.listdir(staging)


def copy_run(run: str, dest) -> str:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("tensorboard", "report"))
    return str(dest)


def test_an_incomplete_run_is_refused_naming_every_problem(run, tmp_path):
    bad = copy_run(run, tmp_path / "run")
    os.makedirs(os.path.join(bad, "fold1", "backup"))  # fold 1 still training
    os.remove(os.path.join(bad, "fold0", "saved_model", "variables", "variables.index"))
    assert run_folder.fold_finished(os.path.join(bad, "fold0"))        # the trainer's rule agrees
    assert not run_folder.fold_finished(os.path.join(bad, "fold1"))
    with pytest.raises(stage.PublishError) as caught:
        stage.check_run(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: not a complete run, nothing was published:")
    assert "  fold0: incomplete SavedModel: no saved_model/variables/variables.index" in message
    assert ("  fold1: not finished (its backup/ is still there: training or interrupted)"
            in message)
    staging = tmp_path / "staging"
    with pytest.raises(stage.PublishError):
        stage.stage_run(bad, str(staging), REF)
    assert not staging.exists()  # nothing copied


def test_a_missing_variables_shard_or_keras_file_is_refused(run, tmp_path):
    bad = copy_run(run, tmp_path / "run")
    variables = os.path.join(bad, "fold1", "saved_model", "variables")
    (shard,) = [n for n in os.listdir(variables) if n.startswith("variables.data-")]
    os.rename(os.path.join(variables, shard), os.path.join(variables, "variables.data-00001-of-00002"))
    os.remove(os.path.join(bad, "fold0", "model.keras"))
    with pytest.raises(stage.PublishError, match=r"fold1: incomplete SavedModel: saved_model/"
                                                 r"variables is missing shard\(s\) \[0\] of 2"):
        stage.check_run(bad)
    with pytest.raises(stage.PublishError, match=r"fold0: no model.keras \(--include keras\)"):
        stage.check_run(bad, "saved_model,keras")


def test_folds_of_different_recipes_and_non_runs_are_refused(run, tmp_path):
    bad = copy_run(run, tmp_path / "run")
    path = os.path.join(bad, "fold1", "config.json")
    config = json.load(open(path))
    config["train"]["learning_rate"] = 0.123
    json.dump(config, open(path, "w"))
    with pytest.raises(stage.PublishError, match=r"fold0 and fold1 were trained with different "
                                                 r"recipes \(train.learning_rate: .* vs 0.123\)"):
        stage.check_run(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(stage.PublishError, match="not a run folder"):
        stage.check_run(str(tmp_path / "empty"))
    with pytest.raises(stage.PublishError, match="no such run folder"):
        stage.check_run(str(tmp_path / "absent"))


def test_stale_cv_json_states_no_cv_auc(run, tmp_path):
    partial = copy_run(run, tmp_path / "run")
    shutil.rmtree(os.path.join(partial, "fold1"))  # cv.json now covers a fold that is gone
    notes = []
    result = stage.stage_run(partial, str(tmp_path / "s"), REF, log=notes.append)
    assert notes == ["note: cv.json covers folds [0, 1], the run holds [0]: no CV AUC is stated"]
    assert result.run.cv_auc is None and "cv.json" not in run_files(result.folder)
    assert "CV AUC: not stated (cv.json covers folds [0, 1]" in result.metadata["description"]


def test_a_non_empty_staging_folder_is_refused(run, tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "old.txt").write_text("x")
    with pytest.raises(stage.PublishError, match="--staging .*: not empty"):
        stage.stage_run(run, str(tmp_path / "s"), REF)


# -- credentials -----------------------------------------------------------------------------------
def test_credentials_are_found_where_the_kaggle_package_looks(no_kaggle, monkeypatch):
    assert upload.find_credentials() is None
    path = fake_credentials(no_kaggle, "alice")
    assert upload.find_credentials() == upload.Credentials("api key", path, "alice")
    monkeypatch.setenv("KAGGLE_USERNAME", "bob")
    assert upload.find_credentials() == upload.Credentials("api key", f"{path} + $KAGGLE_USERNAME",
                                                           "bob")
    os.remove(path)
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert upload.find_credentials().source == "$KAGGLE_USERNAME + $KAGGLE_KEY"
    monkeypatch.setenv("KAGGLE_API_TOKEN", "t")
    assert upload.find_credentials() == upload.Credentials("access token", "$KAGGLE_API_TOKEN", None)


def test_missing_credentials_are_one_error_before_staging(run, tmp_path, capsys, no_kaggle):
    staging = tmp_path / "staging"
    assert main([run, "--kaggle-dataset", REF, "--staging", str(staging)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: no Kaggle credentials found. ")
    assert f"Put it at {no_kaggle / 'kaggle.json'}" in err[0]
    assert f"chmod 600 {no_kaggle / 'kaggle.json'}" in err[0] and "KAGGLE_USERNAME" in err[0]
    assert not staging.exists()
    with pytest.raises(upload.CredentialsError):
        upload.kaggle_api()  # refuses before importing kaggle (which would raise ImportError here)


def test_dry_run_prints_the_plan_without_kaggle_or_network(run, tmp_path, capsys, no_kaggle):
    path = fake_credentials(no_kaggle)
    staging = str(tmp_path / "staging")
    assert main([run, "--kaggle-dataset", REF, "--dry-run", "--staging", staging,
                 "--version-notes", "two folds"]) == 0
    out = capsys.readouterr().out
    assert f"staged {REF} ('tfseti-tiny-run') from {run} in {staging}\n" in out
    size = os.path.getsize(os.path.join(staging, "fold0", "saved_model", "saved_model.pb"))
    assert any(line.split() == ["fold0/saved_model/saved_model.pb", *_human(size)]
               for line in out.splitlines())
    files = stage.list_files(staging)
    assert f"  {len(files)} files, " in out
    assert (f"  if {REF} does not exist: KaggleApi().dataset_create_new(folder={staging!r}, "
            f"public=False, quiet=False, convert_to_csv=False, dir_mode='zip')") in out
    assert (f"  if it exists:  KaggleApi().dataset_create_version(folder={staging!r}, "
            f"version_notes='two folds', quiet=False, convert_to_csv=False, "
            f"delete_old_versions=False, dir_mode='zip')") in out
    assert f"credentials: api key from {path}" in out
    assert os.path.isfile(os.path.join(staging, "dataset-metadata.json"))  # --staging kept


def _human(size: int) -> list[str]:
    from tfseti.publish.__main__ import human_size

    return human_size(size).split()


def test_dry_run_without_credentials_says_so_and_removes_its_temporary_folder(run, capsys,
                                                                               no_kaggle):
    assert main([run, "--kaggle-dataset", REF, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "credentials: none; the upload would stop: no Kaggle credentials found." in out
    folder = out.split(" in ", 1)[1].split(" (temporary")[0]
    assert folder.startswith(os.path.join(os.path.dirname(folder), "tfseti-publish-"))
    assert not os.path.exists(folder)


# -- the upload, up to the API call ----------------------------------------------------------------
class FakeKaggleApi:
    """Records the calls; datasets exist once created; reads the metadata as the package does."""

    def __init__(self, existing=(), response=None, status_error=404):
        self.existing = set(existing)
        self.calls = []
        self.response = response
        self.status_error = status_error

    def dataset_status(self, ref):
        self.calls.append(("dataset_status", ref))
        if ref not in self.existing:
            raise requests.HTTPError(response=SimpleNamespace(status_code=self.status_error))
        return "ready"

    def _upload(self, method, folder, **kwargs):
        with open(os.path.join(folder, "dataset-metadata.json")) as handle:
            metadata = json.load(handle)
        self.calls.append((method, {"folder": folder, **kwargs}, metadata["id"],
                           sorted(name for name, _ in stage.list_files(folder))))
        self.existing.add(metadata["id"])
        return self.response or SimpleNamespace(status="ok", error=None,
                                                url=f"https://www.kaggle.com/datasets/{metadata['id']}")

    def dataset_create_new(self, folder, **kwargs):
        return self._upload("dataset_create_new", folder, **kwargs)

    def dataset_create_version(self, folder, **kwargs):
        return self._upload("dataset_create_version", folder, **kwargs)


def test_publish_creates_then_versions(staged):
    api = FakeKaggleApi()
    first = upload.publish(api, staged.folder, REF, "notes 1", public=True, log=lambda _: None)
    second = upload.publish(api, staged.folder, REF, "notes 2", log=lambda _: None)
    files = sorted(name for name, _ in staged.files)
    assert api.calls == [
        ("dataset_status", REF),
        ("dataset_create_new", {"folder": staged.folder, "public": True, "quiet": False,
                                "convert_to_csv": False, "dir_mode": "zip"}, REF, files),
        ("dataset_status", REF),
        ("dataset_create_version", {"folder": staged.folder, "version_notes": "notes 2",
                                    "quiet": False, "convert_to_csv": False,
                                    "delete_old_versions": False, "dir_mode": "zip"}, REF, files)]
    assert (first.created, second.created) == (True, False)
    assert first.url == f"https://www.kaggle.com/datasets/{REF}"


def test_cli_uploads_through_the_api_and_cleans_up(run, capsys, no_kaggle):
    api = FakeKaggleApi(existing={REF})
    assert main([run, "--kaggle-dataset", REF], api=api) == 0
    out = capsys.readouterr().out
    (method, kwargs, ref, files), = api.calls[1:]
    cv_auc = json.load(open(os.path.join(run, "cv.json")))["cv_auc"]
    assert (method, ref) == ("dataset_create_version", REF)
    assert kwargs["version_notes"] == f"tfseti run run: 2 fold(s), CV AUC {cv_auc:.4f}"
    assert "fold1/saved_model/saved_model.pb" in files and "fold0/model.keras" not in files
    assert f"new version of {REF}: https://www.kaggle.com/datasets/{REF}" in out
    assert not os.path.exists(kwargs["folder"])  # the temporary staging folder is removed


def test_kaggle_refusals_are_one_error(run, staged, capsys, no_kaggle):
    refused = FakeKaggleApi(response=SimpleNamespace(
        status="error", error='The requested title "x" is already in use by a dataset.', url=""))
    assert main([run, "--kaggle-dataset", REF], api=refused) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'error: Kaggle did not accept {REF}: The requested title "x" is already in use '
                   f'by a dataset.']
    with pytest.raises(upload.CredentialsError, match=rf"Kaggle refused to show {REF} \(403\)"):
        upload.publish(FakeKaggleApi(status_error=403), staged.folder, REF, "n", log=lambda _: None)


KAGGLE_SCRIPT = """
import inspect, json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.socket.connect = refuse
socket.getaddrinfo = refuse
from tfseti.publish import upload

api = upload.kaggle_api()
from kaggle.api.kaggle_api_extended import KaggleApi

for call in (upload.create_call("F", True), upload.version_call("F", "n")):
    inspect.signature(getattr(KaggleApi, call.method)).bind(api, **call.kwargs)
out = {"type": type(api).__name__, "user": api.config_values.get("username")}
try:
    upload.publish(api, sys.argv[1], "someone/tfseti-tiny-run", "n", log=lambda _: None)
except upload.PublishError as err:
    out["error"] = str(err)
print(json.dumps(out))
"""


def test_the_real_kaggle_package_takes_these_calls_offline(tmp_path):
    """The pinned kaggle package, fake legacy credentials, sockets refused: it authenticates
    without the network, accepts the keyword arguments of both calls, and the first network call
    (the existence check) fails as one PublishError."""
    import subprocess

    config = tmp_path / "config"
    fake_credentials(config, "someone")
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN")}
    env.update(HOME=str(tmp_path), KAGGLE_CONFIG_DIR=str(config))
    done = subprocess.run([sys.executable, "-c", KAGGLE_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["type"] == "KaggleApi" and out["user"] == "someone"
    assert out["error"].startswith("could not reach Kaggle (ConnectionError: ")
