"""Getting interaction data: download, verify and cache files; read interaction tables.

*Which* datasets exist (URLs, checksums, formats, licences) is the registry in
:mod:`lightgcn_helpers.datasets`; this module is the mechanism behind it and the reader
for your own files:

* :func:`fetch_file` downloads one file from its official URL with `pooch
  <https://www.fatiando.org/pooch/>`_ (retries, a tqdm progress bar, a temporary file
  renamed only on success), verifies it and keeps it in the cache folder; a cached file
  is verified before it is ever trusted, and a bad one is removed with an error that
  says so. :func:`fetch_archive` does the same for a zip archive and extracts it into a
  temporary folder renamed into place, so nothing is ever half-extracted.
* :func:`read_interactions` reads a ``user, item[, rating][, timestamp]`` table from a
  file (``,``, tab or ``::`` separated, with or without a header) or a DataFrame, and
  checks it, with one readable :class:`DataError` for each way it can be wrong.
* :func:`load_movielens` and friends: ``ml-latest-small``, the series' dataset.

Cache folder, first match wins:

1. the ``data_dir`` argument of any function below;
2. the environment variable ``LIGHTGCN_DATA_DIR``;
3. ``data/`` at the root of this repository (git-ignored) when the package is used
   from a checkout, else ``~/.cache/lightgcn_helpers``.

Files are verified by whichever checksums are known for them (any one that matches is
enough, each pins the content): the ``sha256`` of the bytes, the ``git_blob`` id of the
bytes (what ``git hash-object FILE`` prints; GitHub repositories publish these), or
:func:`pairs_sha256`, a sha256 over the parsed, sorted ``(user, item)`` pairs of a
LightGCN-format split, which accepts a re-formatted copy holding exactly the same pairs.
"""
from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .env import quiet_progress

__all__ = [
    "DataError",
    "DATA_DIR_ENV",
    "RETRIES",
    "RemoteFile",
    "default_data_dir",
    "sha256_of",
    "git_blob_id",
    "pairs_sha256",
    "fetch_file",
    "fetch_archive",
    "read_interactions",
    "read_lightgcn_split",
    "download_movielens",
    "load_ratings",
    "load_movies",
    "load_movielens",
    "MOVIELENS_URL",
    "MOVIELENS_SHA256",
    "RATING_COLUMNS",
]

DATA_DIR_ENV = "LIGHTGCN_DATA_DIR"
RETRIES = 2  # extra download attempts after a failed one (pooch waits 1 s, 2 s, ... between them)
_CHUNK = 1 << 16
_MARKER = ".verified.json"

# ml-latest-small, the series' dataset (its registry entry in lightgcn_helpers.datasets uses these).
MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
MOVIELENS_SHA256 = "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"
_MOVIELENS_ZIP_NAME = "ml-latest-small.zip"
RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
_MOVIE_COLUMNS = ("movieId", "title", "genres")


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


def _root(data_dir: Path | str | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


# ---------------------------------------------------------------- checksums

def sha256_of(path: Path | str) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_id(path: Path | str) -> str:
    """The git blob id of a file's bytes, as ``git hash-object FILE`` prints it:
    sha1 of ``b"blob <size>\\0"`` followed by the bytes."""
    digest = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pairs_sha256(users, items) -> str:
    """sha256 over ``(user, item)`` pairs sorted by user, then item, as little-endian
    ``int64`` rows ``[user, item]``. Two files hold exactly the same pairs if and only if
    (up to sha256 collisions) their digests agree, whatever their layout."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    order = np.lexsort((items, users))
    rows = np.stack([users[order], items[order]], axis=1).astype("<i8")
    return hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where to get it and how to verify it. At least one
    checksum is required; a file passes when any given checksum matches."""

    name: str
    url: str
    sha256: str | None = None
    git_blob: str | None = None
    pairs_sha256: str | None = None  # for LightGCN-format splits (see pairs_sha256)
    size: int | None = None  # bytes, informational

    def __post_init__(self):
        if not (self.sha256 or self.git_blob or self.pairs_sha256):
            raise ValueError(f"{self.name}: give at least one of sha256, git_blob, pairs_sha256")

    def fingerprint(self) -> str:
        """The checksums this file is verified against (a changed entry means: verify again)."""
        return f"sha256={self.sha256} git_blob={self.git_blob} pairs_sha256={self.pairs_sha256}"

    def checks(self, path: Path) -> list[tuple[str, str, str]]:
        """``(kind, expected, actual)`` for every checksum this file has (cheapest first)."""
        out = []
        if self.sha256:
            out.append(("sha256", self.sha256, sha256_of(path)))
        if self.git_blob:
            out.append(("git blob id", self.git_blob, git_blob_id(path)))
        if self.pairs_sha256:
            try:
                pairs = read_lightgcn_split(path)
                actual = pairs_sha256(pairs["user"], pairs["item"])
            except DataError:
                actual = "(not a readable split)"
            out.append(("pairs sha256", self.pairs_sha256, actual))
        return out


# ---------------------------------------------------------------- download, verify, cache

def _read_marker(folder: Path) -> dict:
    try:
        return json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return {}


def _marker_value(remote: RemoteFile, path: Path) -> str:
    """What the marker remembers of a verified file: its bytes' sha256 and the checksums it
    passed."""
    return f"{sha256_of(path)} {remote.fingerprint()}"


def _write_marker(folder: Path, name: str, value: str) -> None:
    marks = _read_marker(folder)
    marks[name] = value
    tmp = folder / (_MARKER + ".part")
    tmp.write_text(json.dumps(marks, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, folder / _MARKER)


def _verify(remote: RemoteFile, path: Path) -> None:
    """Raise :class:`DataError` (and delete ``path``) unless a checksum of ``remote`` matches."""
    checks = remote.checks(path)
    if any(expected == actual for _, expected, actual in checks):
        return
    path.unlink(missing_ok=True)
    detail = "; ".join(f"expected {kind} {exp}, got {act}" for kind, exp, act in checks)
    raise DataError(
        f"Checksum mismatch for {remote.name}: {detail}.\n"
        f"The corrupt file has been removed. Run again to download it afresh from {remote.url}, "
        f"or place a good copy at:\n    {path}"
    )


def _download(remote: RemoteFile, target: Path, timeout: float) -> None:
    """Download ``remote`` to ``target`` with pooch: a temporary file in the same folder,
    moved into place only when complete (and, with a sha256, only when it matches)."""
    import pooch
    import requests

    target.parent.mkdir(parents=True, exist_ok=True)
    fetcher = pooch.create(path=target.parent, base_url="", registry={target.name: (
        f"sha256:{remote.sha256}" if remote.sha256 else None)}, urls={target.name: remote.url},
        retry_if_failed=RETRIES)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # pooch's INFO lines ("Downloading ...", "SHA256 hash of ...")
    by_hand = f"download the file by hand and place it at:\n    {target}"
    try:
        downloader = pooch.HTTPDownloader(progressbar=not quiet_progress(), timeout=timeout)
        fetcher.fetch(target.name, downloader=downloader)
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
        raise DataError(f"The download of {remote.url} was interrupted; nothing was kept.\n"
                        f"Run again, or {by_hand}") from None
    except requests.exceptions.RequestException as exc:
        raise DataError(
            f"Could not download {remote.url} ({_reason(exc)}).\n"
            f"Check your network connection and run again, or {by_hand}\n"
            f"(it is verified before use)."
        ) from None
    except ValueError as exc:  # pooch: the sha256 of the download does not match
        raise DataError(f"Checksum mismatch for the download of {remote.name} from {remote.url}: "
                        f"{exc}\n"
                        "The corrupt download has been removed; nothing was kept. Run again "
                        "later, "
                        f"or {by_hand}") from None
    except OSError as exc:
        raise DataError(f"Could not write {target} ({exc}). Check the folder's permissions and "
                        "free space, "
                        f"or set {DATA_DIR_ENV} to another folder.") from None
    finally:
        logger.setLevel(level)


def _reason(exc) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code} {response.reason}"
    text = str(exc.args[0] if exc.args else exc)
    return text.split("Caused by ")[-1].strip("()'\" ") or type(exc).__name__


def fetch_file(remote: RemoteFile, folder: Path | str, timeout: float = 30.0) -> Path:
    """Make sure ``remote`` is in ``folder`` and verified; return its path.

    The network is touched only when the file is missing. A file that is present but not
    yet verified (say, copied there by hand) is verified first; a bad one is removed and
    :class:`DataError` says so. A verified file is remembered (by its sha256) in
    ``folder/.verified.json``, so later runs only re-hash its bytes.
    """
    folder = Path(folder)
    path = folder / remote.name
    if path.is_file():
        if _read_marker(folder).get(remote.name) == _marker_value(remote, path):
            return path
    else:
        _download(remote, path, timeout)
    _verify(remote, path)
    _write_marker(folder, remote.name, _marker_value(remote, path))
    return path


def _extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract into a temporary folder, then rename it into place (never half-extracted).
    An archive holding one top folder named like ``dest`` has that folder's contents moved."""
    dest.parent.mkdir(parents=True, exist_ok=True)
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
    return dest


def fetch_archive(remote: RemoteFile, data_dir: Path | str | None = None, folder: str | None = None,
                  required_files: Iterable[str] = (), timeout: float = 30.0) -> Path:
    """Download (once), verify and extract the zip ``remote`` into ``<data_dir>/<folder>``;
    return that folder. ``folder`` defaults to the archive's name without ``.zip``."""
    root = _root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    dest = root / (folder or remote.name.removesuffix(".zip"))
    required = list(required_files)
    zip_path = fetch_file(remote, root, timeout)  # verified (or downloaded and verified)
    marker = dest / ".verified"  # the sha256 of the archive this folder was extracted from
    digest = sha256_of(zip_path)
    complete = all((dest / f).is_file() for f in required)
    if marker.is_file() and marker.read_text().strip() == digest and complete:
        return dest
    _extract_zip(zip_path, dest)
    missing = [f for f in required if not (dest / f).is_file()]
    if missing:
        raise DataError(f"{zip_path.name} does not contain {missing}; is it the right archive?")
    marker.write_text(digest + "\n")
    return dest


# ---------------------------------------------------------------- reading interaction tables

def _read_text_table(path: Path, sep: str, header, encoding: str) -> pd.DataFrame:
    """``pd.read_csv`` with readable errors; a multi-character separator (``::``) is
    replaced by a tab so the fast C parser can be used."""
    try:
        if len(sep) > 1:
            text = path.read_text(encoding=encoding).replace(sep, "\t")
            return pd.read_csv(io.StringIO(text), sep="\t", header=header)
        return pd.read_csv(path, sep=sep, header=header, encoding=encoding)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist. Check the path (relative paths start at the "
                        f"current folder, {Path.cwd().name}/).") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; pass the interaction file inside it.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"Could not parse {path.name}: {exc}. Check the separator (sep={sep!r}) "
                        "and "
                        f"the encoding (encoding={encoding!r}; MovieLens' older files are "
                        "'latin-1').") from None


def read_interactions(source, *, sep: str = ",", header: bool = True,
                      names: Iterable[str] | None = None, user_col: str = "userId",
                      item_col: str = "movieId", rating_col: str | None = "rating",
                      timestamp_col: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Read and check an interaction table: one row per (user, item) event.

    ``source`` is a path or a DataFrame. For files: ``sep`` is the separator (``","``,
    ``"\\t"``, ``"::"``, ...); ``header=True`` takes the column names from the first
    line, ``header=False`` uses ``names`` (default: ``user_col, item_col[, rating_col]
    [, timestamp_col]``, in that order, for the first columns). ``rating_col=None``
    means implicit data (every row is a positive); otherwise the column must be numeric.

    Returns a DataFrame with the columns ``user_col, item_col[, rating_col][,
    timestamp_col]`` (in that order, other columns dropped). Every problem raises
    :class:`DataError` with what to do: missing file, a single column (wrong separator),
    missing or misnamed columns, empty ids, non-numeric ratings or timestamps.
    """
    wanted = [c for c in (user_col, item_col, rating_col, timestamp_col) if c is not None]
    if isinstance(source, pd.DataFrame):
        df, where = source, "the DataFrame"
    else:
        path = Path(source).expanduser()
        df, where = _read_file(path, sep, header, names, wanted, encoding), path.name
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DataError(_missing_columns(where, missing, df.columns, rating_col))
    out = df[wanted].copy()
    for col in (user_col, item_col):
        if out[col].isna().any():
            rows = np.flatnonzero(out[col].isna().to_numpy())[:5].tolist()
            raise DataError(f"{where}: column {col!r} is empty in {int(out[col].isna().sum())} "
                            f"row(s), e.g. rows {rows}. Drop or fill those rows first.")
    for col in (rating_col, timestamp_col):
        if col is not None and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = _numeric(out[col], col, where)
    if rating_col is not None and out[rating_col].isna().any():
        raise DataError(f"{where}: {int(out[rating_col].isna().sum())} rating(s) are missing. "
                        f"Drop those rows, or pass rating_col=None for implicit data.")
    return out.reset_index(drop=True)


def _read_file(path: Path, sep: str, header: bool, names, wanted: list[str],
               encoding: str) -> pd.DataFrame:
    """An interaction file as a DataFrame, columns named (``names`` without a header line)."""
    df = _read_text_table(path, sep, 0 if header else None, encoding)
    if not header:
        names = list(names) if names is not None else wanted
        if df.shape[1] < len(names):
            raise DataError(f"{path.name} has {df.shape[1]} column(s), fewer than the {len(names)} "
                            f"names {names}. Check the separator (sep={sep!r}).")
        df = df.rename(columns=dict(zip(df.columns, names)))
    if df.shape[1] == 1 and len(wanted) > 1:
        first = str(df.columns[0]) if header else str(df.iloc[0, 0])
        raise DataError(
            f"{path.name} has a single column ({first[:60]!r}): the separator is probably wrong "
            f"(sep={sep!r} was used). Try sep='\\t' for tab-separated files or sep='::' for "
            f"MovieLens .dat files.")
    return df


def _missing_columns(where: str, missing: list[str], columns, rating_col) -> str:
    """The message for columns a table lacks, with the closest names it has."""
    have = [str(c) for c in columns]
    hints = []
    for c in missing:
        close = difflib.get_close_matches(c, have, n=1, cutoff=0.5)
        hints.append(f"{c!r} (did you mean {close[0]!r}?)" if close else repr(c))
    implicit = (" For implicit data without ratings pass rating_col=None."
                if rating_col in missing else "")
    return (f"{where} lacks the column(s) {', '.join(hints)}; it has {have}. Name the columns "
            f"with user_col=, item_col=, rating_col=, timestamp_col= (or header=False and "
            f"names=[...] for a file without a header line).{implicit}")


def _numeric(column: pd.Series, col: str, where: str) -> pd.Series:
    """A rating or timestamp column as numbers; a readable error naming the bad values."""
    numeric = pd.to_numeric(column, errors="coerce")
    bad = numeric.isna() & column.notna()
    if bad.any():
        examples = column[bad].astype(str).unique()[:3].tolist()
        rows = np.flatnonzero(bad.to_numpy())[:3].tolist()
        raise DataError(f"{where}: {int(bad.sum())} value(s) of column {col!r} are not numbers, "
                        f"e.g. {examples} (rows {rows}). Clean them, or pass rating_col=None for "
                        f"implicit data.")
    return numeric


def read_lightgcn_split(path: Path | str) -> pd.DataFrame:
    """A LightGCN-format split (``train.txt`` / ``test.txt`` of the paper's datasets): one
    line per user, ``user item item ...``, 0-based ids. Returns a DataFrame ``user, item``
    (``int64``), one row per pair, in file order. Parsed per line (one line per user),
    never per interaction."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist.") from None
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not a text file of integers (user item item ...).") \
            from None
    fields = [line.split() for line in lines if line.strip()]
    counts = np.fromiter((len(f) for f in fields), dtype=np.int64, count=len(fields))
    try:
        flat = np.array([tok for f in fields for tok in f], dtype=np.int64)
    except ValueError:
        raise DataError(f"{path.name} holds something other than integer ids; expected lines "
                        f"'user item item ...'.") from None
    heads = np.cumsum(counts) - counts
    is_item = np.ones(flat.size, dtype=bool)
    is_item[heads] = False
    users = np.repeat(flat[heads], counts - 1)
    return pd.DataFrame({"user": users, "item": flat[is_item]})


# ---------------------------------------------------------------- ml-latest-small (the series'
# dataset)

def download_movielens(data_dir: Path | str | None = None, url: str = MOVIELENS_URL,
                       sha256: str = MOVIELENS_SHA256, timeout: float = 30.0,
                       required_files: Iterable[str] = ("ratings.csv", "movies.csv")) -> Path:
    """Make sure ``ml-latest-small`` is in the cache; return the extracted folder
    ``<data_dir>/ml-latest-small`` (``ratings.csv``, ``movies.csv``, ``tags.csv``,
    ``links.csv``, ``README.txt``). The network is touched only when the zip is not
    cached yet; a cached zip is verified before it is trusted."""
    remote = RemoteFile(_MOVIELENS_ZIP_NAME, url, sha256=sha256)
    return fetch_archive(remote, data_dir, "ml-latest-small", required_files, timeout)


def _read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path} is missing; call download_movielens() first.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"Could not parse {path.name}: {exc}. Delete {path.parent} and run "
                        f"again.") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path.name} lacks the expected column(s) {missing}; it has {list(df.columns)}. "
            f"Expected at least {list(required)}."
        )
    return df


def load_ratings(data_dir: Path | str | None = None, url: str = MOVIELENS_URL,
                 sha256: str = MOVIELENS_SHA256) -> pd.DataFrame:
    """Ratings as a DataFrame: ``userId`` (int64), ``movieId`` (int64), ``rating``
    (float64, 0.5..5.0 in half stars), ``timestamp`` (int64, Unix seconds).
    ml-latest-small has 100,836 rows. ``url``/``sha256`` as in :func:`download_movielens`."""
    return _read_csv(download_movielens(data_dir, url, sha256) / "ratings.csv", RATING_COLUMNS)


def load_movies(data_dir: Path | str | None = None, url: str = MOVIELENS_URL,
                sha256: str = MOVIELENS_SHA256) -> pd.DataFrame:
    """Movies as a DataFrame: ``movieId`` (int64), ``title`` (str, with the year in
    parentheses), ``genres`` (str, ``|``-separated). ml-latest-small has 9,742 rows."""
    return _read_csv(download_movielens(data_dir, url, sha256) / "movies.csv", _MOVIE_COLUMNS)


def load_movielens(data_dir: Path | str | None = None, url: str = MOVIELENS_URL,
                   sha256: str = MOVIELENS_SHA256) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ratings, movies)``, see :func:`load_ratings` and :func:`load_movies`."""
    return load_ratings(data_dir, url, sha256), load_movies(data_dir, url, sha256)
