"""Download, verify, cache and load: every path tested against a local HTTP server.

No test here touches the internet: a tiny ``ml-latest-small.zip`` is built in
``tmp_path`` and served from 127.0.0.1 on an ephemeral port.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from lightgcn_helpers import data
from lightgcn_helpers.data import DataError, download_movielens, load_movielens, load_movies, load_ratings

RATINGS_CSV = "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,3.5,964981247\n2,10,2.5,964982224\n"
MOVIES_CSV = 'movieId,title,genres\n10,Toy Story (1995),Adventure|Animation\n20,"Heat, The (1995)",Action|Crime\n'


def make_zip(files: dict[str, str], folder: str = "ml-latest-small") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{folder}/{name}", text)
    return buf.getvalue()


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


GOOD_ZIP = make_zip({"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV})


class FakeServer:
    """Serves ``routes[path] = (body, mode)``; mode ``"ok"`` or ``"truncated"``
    (announces the full Content-Length, sends half the body, closes)."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, mode = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.routes[path] = (body, mode)
        return self.url(path)


@pytest.fixture
def server():
    srv = FakeServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ml-latest-small.zip"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_is_extracted_loaded_and_cached(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.serve("/ml-latest-small.zip", GOOD_ZIP)

    folder = download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)

    assert folder == cache / "ml-latest-small"
    assert (cache / "ml-latest-small.zip").read_bytes() == GOOD_ZIP
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert not [n for n in leftovers(cache) if n.endswith(".part")]
    assert server.requests == ["/ml-latest-small.zip"]

    # Later runs reuse the cache: same folder, no request at all, even with the server gone.
    server.httpd.shutdown()
    server.httpd.server_close()
    assert download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5) == folder
    ratings, movies = load_movielens(cache, url=url, sha256=sha(GOOD_ZIP))
    assert server.requests == ["/ml-latest-small.zip"]

    assert list(ratings.columns) == list(data.RATING_COLUMNS)
    assert ratings["rating"].tolist() == [4.0, 3.5, 2.5]  # floats, not truncated
    assert ratings["userId"].dtype.kind == "i" and ratings["movieId"].dtype.kind == "i"
    assert movies["title"].tolist() == ["Toy Story (1995)", "Heat, The (1995)"]


def test_cached_zip_without_extraction_is_verified_and_extracted_offline(tmp_path, closed_port_url):
    # What .ci/run and an offline user do: drop the zip where a download would put it.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-latest-small.zip").write_bytes(GOOD_ZIP)
    folder = download_movielens(cache, url=closed_port_url, sha256=sha(GOOD_ZIP))
    assert (folder / "movies.csv").read_text() == MOVIES_CSV


def test_corrupt_download_is_removed_and_reported(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.serve("/ml-latest-small.zip", GOOD_ZIP[:-10] + b"0123456789")

    with pytest.raises(DataError) as err:
        download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)

    msg = str(err.value)
    assert "checksum mismatch" in msg.lower()
    assert "removed" in msg
    assert sha(GOOD_ZIP) in msg
    assert not (cache / "ml-latest-small.zip").exists()
    assert leftovers(cache) == []


def test_corrupt_cached_zip_is_removed_then_a_rerun_downloads_afresh(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-latest-small.zip").write_bytes(b"not the archive")
    url = server.serve("/ml-latest-small.zip", GOOD_ZIP)

    with pytest.raises(DataError, match="removed"):
        download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)
    assert server.requests == []  # a cached file is checked before any download
    assert not (cache / "ml-latest-small.zip").exists()

    folder = download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)
    assert (folder / "ratings.csv").is_file()
    assert server.requests == ["/ml-latest-small.zip"]


def test_unreachable_url_names_url_and_target_path(tmp_path, closed_port_url):
    cache = tmp_path / "cache"

    with pytest.raises(DataError) as err:
        download_movielens(cache, url=closed_port_url, sha256=sha(GOOD_ZIP), timeout=5)

    msg = str(err.value)
    assert closed_port_url in msg
    assert str(cache / "ml-latest-small.zip") in msg
    assert leftovers(cache) == []  # no partial or temporary file


def test_http_error_names_url_and_target_path(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.url("/missing.zip")  # 404

    with pytest.raises(DataError) as err:
        download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)

    assert url in str(err.value)
    assert str(cache / "ml-latest-small.zip") in str(err.value)
    assert leftovers(cache) == []


def test_download_that_dies_half_way_leaves_nothing(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.serve("/ml-latest-small.zip", GOOD_ZIP, mode="truncated")

    with pytest.raises(DataError) as err:
        download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)

    assert "interrupted" in str(err.value)  # said as such, not as a checksum mismatch
    assert url in str(err.value)
    assert str(cache / "ml-latest-small.zip") in str(err.value)
    assert leftovers(cache) == []

    # Nothing was trusted: once the server behaves, a rerun downloads the whole file.
    server.serve("/ml-latest-small.zip", GOOD_ZIP)
    folder = download_movielens(cache, url=url, sha256=sha(GOOD_ZIP), timeout=5)
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert len(server.requests) == 2


def test_archive_missing_a_csv_is_reported(server, tmp_path):
    payload = make_zip({"ratings.csv": RATINGS_CSV})  # no movies.csv
    url = server.serve("/ml-latest-small.zip", payload)

    with pytest.raises(DataError, match="movies.csv"):
        download_movielens(tmp_path / "cache", url=url, sha256=sha(payload), timeout=5)


def test_csv_missing_columns_are_named(server, tmp_path):
    bad_ratings = "userId,movie,score\n1,10,4.0\n"  # lacks movieId, rating, timestamp
    payload = make_zip({"ratings.csv": bad_ratings, "movies.csv": MOVIES_CSV})
    url = server.serve("/ml-latest-small.zip", payload)
    cache = tmp_path / "cache"

    with pytest.raises(DataError) as err:
        load_ratings(cache, url=url, sha256=sha(payload))

    msg = str(err.value)
    assert "ratings.csv" in msg
    for column in ("movieId", "rating", "timestamp"):
        assert column in msg
    # the good file of the same archive still loads
    assert len(load_movies(cache, url=url, sha256=sha(payload))) == 2


def test_env_var_overrides_cache_folder(server, tmp_path, monkeypatch):
    cache = tmp_path / "from-env"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(cache))
    assert data.default_data_dir() == cache

    url = server.serve("/ml-latest-small.zip", GOOD_ZIP)
    folder = download_movielens(url=url, sha256=sha(GOOD_ZIP), timeout=5)

    assert folder == cache / "ml-latest-small"
    assert (cache / "ml-latest-small.zip").is_file()
    ratings = load_ratings(url=url, sha256=sha(GOOD_ZIP))
    assert isinstance(ratings, pd.DataFrame) and len(ratings) == 3


def test_default_cache_is_the_repository_data_folder(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    repo_root = Path(__file__).resolve().parents[1]  # this checkout's root, found from the test file
    assert data.default_data_dir() == repo_root / "data"


def test_published_checksum_and_url():
    assert data.MOVIELENS_URL == "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
    assert data.MOVIELENS_SHA256 == "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"
