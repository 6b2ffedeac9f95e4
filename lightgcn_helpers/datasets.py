"""A registry of known interaction datasets, and one call to load any of them.

====================  ==============================================================
``ml-latest-small``   MovieLens, 100,836 ratings (the series' dataset), GroupLens
``ml-100k``           MovieLens 100K (1998), 100,000 ratings, GroupLens
``ml-1m``             MovieLens 1M (2003), 1,000,209 ratings, GroupLens
``gowalla``           LightGCN paper's Gowalla split (check-ins), 810,128 + 217,242
``yelp2018``          LightGCN paper's Yelp2018 split
``amazon-book``       LightGCN paper's Amazon-Book split
====================  ==============================================================

Each entry names its official URL(s), checksums, format and licence. Files are
downloaded once into the cache folder (:func:`lightgcn_helpers.data.default_data_dir`),
verified, and reused without touching the network::

    from lightgcn_helpers.datasets import load_dataset
    ds = load_dataset("ml-100k")          # interactions (+ movie titles) as DataFrames
    graph = ds.graph()                   # the InteractionGraph the notebooks use

MovieLens archives are verified by their published sha256. The LightGCN splits come from
the paper authors' repository, where only git blob ids are published; they are verified
by the blob id of the bytes *or* by a sha256 over their parsed, sorted (user, item) pairs
(:func:`lightgcn_helpers.data.pairs_sha256`), so a copy that lists the same pairs in
another layout passes too, and a changed pair fails both. For your own file, skip the
registry: :func:`lightgcn_helpers.graph.build_graph` reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data import (
    DataError,
    RemoteFile,
    _read_text_table,
    _root,
    fetch_archive,
    fetch_file,
    read_lightgcn_split,
)

__all__ = ["DatasetInfo", "Dataset", "DATASETS", "list_datasets", "fetch_dataset", "load_dataset"]

_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_LIGHTGCN = "https://raw.githubusercontent.com/kuandeng/LightGCN/master/Data/"
_MOVIELENS_LICENCE = ("GroupLens research licence (the archive's README): research use, no "
                      "endorsement implied, "
                      "redistribution only under the same terms, no commercial use without "
                      "permission. "
                      "Cite Harper & Konstan, ACM TiiS 5(4), 2015, doi:10.1145/2827872.")
_LIGHTGCN_LICENCE = ("Preprocessed and split by the NGCF/LightGCN authors "
                     "(github.com/kuandeng/LightGCN, Data/); "
                     "original data under its publisher's terms. Cite He et al., SIGIR 2020 "
                     "(LightGCN) and the "
                     "source: {source}.")
_ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                  "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                  "Romance", "Sci-Fi", "Thriller", "War", "Western")


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry. ``format`` is one of ``'movielens-csv'`` (ml-latest-small,
    ml-20m, ml-25m), ``'ml-100k'``, ``'ml-1m'`` (zip archives) or ``'lightgcn'``
    (``train.txt``/``test.txt`` text splits, one line per user)."""

    name: str
    description: str
    format: str
    files: tuple[RemoteFile, ...]
    licence: str
    homepage: str
    folder: str | None = None  # archives: the folder the zip extracts to
    users: int | None = None  # published counts, for the overview
    items: int | None = None
    interactions: int | None = None
    threshold: float | None = 3.5  # explicit ratings: liked = rating >= threshold; None: implicit

    @property
    def is_split(self) -> bool:
        """True when the dataset comes with its own train/test split."""
        return self.format == "lightgcn"


def _movielens(name, description, sha256, size, fmt, users, items, interactions) -> DatasetInfo:
    return DatasetInfo(name, description, fmt,
                       (RemoteFile(f"{name}.zip", _GROUPLENS + f"{name}.zip", sha256=sha256,
                                                           size=size),),
                       _MOVIELENS_LICENCE, "https://grouplens.org/datasets/movielens/", folder=name,
                       users=users, items=items, interactions=interactions)


def _lightgcn(name, description, source, blobs, pairs=None, sizes=None,
              counts=(None, None, None)) -> DatasetInfo:
    pairs, sizes = pairs or {}, sizes or {}
    files = tuple(RemoteFile(f, f"{_LIGHTGCN}{name}/{f}", git_blob=blobs[f],
                             pairs_sha256=pairs.get(f),
                             size=sizes.get(f)) for f in ("train.txt", "test.txt", "user_list.txt",
                                                          "item_list.txt"))
    users, items, interactions = counts
    return DatasetInfo(name, description, "lightgcn", files,
                       _LIGHTGCN_LICENCE.format(source=source),
                       f"https://github.com/kuandeng/LightGCN/tree/master/Data/{name}",
                       users=users, items=items,
                       interactions=interactions, threshold=None)


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    _movielens("ml-latest-small", "MovieLens latest, small (2018): 5-star ratings with half stars",
               "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202,
               "movielens-csv", 610, 9724, 100836),
    _movielens("ml-100k", "MovieLens 100K (1998): 1-5 star ratings",
               "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029,
               "ml-100k", 943, 1682, 100000),
    _movielens("ml-1m", "MovieLens 1M (2003): 1-5 star ratings",
               "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549, "ml-1m",
               6040, 3706, 1000209),
    _lightgcn("gowalla", "Gowalla check-ins, the LightGCN paper's split (implicit)",
              "SNAP loc-gowalla (Cho, Myers & Leskovec, KDD 2011)",
              {"train.txt": "a27782bd7a1d4d0744148dc0460ea94da74763f2",
               "test.txt": "9ed5af4b5d21511f33740b4e22e3852f45671800",
               "user_list.txt": "6be41d0eedf17a8d9345ee4f7b70124cd4423bc4",
               "item_list.txt": "ced87ec4352ba75a70b4c3afc62361aa655cc293"},
              pairs={
                  "train.txt": "d453bfc18e5613d6310ab05f7ebc1c6c724ee913dc31c769d1c8743c678d27f7",
                  "test.txt": "dac9527045e35230c82e4a5c54715b5e60f8a7bbe935ffdb4ee2ebe21c32ddb7"},
              sizes={"test.txt": 1372559, "user_list.txt": 351203, "item_list.txt": 506926},
              counts=(29858, 40981, 810128 + 217242)),
    _lightgcn("yelp2018", "Yelp 2018 challenge, the LightGCN paper's split (implicit)",
              "the Yelp 2018 dataset challenge",
              {"train.txt": "cda12361055ba448ae4bd1070f6000c16dea8f22",
               "test.txt": "30dfbc3437b27b74cb2970b435a5ec93ad9f2468",
               "user_list.txt": "e307ac182d9acebc8f4e929eac0569f8b964e244",
               "item_list.txt": "8518b74211e56ab05462b4ce0a3222bb19c238f9"},
              sizes={"test.txt": 1986152, "user_list.txt": 907278, "item_list.txt": 1092298}),
    _lightgcn("amazon-book", "Amazon-Book reviews, the LightGCN paper's split (implicit)",
              "Amazon review data (McAuley et al.)",
              {"train.txt": "6ef55159c5f1fd7f6d86eb9ff290d0cc2854ac99",
               "test.txt": "09e5da4e0bf46c751c4ba0f4375e414fd13512cd",
               "user_list.txt": "9caeb9c0c9abd6ef1bdc2dbad1dcbda2dcffb8dc",
               "item_list.txt": "a855fe36654521c76a9fe1bb2144dc420f279c9d"},
              sizes={"test.txt": 3848611, "user_list.txt": 1080734, "item_list.txt": 1546089}),
)}


def list_datasets() -> pd.DataFrame:
    """The registry as a table: name, description, format, published counts, homepage."""
    rows = [{"name": d.name, "description": d.description, "format": d.format, "users": d.users,
             "items": d.items, "interactions": d.interactions, "homepage": d.homepage}
            for d in DATASETS.values()]
    return pd.DataFrame(rows).set_index("name")


def _info(dataset: str | DatasetInfo) -> DatasetInfo:
    if isinstance(dataset, DatasetInfo):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(dataset), list(DATASETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"Unknown dataset {dataset!r}.{hint} Known datasets: "
                        f"{', '.join(DATASETS)}. For your own file use "
                        f"lightgcn_helpers.graph.build_graph(path, ...).") from None


def fetch_dataset(dataset: str | DatasetInfo, data_dir: Path | str | None = None,
                  timeout: float = 30.0) -> Path:
    """Download (once) and verify a dataset's files; return the folder holding them
    (``<data_dir>/<name>``). ``dataset`` is a registry name or a :class:`DatasetInfo`."""
    info = _info(dataset)
    if info.format == "lightgcn":
        folder = _root(data_dir) / info.name
        for remote in info.files:
            fetch_file(remote, folder, timeout)
        return folder
    required = {"movielens-csv": ("ratings.csv", "movies.csv"), "ml-100k": ("u.data", "u.item"),
                "ml-1m": ("ratings.dat", "movies.dat")}[info.format]
    return fetch_archive(info.files[0], data_dir, info.folder or info.name, required, timeout)


@dataclass
class Dataset:
    """A loaded dataset: ``interactions`` (one row per event) and optional ``items``
    metadata, with the column names to pass to :func:`~lightgcn_helpers.graph.build_graph`."""

    info: DatasetInfo
    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    # user_col, item_col, rating_col, timestamp_col, split_col
    columns: dict = field(default_factory=dict)

    def graph(self, threshold: float | None = None, val_frac: float | None = None,
              test_frac: float = 0.1,
              seed: int = 1, **kwargs):
        """The :class:`~lightgcn_helpers.graph.InteractionGraph` of this dataset.

        MovieLens: liked = rating ≥ ``threshold`` (default 3.5), edges split randomly
        ``1 - val_frac - test_frac`` / ``val_frac`` (default 0.1) / ``test_frac``. LightGCN
        splits keep their published train/test split; ``val_frac`` (default 0: the paper's
        protocol has no validation split) carves a validation split out of the training file."""
        from .graph import build_graph

        if val_frac is None:
            val_frac = 0.0 if self.info.is_split else 0.1
        if threshold is None:
            threshold = self.info.threshold if self.info.threshold is not None else 3.5
        return build_graph(self.interactions, **self.columns, threshold=threshold,
                           val_frac=val_frac, test_frac=test_frac, seed=seed, items=self.items,
                           name=self.info.name, **kwargs)


def _genres_from_flags(flags: pd.DataFrame) -> pd.Series:
    """ml-100k's 19 genre columns of 0/1 → ``'Action|Comedy'`` strings (vectorized)."""
    names = np.array(_ML100K_GENRES, dtype=object)
    marks = flags.to_numpy(dtype=bool)
    return pd.Series(["|".join(names[row]) for row in marks], index=flags.index)  # one per movie


def load_dataset(dataset: str | DatasetInfo, data_dir: Path | str | None = None) -> Dataset:
    """Fetch (once) and read a registry dataset. MovieLens releases come as
    ``userId, movieId, rating, timestamp`` plus ``items`` = ``movieId, title, genres``;
    LightGCN splits as ``user, item, split`` (``'train'``/``'test'``, ids already 0-based)
    plus ``items`` = ``item, org_id`` (the original ids)."""
    info = _info(dataset)
    folder = fetch_dataset(info, data_dir)
    ml_cols = {"user_col": "userId", "item_col": "movieId", "rating_col": "rating",
               "timestamp_col": "timestamp"}
    if info.format == "movielens-csv":
        ratings = _read_text_table(folder / "ratings.csv", ",", 0, "utf-8")
        movies = _read_text_table(folder / "movies.csv", ",", 0, "utf-8")
        return Dataset(info, ratings, movies[["movieId", "title", "genres"]], ml_cols)
    if info.format == "ml-100k":
        ratings = _read_text_table(folder / "u.data", "\t", None, "latin-1")
        ratings.columns = list(ml_cols.values())[: ratings.shape[1]]
        raw = _read_text_table(folder / "u.item", "|", None, "latin-1")
        movies = pd.DataFrame({"movieId": raw[0], "title": raw[1],
                               "genres": _genres_from_flags(raw.iloc[:, 5:24])})
        return Dataset(info, ratings, movies, ml_cols)
    if info.format == "ml-1m":
        ratings = _read_text_table(folder / "ratings.dat", "::", None, "latin-1")
        ratings.columns = list(ml_cols.values())[: ratings.shape[1]]
        movies = _read_text_table(folder / "movies.dat", "::", None, "latin-1")
        movies.columns = ["movieId", "title", "genres"][: movies.shape[1]]
        return Dataset(info, ratings, movies, ml_cols)
    parts = [read_lightgcn_split(folder / f"{part}.txt").assign(split=part) for part in ("train",
                                                                                         "test")]
    interactions = pd.concat(parts, ignore_index=True)
    items = None
    if (folder / "item_list.txt").is_file():
        raw = _read_text_table(folder / "item_list.txt", " ", 0, "utf-8")
        items = pd.DataFrame({"item": raw["remap_id"], "org_id": raw["org_id"]})
    return Dataset(info, interactions, items,
                   {"user_col": "user", "item_col": "item", "rating_col": None,
                                               "split_col": "split"})
