"""Upload a staged dataset folder to Kaggle: a new dataset the first time, a new version after.

The calls are the ``kaggle`` package's (2.2.4)::

    api.dataset_status("USER/SLUG")          # raises requests.HTTPError 404 when it does not exist
    api.dataset_create_new(folder=..., public=False, quiet=False, convert_to_csv=False, dir_mode="zip")
    api.dataset_create_version(folder=..., version_notes=..., quiet=False, convert_to_csv=False,
                               delete_old_versions=False, dir_mode="zip")

``dir_mode="zip"``: the package skips sub-folders by default; zipped, each ``fold<K>/`` arrives
whole and Kaggle unpacks it. ``convert_to_csv=False``: nothing here is tabular. Both calls return
a response whose ``status`` is ``"ok"`` or whose ``error`` says why not; an error is raised here.

The ``kaggle`` package authenticates when it is imported (``kaggle/__init__.py`` calls
``authenticate()``, which may contact Kaggle to check an access token and prints its own help on
failure) and creates its config folder. So it is imported only by :func:`kaggle_api`, for a real
upload, after :func:`find_credentials` has found credentials by reading the same places the package
reads (without it: no import, no network). ``--help`` and ``--dry-run`` never call it.
:func:`publish` takes the API object as a parameter: the tests pass a fake one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import dataclass

from tfseti.publish.stage import PublishError

DIR_MODE = "zip"
TOKEN_URL = "https://www.kaggle.com/settings"  # "API" section: "Create New Token"


class CredentialsError(PublishError):
    pass


# -- credentials --------------------------------------------------------------------------------
def config_dir() -> str:
    """Where the kaggle package looks for ``kaggle.json`` (its own rule): ``$KAGGLE_CONFIG_DIR``,
    else ``~/.kaggle``, else (Linux, when ``~/.kaggle`` does not exist) ``$XDG_CONFIG_HOME/kaggle``
    or ``~/.config/kaggle``."""
    configured = os.environ.get("KAGGLE_CONFIG_DIR")
    if configured:
        return configured
    home = os.path.join(os.path.expanduser("~"), ".kaggle")
    if sys.platform.startswith("linux") and not os.path.exists(home):
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return os.path.join(base, "kaggle")
    return home


@dataclass(frozen=True)
class Credentials:
    kind: str              # "api key", "access token" or "oauth"
    source: str            # where they were found
    username: str | None   # None for tokens (Kaggle tells the name when asked)


def credentials_help(problem: str = "no Kaggle credentials found") -> str:
    path = os.path.join(config_dir(), "kaggle.json")
    return (f"{problem}. On kaggle.com open Settings "
            f"({TOKEN_URL}), section API, 'Create New Token': it downloads kaggle.json "
            '({"username": "...", "key": "..."}). Put it at '
            f"{path} (the folder is $KAGGLE_CONFIG_DIR, default ~/.kaggle) and run "
            f"`chmod 600 {path}`; or export KAGGLE_USERNAME=<user> KAGGLE_KEY=<key>; or export "
            "KAGGLE_API_TOKEN=<token> (an access token); then run again")


def find_credentials() -> Credentials | None:
    """The credentials the kaggle package would use, found without importing it (no network):
    a legacy key from ``kaggle.json`` overridden by ``KAGGLE_USERNAME``/``KAGGLE_KEY``, an access
    token (``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``) or ``kaggle auth login``'s OAuth file.
    The package tries the token first; a token is only checked by Kaggle."""
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        return Credentials("access token", "$KAGGLE_API_TOKEN", None)
    for name in ("access_token", "access_token.txt"):
        path = os.path.expanduser(os.path.join("~", ".kaggle", name))
        if os.path.isfile(path):
            with open(path) as handle:
                if handle.read().strip():
                    return Credentials("access token", path, None)
    path = os.path.join(config_dir(), "kaggle.json")
    values, source = {}, []
    if os.path.isfile(path):
        try:
            with open(path) as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as err:
            raise CredentialsError(f"{path}: unreadable ({err}); expected "
                                   '{"username": "...", "key": "..."}') from None
        if isinstance(loaded, dict):
            values.update({k: v for k, v in loaded.items() if k in ("username", "key") and v})
            source.append(path)
    for key in ("username", "key"):
        if os.environ.get(f"KAGGLE_{key.upper()}"):
            values[key] = os.environ[f"KAGGLE_{key.upper()}"]
            source.append(f"$KAGGLE_{key.upper()}")
    if "username" in values and "key" in values:
        return Credentials("api key", " + ".join(dict.fromkeys(source)), str(values["username"]))
    oauth = os.path.expanduser("~/.kaggle/credentials.json")
    if os.path.isfile(oauth):
        return Credentials("oauth", oauth, None)
    return None


def kaggle_api():
    """An authenticated ``KaggleApi`` (this imports the package: see the module docstring)."""
    if find_credentials() is None:
        raise CredentialsError(credentials_help())
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):  # the package's own help on an import-time failure
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        try:
            api.authenticate()
        except SystemExit:
            raise CredentialsError(credentials_help()) from None
        except Exception as err:  # e.g. no network while Kaggle checks an access token
            raise PublishError(f"could not authenticate with Kaggle ({type(err).__name__}: "
                               f"{err}); check the network and the credentials") from None
    return api


# -- the calls ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiCall:
    method: str
    kwargs: dict

    def describe(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        return f"KaggleApi().{self.method}({args})"


def create_call(folder: str, public: bool = False) -> ApiCall:
    return ApiCall("dataset_create_new", {"folder": folder, "public": public, "quiet": False,
                                          "convert_to_csv": False, "dir_mode": DIR_MODE})


def version_call(folder: str, version_notes: str, delete_old_versions: bool = False) -> ApiCall:
    return ApiCall("dataset_create_version", {
        "folder": folder, "version_notes": version_notes, "quiet": False, "convert_to_csv": False,
        "delete_old_versions": delete_old_versions, "dir_mode": DIR_MODE})


def _http_status(err) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def dataset_exists(api, ref: str) -> bool:
    """Ask Kaggle whether ``ref`` exists (404: no); other HTTP errors are PublishError."""
    import requests

    try:
        api.dataset_status(ref)
    except requests.HTTPError as err:
        status = _http_status(err)
        if status == 404:
            return False
        if status in (401, 403):
            raise CredentialsError(credentials_help(
                f"Kaggle refused to show {ref} ({status}): the credentials are wrong, or {ref} "
                f"belongs to another account")) from None
        raise PublishError(f"Kaggle: status of {ref} failed ({err})") from None
    except requests.RequestException as err:
        raise PublishError(f"could not reach Kaggle ({type(err).__name__}: {err})") from None
    return True


@dataclass
class UploadResult:
    call: ApiCall
    created: bool      # a new dataset (else a new version)
    url: str


def publish(api, folder: str, ref: str, version_notes: str, public: bool = False,
            log=print) -> UploadResult:
    """Upload the staged ``folder`` as ``ref``: ``dataset_create_new`` when Kaggle has no such
    dataset, else ``dataset_create_version``. ``api``: a ``KaggleApi`` (:func:`kaggle_api`) or any
    object with those three methods."""
    import requests

    exists = dataset_exists(api, ref)
    call = version_call(folder, version_notes) if exists else create_call(folder, public)
    log(f"{ref} {'exists: a new version' if exists else 'does not exist yet: creating it'}")
    log(call.describe())
    try:
        response = getattr(api, call.method)(**call.kwargs)
    except requests.HTTPError as err:
        raise PublishError(f"Kaggle refused the upload of {ref} ({err})") from None
    except requests.RequestException as err:
        raise PublishError(f"upload of {ref} failed ({type(err).__name__}: {err}); run again "
                           f"(a new version replaces a half-made one)") from None
    except ValueError as err:  # the package's own metadata checks
        raise PublishError(f"kaggle package: {err}") from None
    status = str(getattr(response, "status", "") or "").lower()
    if response is None or status != "ok":
        error = getattr(response, "error", None) or "no reason given"
        raise PublishError(f"Kaggle did not accept {ref}: {error}")
    url = getattr(response, "url", "") or f"https://www.kaggle.com/datasets/{ref}"
    return UploadResult(call=call, created=not exists, url=url)
