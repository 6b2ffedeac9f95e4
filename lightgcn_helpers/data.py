"""Download, verify, cache and load the MovieLens ``ml-latest-small`` dataset.

The archive is fetched once from the official GroupLens URL into a cache folder,
checked against its published sha256, extracted, and reused on every later run
without touching the network.

Cache folder, first match wins:

1. the ``data_dir`` argument of any function below;
2. the environment variable ``LIGHTGCN_DATA_DIR``;
3. ``data/`` at the root of this repository (git-ignored) when the package is used
   from a checkout, else ``~/.cache/lightgcn_helpers``.

Every failure raises :class:`DataError` with one readable message that says what
to do next.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

import pandas as pd

__all__ = [
    "DataError",
    "MOVIELENS_URL",
    "MOVIELENS_SHA256",
    "MOVIELENS_ZIP_NAME",
    "DATA_DIR_ENV",
    "default_data_dir",
    "sha256_of",
    "download_movielens",
    "load_ratings",
    "load_movies",
    "load_movielens",
    "RATING_COLUMNS",
    "MOVIE_COLUMNS",
]

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
MOVIELENS_SHA256 = "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"
MOVIELENS_ZIP_NAME = "ml-latest-small.zip"
MOVIELENS_FOLDER = "ml-latest-small"
DATA_DIR_ENV = "LIGHTGCN_DATA_DIR"

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIE_COLUMNS = ("movieId", "title", "genres")

_CHUNK = 1 << 16


class DataError(RuntimeError):
    """A dataset could not be downloaded, verified or read. The message says what to do."""


def default_data_dir() -> Path:
    """Return the cache folder (see the module docstring for the rules)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    repo_root = Path(__file__).resolve().parent.parent
    if (repo_root / "pyproject.toml").is_file():
        return repo_root / "data"
    return Path.home() / ".cache" / "lightgcn_helpers"


def sha256_of(path: Path | str) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, target: Path, timeout: float) -> None:
    """Stream ``url`` to ``target`` through a temporary file renamed only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, _CHUNK)
            expected = resp.headers.get("Content-Length")
            # urllib returns a short body silently when the connection drops half-way.
            if expected is not None and expected.isdigit() and out.tell() != int(expected):
                raise http.client.IncompleteRead(b"", int(expected) - out.tell())
        os.replace(tmp, target)
    except http.client.IncompleteRead as exc:
        raise DataError(
            f"The download of {url} was interrupted ({exc.expected} bytes missing); nothing was kept.\n"
            f"Run again, or download the file by hand and place it at:\n    {target}"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"Could not download {url} ({reason}).\n"
            f"Check your network connection and run again, or download the file by hand "
            f"and place it at:\n    {target}\n"
            f"(it is verified against sha256 before use)."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def _verify(zip_path: Path, sha256: str, url: str) -> None:
    actual = sha256_of(zip_path)
    if actual != sha256:
        zip_path.unlink(missing_ok=True)
        raise DataError(
            f"Checksum mismatch for {zip_path.name}: expected sha256 {sha256}, got {actual}.\n"
            f"The corrupt file has been removed. Run again to download it afresh from {url}, "
            f"or place a good copy at:\n    {zip_path}"
        )


def _extract(zip_path: Path, dest: Path) -> None:
    """Extract into a temporary folder, then rename it into place (never half-extracted)."""
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
        except zipfile.BadZipFile:
            zip_path.unlink(missing_ok=True)
            raise DataError(
                f"{zip_path.name} is not a valid zip archive; it has been removed. "
                f"Run again to download it afresh."
            ) from None
        inner = tmp / dest.name
        src = inner if inner.is_dir() else tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_movielens(
    data_dir: Path | str | None = None,
    url: str = MOVIELENS_URL,
    sha256: str = MOVIELENS_SHA256,
    timeout: float = 30.0,
    required_files: Iterable[str] = ("ratings.csv", "movies.csv"),
) -> Path:
    """Make sure ``ml-latest-small`` is in the cache; return the extracted folder.

    Network is touched only when the zip is not already cached. A cached zip is
    checksum-verified before it is trusted; a corrupt one is removed and the error
    says so. Returns ``<data_dir>/ml-latest-small`` holding ``ratings.csv``,
    ``movies.csv``, ``tags.csv``, ``links.csv`` and ``README.txt``.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    zip_path = root / MOVIELENS_ZIP_NAME
    folder = root / MOVIELENS_FOLDER
    marker = folder / ".verified"
    if marker.is_file() and marker.read_text().strip() == sha256 and zip_path.is_file():
        if all((folder / f).is_file() for f in required_files):
            return folder
    if not zip_path.is_file():
        _fetch(url, zip_path, timeout)
    _verify(zip_path, sha256, url)
    _extract(zip_path, folder)
    missing = [f for f in required_files if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{zip_path.name} does not contain {missing}; is it the right archive?")
    marker.write_text(sha256 + "\n")
    return folder


def _read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path} is missing; call download_movielens() first.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"Could not parse {path.name}: {exc}. Delete {path.parent} and run again.") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path.name} lacks the expected column(s) {missing}; it has {list(df.columns)}. "
            f"Expected at least {list(required)}."
        )
    return df


def load_ratings(
    data_dir: Path | str | None = None, url: str = MOVIELENS_URL, sha256: str = MOVIELENS_SHA256
) -> pd.DataFrame:
    """Ratings as a DataFrame: ``userId`` (int64), ``movieId`` (int64), ``rating``
    (float64, 0.5..5.0 in half stars), ``timestamp`` (int64, Unix seconds).
    ml-latest-small has 100,836 rows. ``url``/``sha256`` as in :func:`download_movielens`."""
    return _read_csv(download_movielens(data_dir, url, sha256) / "ratings.csv", RATING_COLUMNS)


def load_movies(
    data_dir: Path | str | None = None, url: str = MOVIELENS_URL, sha256: str = MOVIELENS_SHA256
) -> pd.DataFrame:
    """Movies as a DataFrame: ``movieId`` (int64), ``title`` (str, with the year in
    parentheses), ``genres`` (str, ``|``-separated). ml-latest-small has 9,742 rows."""
    return _read_csv(download_movielens(data_dir, url, sha256) / "movies.csv", MOVIE_COLUMNS)


def load_movielens(
    data_dir: Path | str | None = None, url: str = MOVIELENS_URL, sha256: str = MOVIELENS_SHA256
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ratings, movies)``, see :func:`load_ratings` and :func:`load_movies`."""
    return load_ratings(data_dir, url, sha256), load_movies(data_dir, url, sha256)
