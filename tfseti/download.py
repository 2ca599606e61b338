"""Fetch the Kaggle competition data into the Kaggle layout, safely and resumably.

    python -m tfseti.download --out DIR [--old-data] [--competition seti-breakthrough-listen]
                              [--parts train test labels] [--from-zip ZIP] [--delete-zip]
                              [--workers N] [--no-progress]

The competition archive (~76 GB, ~84 GB unpacked) is downloaded with the ``kaggle`` package into
``DIR/<competition>.zip`` (the package resumes an interrupted download), then the chosen parts are
extracted into ``DIR`` (``train/``, ``test/``, the two csv files; ``old_leaky_data/`` with
``--old-data``) and the result is checked to look like the Kaggle layout. Running again skips
what is already there. ``--from-zip`` extracts an archive fetched some other way.
For a file-by-file check afterwards: ``python -m tfseti.data.validate DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import stat
import sys
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tfseti.command import command, common_flags, run_command, workers_flag
from tfseti.console import show_progress
from tfseti.io.kaggle import OLD_DATA_DIR

COMPETITION = "seti-breakthrough-listen"
# Top-level entries of the competition archive, by the part they belong to.
PART_ENTRIES = {
    "train": ("train",),
    "test": ("test",),
    "labels": ("train_labels.csv", "sample_submission.csv"),
}
PARTS = tuple(PART_ENTRIES)
LAYOUT_ENTRIES = {entry for entries in PART_ENTRIES.values() for entry in entries} | {OLD_DATA_DIR}
PARTIAL_SUFFIX = ".tfseti-part"
DEFAULT_WORKERS = 4


class DownloadError(RuntimeError):
    """The download or extraction cannot go on; the message says why and what to do."""


class CredentialsError(DownloadError):
    pass


class UnsafeArchiveError(DownloadError):
    pass


def rules_url(competition: str) -> str:
    return f"https://www.kaggle.com/competitions/{competition}/rules"


def credentials_help(competition: str = COMPETITION, config_dir: str | None = None) -> str:
    config_dir = config_dir or os.environ.get("KAGGLE_CONFIG_DIR") or "~/.kaggle"
    return (
        "No Kaggle credentials found. Create an API token at https://www.kaggle.com/settings/api "
        "and provide it in one of these ways, then run again:\n"
        "  - export KAGGLE_API_TOKEN=<token>, or save the token to ~/.kaggle/access_token;\n"
        f"  - a legacy key: {os.path.join(config_dir, 'kaggle.json')} holding "
        '{"username": "...", "key": "..."} (chmod 600; the folder is set by KAGGLE_CONFIG_DIR), '
        "or export KAGGLE_USERNAME=<user> KAGGLE_KEY=<key>;\n"
        "  - or log in once with `kaggle auth login`.\n"
        f"The competition rules must also be accepted on kaggle.com ({rules_url(competition)}), "
        "otherwise Kaggle refuses the download.")


# -- the Kaggle API ------------------------------------------------------------------------------
def kaggle_api(competition: str = COMPETITION):
    """An authenticated ``KaggleApi``, or CredentialsError with how to provide credentials.

    Importing the ``kaggle`` package already tries to authenticate and prints its own help on
    failure; both that and ``authenticate()``'s exit are captured here, so the user sees one
    message.
    """
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        try:
            api.authenticate()
        except SystemExit:
            raise CredentialsError(credentials_help(competition, KaggleApi.config_dir)) from None
        except Exception as err:  # e.g. no network while checking an access token
            raise DownloadError(f"could not authenticate with Kaggle ({type(err).__name__}: {err}); "
                                f"check the network and the credentials") from None
    return api


def fetch_archive(api, competition: str, out: str, progress: bool = True) -> str:
    """Download (or resume, or skip when complete) the competition archive into ``out``."""
    import requests

    try:
        api.competition_download_files(competition, path=out, quiet=not show_progress(progress))
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 403:
            raise DownloadError(f"Kaggle refused the download of {competition!r} (403): accept the "
                                f"competition rules at {rules_url(competition)} with the account "
                                f"of these credentials, then run again") from None
        if status == 401:
            raise CredentialsError(f"Kaggle rejected the credentials (401).\n"
                                   f"{credentials_help(competition)}") from None
        if status == 404:
            raise DownloadError(f"competition {competition!r} not found on Kaggle (404)") from None
        raise DownloadError(f"download of {competition!r} failed: {err}") from None
    except (requests.RequestException, OSError) as err:
        raise DownloadError(f"download of {competition!r} failed ({type(err).__name__}: {err}); "
                            f"run again to resume") from None
    archive = os.path.join(out, f"{competition}.zip")
    if not os.path.isfile(archive):
        raise DownloadError(f"the kaggle package finished but {archive} is missing")
    return archive


# -- extraction ----------------------------------------------------------------------------------
@dataclass
class ExtractResult:
    extracted: int = 0
    skipped: int = 0  # already present with the right size (an earlier, complete extraction)
    ignored: int = 0  # entries outside the chosen parts
    bytes_written: int = 0


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_member(info: zipfile.ZipInfo, archive: str) -> list[str]:
    """The member's path components; UnsafeArchiveError for anything that could escape ``dest``."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if (name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts
            or _is_symlink(info)):
        what = "a symbolic link" if _is_symlink(info) else "a path outside the destination"
        raise UnsafeArchiveError(f"{archive}: member {name!r} is {what}; refusing to extract "
                                 f"anything from this archive (expected relative paths such as "
                                 f"train/0/<id>.npy)")
    return [part for part in parts if part not in ("", ".")]


def _layout_prefix(members: list[list[str]]) -> int:
    """1 when every member sits under one extra top folder (``seti/train/...``), else 0."""
    tops = {parts[0] for parts in members if parts}
    if len(tops) == 1 and not tops & LAYOUT_ENTRIES and all(len(p) > 1 for p in members):
        return 1
    return 0


def _selected(parts: list[str], wanted_parts, old_data: bool) -> bool:
    top = parts[0]
    if top == OLD_DATA_DIR:
        return old_data
    return any(top in PART_ENTRIES[part] for part in wanted_parts)


def extract_archive(archive: str, dest: str, *, parts=PARTS, old_data: bool = False,
                    workers: int = DEFAULT_WORKERS, progress: bool = False) -> ExtractResult:
    """Extract the chosen parts of a competition zip into ``dest`` in the Kaggle layout.

    Every member is checked before anything is written (no absolute paths, no ``..``, no
    symbolic links). Each file is written under a temporary name and renamed when complete, so a
    file with the member's size was fully extracted: a second run skips those and finishes an
    interrupted one.
    """
    from tqdm import tqdm

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}, expected some of {list(PARTS)}")
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = [info for info in zipped.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{archive}: not a readable zip archive ({err}); delete it and run "
                            f"again to download it anew") from None
    member_parts = [_check_member(info, archive) for info in infos]
    strip = _layout_prefix(member_parts)
    dest_real = os.path.realpath(dest)
    result = ExtractResult()
    todo = []
    for info, member in zip(infos, member_parts):
        relparts = member[strip:]
        if not relparts or not _selected(relparts, parts, old_data):
            result.ignored += 1
            continue
        target = os.path.join(dest_real, *relparts)
        if os.path.commonpath([dest_real, os.path.realpath(target)]) != dest_real:
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} resolves outside "
                                     f"{dest} (through a symbolic link already there)")
        if os.path.isfile(target) and os.path.getsize(target) == info.file_size:
            result.skipped += 1
        else:
            todo.append((info, target))

    _check_free_space(dest_real, sum(info.file_size for info, _ in todo))

    local = threading.local()  # one ZipFile handle per thread: zlib releases the GIL
    handles, lock = [], threading.Lock()
    bar = tqdm(total=sum(info.file_size for info, _ in todo), unit="B", unit_scale=True,
               desc=f"extract {os.path.basename(archive)}", disable=not show_progress(progress),
               file=sys.stderr)

    def extract_one(item) -> int:
        info, target = item
        if not hasattr(local, "zipped"):
            local.zipped = zipfile.ZipFile(archive)
            with lock:
                handles.append(local.zipped)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = target + PARTIAL_SUFFIX
        with local.zipped.open(info) as source, open(partial, "wb") as sink:
            while chunk := source.read(1 << 20):  # also checks the CRC at the end
                sink.write(chunk)
                bar.update(len(chunk))
        os.replace(partial, target)
        return info.file_size

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="extract")
    try:
        for size in pool.map(extract_one, todo):
            result.extracted += 1
            result.bytes_written += size
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DownloadError(f"{archive}: corrupt archive ({err}); delete it and run again to "
                            f"download it anew") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, start no further members
        bar.close()
        for handle in handles:
            handle.close()
    return result


def _check_free_space(dest: str, needed: int) -> None:
    existing = dest
    while not os.path.exists(existing):  # the destination may not exist yet
        existing = os.path.dirname(existing)
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise DownloadError(f"{dest}: extracting needs {_size(needed)} but only {_size(free)} "
                            f"are free; free some space (or choose fewer --parts) and run again")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


# -- checking the result -------------------------------------------------------------------------
def layout_problems(root: str, *, parts=PARTS, old_data: bool = False) -> list[str]:
    """What keeps ``root`` from looking like the Kaggle layout for the chosen parts (quick:
    csv files parse and each split holds as many ``.npy`` files as its csv has rows)."""
    from tfseti.io.kaggle import KaggleDataset

    checks = []
    if "labels" in parts:
        checks += [(root, "train", False), (root, "test", False)]
    checks += [(root, split, True) for split in ("train", "test") if split in parts]
    if old_data:
        old_root = os.path.join(root, OLD_DATA_DIR)
        checks += [(old_root, split, check_files) for split in ("train_old", "test_old")
                   for check_files in (False, True)]
    problems = []
    for split_root, split, check_files in checks:
        dataset = KaggleDataset(split_root, split)
        if not check_files:
            try:
                dataset.read_labels()
            except (FileNotFoundError, ValueError) as err:
                problems.append(str(err))
            continue
        if not dataset.split_exists():
            problems.append(f"{dataset.split_path()}: folder not found")
            continue
        n_files = len(dataset.list_files())
        if dataset.labels_exist():
            try:
                n_rows = len(dataset.read_labels())
            except ValueError:
                continue  # reported by the csv check when labels were asked for
            if n_files != n_rows:
                problems.append(f"{dataset.split_path()}: {n_files} .npy files, expected "
                                f"{n_rows} (the rows of {dataset.labels_file})")
        elif n_files == 0:
            problems.append(f"{dataset.split_path()}: no .npy files")
    return problems


# -- the whole job -------------------------------------------------------------------------------
def download(out: str, *, competition: str = COMPETITION, parts=PARTS, old_data: bool = False,
             from_zip: str | None = None, delete_zip: bool = False,
             workers: int = DEFAULT_WORKERS, progress: bool = True, api=None,
             log=print) -> ExtractResult | None:
    """Download (unless ``from_zip``), extract and check; returns None when already complete.

    ``api`` is an authenticated ``KaggleApi`` (default: made from the user's credentials).
    """
    parts = tuple(parts)
    if from_zip is None and not layout_problems(out, parts=parts, old_data=old_data):
        log(f"{out} already holds {', '.join(parts)}{' and old_leaky_data' if old_data else ''}; "
            f"nothing to do")
        return None
    if from_zip is None:
        api = api or kaggle_api(competition)
        log(f"downloading {competition} into {out} (resumes a partial download)")
        os.makedirs(out, exist_ok=True)
        archive = fetch_archive(api, competition, out, progress)
    else:
        archive = from_zip
        if not os.path.isfile(archive):
            raise DownloadError(f"{archive}: archive not found")
    result = extract_archive(archive, out, parts=parts, old_data=old_data, workers=workers,
                             progress=progress)
    log(f"extracted {result.extracted} files ({_size(result.bytes_written)}), "
        f"{result.skipped} already present, {result.ignored} archive entries not selected")
    problems = layout_problems(out, parts=parts, old_data=old_data)
    if problems:
        raise DownloadError(f"{out} does not look like the Kaggle layout after extracting "
                            f"{archive}:\n  " + "\n  ".join(problems))
    if delete_zip and from_zip is None:
        os.remove(archive)
        log(f"deleted {archive}")
    log(f"done: {out} has the Kaggle layout; check every file with "
        f"`python -m tfseti.data.validate {out}`")
    return result


@command(DownloadError, code=1)  # exit 1, as it always was (a refusal is 2 elsewhere)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.download",
        parents=[workers_flag("parallel extraction threads", DEFAULT_WORKERS),
                 common_flags("no_progress")],
        description="Download the SETI Breakthrough Listen competition data with the kaggle "
                    "package and extract it into the Kaggle layout.")
    parser.add_argument("--out", required=True, metavar="DIR", help="destination folder")
    parser.add_argument("--competition", default=COMPETITION, help=f"default {COMPETITION}")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to extract (default: all); labels = the two csv files")
    parser.add_argument("--old-data", action="store_true",
                        help=f"also extract {OLD_DATA_DIR}/ (pre-relaunch data)")
    parser.add_argument("--from-zip", metavar="ZIP", help="extract this archive, no download")
    parser.add_argument("--delete-zip", action="store_true",
                        help="delete the downloaded archive once extracted and checked")
    args = parser.parse_args(argv)
    download(args.out, competition=args.competition, parts=args.parts,
             old_data=args.old_data, from_zip=args.from_zip, delete_zip=args.delete_zip,
             workers=args.workers, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    run_command(main)
