"""``python -m tfseti.publish RUN --kaggle-dataset USER/SLUG``: a training run's models as a Kaggle dataset.

::

    python -m tfseti.publish runs/b0_tpu --kaggle-dataset me/tfseti-b0-tpu \\
        [--title "tfseti B0 TPU"] [--version-notes "5 folds, mixup-OR"] \\
        [--include saved_model,keras,config] [--public] [--dry-run] [--staging DIR]

Stages what inference needs into a folder (``tfseti.publish.stage``: a temporary one, removed at
the end, or ``--staging DIR``, kept), then creates the dataset or, when it exists, a new version
(``tfseti.publish.upload``). ``--dry-run`` stages and checks everything, prints the files and the
API call(s) and uploads nothing: no Kaggle import, no network. Exit code 0, or 2 with one
``error:`` line.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

from tfseti.command import command, run_command
from tfseti.publish.stage import DEFAULT_INCLUDE, INCLUDES, PublishError, stage_run


def human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.publish",
        description="Publish a training run's SavedModels to Kaggle as a dataset (created the "
                    "first time, a new version after) for offline inference in a notebook.")
    parser.add_argument("run", metavar="RUN", help="the run folder (--out of python -m "
                                                   "tfseti.train; local or gs://)")
    parser.add_argument("--kaggle-dataset", required=True, metavar="USER/SLUG",
                        help="the dataset: your Kaggle user name / its URL name (6-50 lowercase "
                             "letters, digits, hyphens)")
    parser.add_argument("--title", default=None, help="6-50 characters (default: the slug)")
    parser.add_argument("--version-notes", default=None,
                        help="notes of a new version (default: run name, folds and CV AUC)")
    parser.add_argument("--include", default=",".join(DEFAULT_INCLUDE),
                        help=f"comma-separated subset of {','.join(INCLUDES)} (saved_model always; "
                             f"config: fold config.json + cv.json; keras: model.keras) "
                             f"(default: %(default)s)")
    parser.add_argument("--public", action="store_true",
                        help="create the dataset public (default private; a new version keeps "
                             "the dataset's visibility)")
    parser.add_argument("--dry-run", action="store_true",
                        help="stage and check, print the files and the API call; upload nothing")
    parser.add_argument("--staging", default=None, metavar="DIR",
                        help="stage into DIR (new or empty) and keep it (default: a temporary "
                             "folder, removed at the end)")
    return parser.parse_args(argv)


def _default_notes(staged) -> str:
    run = staged.run
    score = (f", CV AUC {run.cv_auc:.4f}" if run.cv_auc is not None else "")
    return f"tfseti run {run.name}: {len(run.folds)} fold(s){score}"


@command(PublishError)
def main(argv=None, api=None) -> int:
    """``api``: a KaggleApi-like object to use instead of the kaggle package's (tests)."""
    args = parse_args(argv)
    from tfseti.publish import upload

    folder = args.staging or tempfile.mkdtemp(prefix="tfseti-publish-")
    try:
        if not args.dry_run and api is None and upload.find_credentials() is None:
            raise upload.CredentialsError(upload.credentials_help())  # before copying anything
        staged = stage_run(args.run, folder, args.kaggle_dataset, args.title, args.include)
        print(f"staged {staged.ref} ({staged.title!r}) from {staged.run.path} in {folder}"
              + ("" if args.staging else " (temporary; --staging DIR keeps it)"))
        width = max(len(name) for name, _ in staged.files)
        for name, size in staged.files:
            print(f"  {name:<{width}}  {human_size(size):>9}")
        print(f"  {len(staged.files)} files, {human_size(staged.total_bytes)}")
        notes = args.version_notes or _default_notes(staged)
        credentials = upload.find_credentials()
        if credentials is not None and credentials.username \
                and credentials.username.lower() != staged.ref.split("/")[0].lower():
            print(f"note: the credentials are {credentials.username!r}'s, the dataset "
                  f"{staged.ref.split('/')[0]!r}'s: Kaggle refuses unless that account may write it")
        if args.dry_run:
            print("dry run: nothing uploaded. Whether the dataset exists is not checked (no "
                  "network); the upload would call")
            print(f"  if {staged.ref} does not exist: "
                  f"{upload.create_call(folder, args.public).describe()}")
            print(f"  if it exists:  {upload.version_call(folder, notes).describe()}")
            print(f"credentials: {credentials.kind} from {credentials.source}" if credentials
                  else f"credentials: none; the upload would stop: {upload.credentials_help()}")
            return 0
        result = upload.publish(api if api is not None else upload.kaggle_api(), folder,
                                staged.ref, notes, public=args.public)
    finally:
        if not args.staging:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{'created' if result.created else 'new version of'} {staged.ref}: {result.url}")
    print(f"Kaggle processes the upload now (`kaggle datasets status {staged.ref}` says when it "
          f"is ready); in a notebook: Add Input -> {staged.ref}, then /kaggle/input/"
          f"{staged.ref.split('/')[1]}")
    return 0


if __name__ == "__main__":
    run_command(main)
