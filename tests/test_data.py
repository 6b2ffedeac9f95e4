"""Download, verify, cache and read: every path tested against a local HTTP server.

No test here touches the internet: tiny files are built in memory and served from
127.0.0.1 on an ephemeral port (tests/http_server.py).
"""
from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightgcn_helpers import data
from lightgcn_helpers.data import (
    DataError,
    RemoteFile,
    download_movielens,
    fetch_file,
    git_blob_id,
    load_movielens,
    load_movies,
    load_ratings,
    pairs_sha256,
    read_interactions,
    read_lightgcn_split,
)

RATINGS_CSV = ("userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,3.5,964981247\n"
               "2,10,2.5,964982224\n")
MOVIES_CSV = ('movieId,title,genres\n10,Toy Story (1995),Adventure|Animation\n'
              '20,"Heat, The (1995)",Action|Crime\n')


def make_zip(files: dict[str, str], folder: str = "ml-latest-small") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{folder}/{name}", text)
    return buf.getvalue()


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


GOOD_ZIP = make_zip({"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV})


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
    server.stop()
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


def test_unreachable_url_names_url_and_target_path(tmp_path, closed_port_url, monkeypatch):
    monkeypatch.setattr(data, "RETRIES", 0)
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
    # this checkout's root, found from the test file
    repo_root = Path(__file__).resolve().parents[1]
    assert data.default_data_dir() == repo_root / "data"


def test_a_flaky_download_is_retried(server, tmp_path, monkeypatch):
    # pooch retries a failed download (data.RETRIES extra attempts): two interrupted
    # transfers, then a good one, and the caller never notices.
    monkeypatch.setattr(data, "RETRIES", 2)
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # pooch waits between attempts
    url = server.serve("/ml-latest-small.zip", GOOD_ZIP)
    server.fail_first["/ml-latest-small.zip"] = 2
    folder = download_movielens(tmp_path / "cache", url=url, sha256=sha(GOOD_ZIP), timeout=5)
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert len(server.requests) == 3


# ---------------------------------------------------------------- checksums of text splits

SPLIT_TXT = "0 0 1 2\n1 2\n2 1 3\n"  # LightGCN format: user item item ...
SPLIT_PAIRS = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 1), (2, 3)]


def test_git_blob_id_is_what_git_hash_object_prints(tmp_path):
    for name, payload in (("a.txt", SPLIT_TXT.encode()), ("empty", b""),
                          ("bin", bytes(range(256)) * 300)):
        path = tmp_path / name
        path.write_bytes(payload)
        expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True,
                                  check=True).stdout.strip()
        assert git_blob_id(path) == expected


def test_read_lightgcn_split(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(SPLIT_TXT + "3\n")  # a user line without items adds no pair
    pairs = read_lightgcn_split(path)
    assert list(pairs.columns) == ["user", "item"] and pairs["user"].dtype == np.int64
    assert list(map(tuple, pairs.to_numpy().tolist())) == SPLIT_PAIRS
    path.write_text("0 1 x\n")
    with pytest.raises(DataError, match="integer"):
        read_lightgcn_split(path)


def test_pairs_checksum_ignores_layout_but_not_content():
    users, items = np.array([u for u, _ in SPLIT_PAIRS]), np.array([i for _, i in SPLIT_PAIRS])
    # sorted rows by hand
    reference = hashlib.sha256(np.array(SPLIT_PAIRS, dtype="<i8").tobytes()).hexdigest()
    assert pairs_sha256(users, items) == reference
    shuffled = np.random.default_rng(0).permutation(len(users))
    assert pairs_sha256(users[shuffled], items[shuffled]) == reference
    changed = items.copy()
    changed[3] = 3  # the pair (1, 2) becomes (1, 3)
    assert pairs_sha256(users, changed) != reference


def test_a_split_passes_by_blob_id_or_by_its_pairs(server, tmp_path):
    published = SPLIT_TXT.encode()
    relaid = b"2 3 1\n0 2 1 0\n1 2\n"  # the same pairs, other order: not the same bytes
    (tmp_path / "p.txt").write_bytes(published)
    blob = git_blob_id(tmp_path / "p.txt")
    pairs = pairs_sha256(*read_lightgcn_split(tmp_path / "p.txt").to_numpy().T)
    for i, payload in enumerate((published, relaid)):
        url = server.serve(f"/{i}/train.txt", payload)
        remote = RemoteFile("train.txt", url, git_blob=blob, pairs_sha256=pairs)
        path = fetch_file(remote, tmp_path / f"cache{i}", timeout=5)
        assert path.read_bytes() == payload
    # one changed pair fails both checks: removed, and the message names both
    url = server.serve("/bad/train.txt", b"0 0 1 3\n1 2\n2 1 3\n")
    with pytest.raises(DataError, match="(?s)git blob id.*pairs sha256.*removed"):
        fetch_file(RemoteFile("train.txt", url, git_blob=blob, pairs_sha256=pairs),
                   tmp_path / "bad", timeout=5)
    assert leftovers(tmp_path / "bad") == []


def test_a_verified_file_that_changes_is_verified_again(server, tmp_path):
    url = server.serve("/train.txt", SPLIT_TXT.encode())
    (tmp_path / "ref.txt").write_text(SPLIT_TXT)
    remote = RemoteFile("train.txt", url, git_blob=git_blob_id(tmp_path / "ref.txt"))
    path = fetch_file(remote, tmp_path / "cache", timeout=5)
    assert fetch_file(remote, tmp_path / "cache", timeout=5) == path and len(server.requests) == 1
    path.write_text("0 0\n")  # edited after it was verified
    with pytest.raises(DataError, match="Checksum mismatch"):
        fetch_file(remote, tmp_path / "cache", timeout=5)
    assert not path.exists()
    # downloaded afresh
    assert fetch_file(remote, tmp_path / "cache", timeout=5).read_text() == SPLIT_TXT


def test_a_file_needs_a_checksum():
    with pytest.raises(ValueError, match="at least one"):
        RemoteFile("x.txt", "http://127.0.0.1/x.txt")


# ---------------------------------------------------------------- reading your own interaction
# files

def test_read_interactions_from_files_in_three_formats(tmp_path):
    expected = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": [10, 20, 10],
                             "score": [4.0, 2.5, 5.0]})
    (tmp_path / "a.csv").write_text("user,item,score\nu1,10,4\nu1,20,2.5\nu2,10,5\n")
    # u.data style
    (tmp_path / "b.tsv").write_text("u1\t10\t4\t99\nu1\t20\t2.5\t98\nu2\t10\t5\t97\n")
    # ratings.dat style
    (tmp_path / "c.dat").write_text("u1::10::4::99\nu1::20::2.5::98\nu2::10::5::97\n")
    cols = dict(user_col="user", item_col="item", rating_col="score")
    assert read_interactions(tmp_path / "a.csv", **cols).to_dict("list") == expected.to_dict("list")
    got = read_interactions(tmp_path / "b.tsv", sep="\t", header=False, **cols)
    assert got.to_dict("list") == expected.to_dict("list")
    got = read_interactions(tmp_path / "c.dat", sep="::", header=False,
                            names=["user", "item", "score", "t"],
                            timestamp_col="t", **cols)
    assert got["t"].tolist() == [99, 98, 97] and got["score"].tolist() == [4.0, 2.5, 5.0]
    implicit = read_interactions(expected, user_col="user", item_col="item", rating_col=None)
    assert list(implicit.columns) == ["user", "item"]


def test_read_interactions_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_interactions(tmp_path / "nope.csv")
    (tmp_path / "tabs.tsv").write_text("userId\tmovieId\trating\n1\t2\t4.0\n")
    with pytest.raises(DataError, match="single column.*separator.*sep='\\\\t'"):
        read_interactions(tmp_path / "tabs.tsv")  # read with the default sep=","
    (tmp_path / "named.csv").write_text("user_id,movie,rating\n1,2,4.0\n")
    with pytest.raises(DataError) as err:
        read_interactions(tmp_path / "named.csv")
    assert "'userId' (did you mean 'user_id'?)" in str(err.value) and "'movieId'" in str(err.value)
    (tmp_path / "norating.csv").write_text("userId,movieId\n1,2\n")
    with pytest.raises(DataError, match="rating_col=None"):
        read_interactions(tmp_path / "norating.csv")
    (tmp_path / "words.csv").write_text("userId,movieId,rating\n1,2,4.0\n1,3,five\n2,2,n/a\n")
    with pytest.raises(DataError, match=r"1 value\(s\) of column 'rating' are not numbers.*five"):
        read_interactions(tmp_path / "words.csv")
    (tmp_path / "short.tsv").write_text("1\t2\n")
    with pytest.raises(DataError, match="fewer than the 3 names"):
        read_interactions(tmp_path / "short.tsv", sep="\t", header=False)
    with pytest.raises(DataError, match="empty in 1 row"):
        read_interactions(pd.DataFrame({"userId": [1, None], "movieId": [2, 3],
                                        "rating": [4.0, 4.0]}))
