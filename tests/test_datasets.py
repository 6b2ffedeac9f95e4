"""The dataset registry: every file format, downloaded from a local HTTP server into a
fresh cache, verified, read, and trained on end to end with the same helpers as MovieLens.

The files are small synthetic copies in each dataset's real layout; the registry entries
are the real ones with only their URLs and checksums swapped for the local copies'.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
import zipfile

import numpy as np
import pytest
import torch

from lightgcn_helpers.data import DataError, RemoteFile, git_blob_id, pairs_sha256
from lightgcn_helpers.datasets import DATASETS, fetch_dataset, list_datasets, load_dataset
from lightgcn_helpers.graph import ColdStartWarning, InteractionGraph
from lightgcn_helpers.metrics import embedding_scorer, evaluate_embeddings
from lightgcn_helpers.model import LightGCN
from lightgcn_helpers.recommend import recommend
from lightgcn_helpers.train import TrainConfig, train_bpr

RNG = np.random.default_rng(0)
USERS, ITEMS = 40, 25
# every user rates 12 distinct items, 1-5 stars, in timestamp order
RATED = [(u, int(i), int(RNG.integers(1, 6)), 1000 + 20 * u + k)
         for u in range(1, USERS + 1) for k, i in enumerate(RNG.permutation(ITEMS)[:12] + 1)]


def zipped(folder: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in files.items():
            zf.writestr(f"{folder}/{name}", payload)
    return buf.getvalue()


def ml100k_zip() -> bytes:
    data = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATED).encode()
    genres = lambda i: "|".join("1" if g in (i % 19, (3 * i) % 19) else "0" for g in range(19))  # noqa: E731
    item = "".join(f"{i}|Movie {i} (199{i % 10})|01-Jan-1995||http://x|{genres(i)}\n"
                   for i in range(1, ITEMS + 1))
    return zipped("ml-100k", {"u.data": data, "u.item": item.encode("latin-1")})


def ml1m_zip() -> bytes:
    data = "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in RATED).encode()
    movies = "".join(f"{i}::Film {i} é (200{i % 10})::Drama|Comedy\n" for i in range(1, ITEMS + 1))
    return zipped("ml-1m", {"ratings.dat": data, "movies.dat": movies.encode("latin-1")})


def mllatest_zip() -> bytes:
    data = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r - 0.5},{t}\n"
                                                         for u, i, r, t in RATED)
    movies = "movieId,title,genres\n" + "".join(f'{i},"Title, {i} (2001)",Action\n'
                                                for i in range(1, ITEMS + 1))
    return zipped("ml-latest-small", {"ratings.csv": data.encode(), "movies.csv": movies.encode()})


def lightgcn_files() -> dict[str, bytes]:
    """0-based users and items, one line per user: the first 9 items train, the rest test."""
    train, test = [], []
    for u in range(USERS):
        items = RNG.permutation(ITEMS)[:12]
        train.append(f"{u} " + " ".join(map(str, items[:9])))
        test.append(f"{u} " + " ".join(map(str, items[9:])))
    return {"train.txt": ("\n".join(train) + "\n").encode(),
            "test.txt": ("\n".join(test) + "\n").encode(),
            "user_list.txt": ("org_id remap_id\n"
                              + "".join(f"{100 + u} {u}\n" for u in range(USERS))).encode(),
            "item_list.txt": ("org_id remap_id\n"
                              + "".join(f"{5000 + i} {i}\n" for i in range(ITEMS))).encode()}


def served_archive(server, name: str, payload: bytes):
    """The registry entry ``name`` with its archive served locally (sha256 of the local copy)."""
    info = DATASETS[name]
    url = server.serve(f"/{name}.zip", payload)
    remote = dataclasses.replace(info.files[0], url=url, sha256=hashlib.sha256(payload).hexdigest())
    return dataclasses.replace(info, files=(remote,))


LIGHTGCN_FILES = lightgcn_files()


def served_split(server, tmp_path, name: str = "gowalla"):
    """The registry entry ``name`` with its four files served locally (git blob ids of the local
    copies)."""
    info = DATASETS[name]
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = []
    for remote in info.files:
        payload = LIGHTGCN_FILES[remote.name]
        (tmp_path / remote.name).write_bytes(payload)
        files.append(dataclasses.replace(remote,
                                         url=server.serve(f"/{name}/{remote.name}", payload),
                                         git_blob=git_blob_id(tmp_path / remote.name),
                                         pairs_sha256=None))
    return dataclasses.replace(info, files=tuple(files))


def train_briefly(graph: InteractionGraph) -> dict:
    torch.manual_seed(0)
    model = LightGCN(graph.num_users, graph.num_items, embedding_dim=8, num_layers=2)
    adj = graph.train_adjacency()
    cfg = TrainConfig(epochs=3, batch_size=128, lr=0.05, num_negatives=4, hard_negatives=2,
                      eval_every=1, k=5)
    val = graph.split.val if graph.split.val.shape[1] else None
    result = train_bpr(model, adj, graph.split.train, val, cfg, progress=False)
    assert len(result.loss) == 3 and all(np.isfinite(result.loss))
    users, items = model(adj)
    return evaluate_embeddings(users, items, graph.split.test, [graph.split.train, graph.split.val],
                               ks=(5,))


@pytest.mark.parametrize("name, make", [("ml-100k", ml100k_zip), ("ml-1m", ml1m_zip),
                                        ("ml-latest-small", mllatest_zip)])
def test_movielens_archives_load_and_train_end_to_end(server, tmp_path, name, make):
    info = served_archive(server, name, make())
    ds = load_dataset(info, data_dir=tmp_path)
    assert (tmp_path / name).is_dir() and (tmp_path / f"{name}.zip").is_file()
    assert list(ds.interactions.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(ds.interactions) == len(RATED) and ds.interactions["userId"].nunique() == USERS
    assert list(ds.items.columns) == ["movieId", "title", "genres"] and len(ds.items) == ITEMS
    if name == "ml-100k":  # genre flags became names: movie 1 has flags 1 and 3
        assert ds.items.loc[0, "genres"] == "Action|Animation"
    if name == "ml-1m":  # latin-1 titles
        assert ds.items.loc[0, "title"] == "Film 1 é (2001)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        graph = ds.graph(threshold=3.5 if name != "ml-latest-small" else 3.0)
    liked = sum(1 for *_, r, _ in [(u, i, r, t) for u, i, r, t in RATED] if r >= 4)
    assert graph.edges.shape[1] == liked and graph.name == name
    metrics = train_briefly(graph)
    assert 0 <= metrics["recall@5"] <= 1 and metrics["users"] > 0
    # titles flow through to the recommendations
    scorer = embedding_scorer(*LightGCN(graph.num_users, graph.num_items, 8,
                                        1)(graph.train_adjacency()))
    table = recommend(scorer, graph, None, int(graph.user_encoder.classes_[0]), k=3)
    assert table["title"].notna().all() and len(table) == 3
    # a second load uses the cache only
    before = len(server.requests)
    load_dataset(info, data_dir=tmp_path)
    assert len(server.requests) == before


def test_lightgcn_split_loads_with_its_own_split_and_trains(server, tmp_path):
    info = served_split(server, tmp_path / "src")
    ds = load_dataset(info, data_dir=tmp_path / "cache")
    assert set(ds.interactions["split"]) == {"train", "test"}
    assert list(ds.items.columns) == ["item", "org_id"] and ds.items["org_id"].iloc[0] == 5000
    graph = ds.graph()  # the paper's protocol: the published train/test split, no validation
    assert graph.split.sizes() == (USERS * 9, 0, USERS * 3)
    assert graph.user_encoder.classes_.tolist() == list(range(USERS))  # ids were already 0-based
    metrics = train_briefly(graph)
    assert metrics["users"] == USERS
    tuned = ds.graph(val_frac=0.1, seed=0)  # a validation split carved from the training file
    assert tuned.split.sizes() == (USERS * 9 - 36, 36, USERS * 3)
    assert torch.equal(tuned.split.test, graph.split.test)


def test_lightgcn_registry_accepts_a_copy_with_the_same_pairs(server, tmp_path):
    # the offline Gowalla copy lists each user's items sorted: other bytes, same pairs
    files = LIGHTGCN_FILES
    train = files["train.txt"].decode().splitlines()
    relaid = "".join(f"{line.split()[0]} " + " ".join(sorted(line.split()[1:],
                                                             key=int)) + "\n" for line in train)
    src = tmp_path / "published.txt"
    src.write_bytes(files["train.txt"])
    rows = np.array([[int(line.split()[0]), int(i)] for line in train for i in line.split()[1:]])
    remote = RemoteFile("train.txt", server.url("/none"), git_blob=git_blob_id(src),
                        pairs_sha256=pairs_sha256(rows[:, 0], rows[:, 1]))
    info = dataclasses.replace(DATASETS["gowalla"], files=(remote,))
    cache = tmp_path / "cache" / "gowalla"
    cache.mkdir(parents=True)
    (cache / "train.txt").write_text(relaid)  # pre-filled, as .ci/run does
    assert fetch_dataset(info, data_dir=tmp_path / "cache") == cache and server.requests == []
    (cache / "train.txt").write_text(relaid.replace(" 3 ", " 4 ", 1))  # one pair changed
    with pytest.raises(DataError, match="Checksum mismatch for train.txt"):
        fetch_dataset(info, data_dir=tmp_path / "cache")


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(DataError,
                       match="Unknown dataset 'gowala'. Did you mean 'gowalla'.*ml-100k"):
        load_dataset("gowala")


def test_registry_entries_are_complete():
    table = list_datasets()
    assert {"ml-latest-small", "ml-100k", "ml-1m", "gowalla", "yelp2018",
            "amazon-book"} <= set(table.index)
    for info in DATASETS.values():
        assert info.licence and info.homepage.startswith("https://")
        for remote in info.files:
            assert remote.url.startswith("https://") and remote.url.endswith(remote.name)
            digest = remote.sha256 or remote.git_blob
            assert all(c in "0123456789abcdef" for c in digest) and len(digest) in (40, 64)
