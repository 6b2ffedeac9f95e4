"""From ratings to a bipartite user–item graph: encoders, edges, split, adjacency.

Conventions used throughout the package:

* users are indexed ``0..num_users-1`` and items ``0..num_items-1``, each with its
  own :class:`IdEncoder`;
* an *interaction* tensor ``edges`` has shape ``(2, E)``, dtype ``int64``: row 0 the
  user index, row 1 the item index (not offset);
* a *bipartite* ``edge_index`` (PyG convention) has shape ``(2, 2E)`` over
  ``num_users + num_items`` nodes, items offset by ``num_users``, both directions.

:func:`build_graph` turns any interaction table (a DataFrame or a file: MovieLens, the
LightGCN paper's splits, your own ``user,item[,rating]`` export) into the
:class:`InteractionGraph` the notebooks use; :func:`build_movielens_graph` is its
MovieLens shortcut. Nothing here allocates a dense ``(users + items)²`` matrix.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._fast import position_table, positions, quiet_sparse, sorted_unique, unique_keys

__all__ = [
    "IdEncoder",
    "positive_edges",
    "split_edges",
    "EdgeSplit",
    "bipartite_edge_index",
    "interaction_matrix",
    "adjacency_matrix",
    "symmetric_weights",
    "normalized_adjacency",
    "InteractionGraph",
    "ColdStartWarning",
    "build_graph",
    "build_movielens_graph",
]


class IdEncoder:
    """Invertible map between raw ids and contiguous indices ``0..n-1``. Derived in
    notebook 02, §2.

    Classes are the sorted unique raw ids, so the mapping equals scikit-learn's
    ``LabelEncoder``; ``transform`` and ``inverse_transform`` are vectorized
    (``np.searchsorted``) and raise a ``KeyError`` / ``IndexError`` naming the
    offending values instead of silently mapping them.
    """

    def __init__(self, name: str = "id"):
        self.name = name
        self.classes_: np.ndarray | None = None
        self._table: np.ndarray | None = None

    def fit(self, raw_ids) -> IdEncoder:
        self.classes_ = sorted_unique(raw_ids)  # np.unique(raw_ids), faster
        self._table = position_table(self.classes_)
        return self

    def _check_fitted(self):
        if self.classes_ is None:
            raise RuntimeError(f"{self.name} encoder is not fitted; call fit(raw_ids) first.")

    def __len__(self) -> int:
        self._check_fitted()
        return len(self.classes_)

    def transform(self, raw_ids) -> np.ndarray:
        """Raw ids (array-like) → ``int64`` indices of the same shape."""
        self._check_fitted()
        raw = np.asarray(raw_ids)
        table = getattr(self, "_table", None) if raw.dtype.kind == "i" else None
        idx, unknown = positions(self.classes_, raw, table)  # np.searchsorted(classes_, raw)
        if unknown.any():
            bad = np.unique(raw[unknown])
            raise KeyError(
                f"{len(bad)} unknown {self.name}(s), e.g. {bad[:5].tolist()}; "
                f"the encoder was fitted on {len(self.classes_)} ids."
            )
        return idx.astype(np.int64)

    def fit_transform(self, raw_ids) -> np.ndarray:
        return self.fit(raw_ids).transform(raw_ids)

    def inverse_transform(self, indices) -> np.ndarray:
        """Indices (array-like or tensor) → raw ids."""
        self._check_fitted()
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.classes_)):
            raise IndexError(f"{self.name} index out of range 0..{len(self.classes_) - 1}")
        return self.classes_[idx]

    def __repr__(self) -> str:
        n = "unfitted" if self.classes_ is None else f"{len(self.classes_)} classes"
        return f"IdEncoder({self.name!r}, {n})"


def positive_edges(
    ratings: pd.DataFrame,
    user_encoder: IdEncoder,
    item_encoder: IdEncoder,
    threshold: float | None = 3.5,
    user_col: str = "userId",
    item_col: str = "movieId",
    rating_col: str | None = "rating",
    timestamp_col: str | None = None,
) -> torch.Tensor:
    """Vectorized ratings → positive interactions, in the ratings' row order, each
    ``(user, item)`` pair once. Derived in notebook 02, §1–3.

    Explicit data: a rating ``>= threshold`` (exactly ``threshold`` included, compared
    as float) is a positive edge. A pair rated more than once is judged by its **latest**
    rating (the largest ``timestamp_col`` when given, else the last row). Implicit data
    (``rating_col=None``): every row is a positive, duplicates count once. Returns
    ``edges`` of shape ``(2, E)``, ``int64``. Raises ``ValueError`` when nothing is positive.
    """
    columns = (user_col, item_col, rating_col, timestamp_col)
    missing = [c for c in columns if c is not None and c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lacks column(s) {missing}; it has {list(ratings.columns)}")
    return _positive_edges(ratings, user_encoder, item_encoder, threshold, *columns)[0]


def _positive_edges(ratings, user_encoder, item_encoder, threshold, user_col, item_col,
                    rating_col, timestamp_col) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """:func:`positive_edges`, and for every row its pair's key ``user * num_items + item`` and
    whether it is the pair's latest row."""
    users = user_encoder.transform(ratings[user_col].to_numpy())
    items = item_encoder.transform(ratings[item_col].to_numpy())
    keys = users * len(item_encoder) + items
    times = None if timestamp_col is None else ratings[timestamp_col].to_numpy()
    latest = _latest_row_per_pair(keys, times)
    keep = latest
    if rating_col is not None:
        values = ratings[rating_col].to_numpy(dtype=np.float64)
        keep = latest & (values >= float(threshold))
        if not keep.any():
            raise ValueError(
                f"No rating is >= {threshold}: there are no positive edges. "
                f"Lower the threshold (ratings range {np.nanmin(values)}..{np.nanmax(values)}), "
                f"or pass rating_col=None if every row is a positive (implicit data).")
    if not keep.any():
        raise ValueError("There are no interactions: the table is empty.")
    return torch.from_numpy(np.stack([users[keep], items[keep]])), keys, latest


def _latest_row_per_pair(keys: np.ndarray, timestamps: np.ndarray | None) -> np.ndarray:
    """Boolean mask keeping, for every distinct key, one row: the one with the largest
    timestamp (ties and ``timestamps=None``: the last row). Order of the rows is kept."""
    ordered = np.sort(keys)
    if not (ordered[1:] == ordered[:-1]).any():  # every pair once (MovieLens): keep every row
        return np.ones(keys.size, dtype=bool)
    order = np.arange(keys.size) if timestamps is None else np.lexsort((np.arange(keys.size),
                                                                        timestamps))
    # in time order, the last occurrence of each key wins
    rev = order[::-1]
    _, first_in_rev = np.unique(keys[rev], return_index=True)
    keep = np.zeros(keys.size, dtype=bool)
    keep[rev[first_in_rev]] = True
    return keep


@dataclass
class EdgeSplit:
    """Train / validation / test interactions, each ``(2, E_part)`` ``int64``. Derived in
    notebook 02, §5."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def sizes(self) -> tuple[int, int, int]:
        return self.train.shape[1], self.val.shape[1], self.test.shape[1]


def split_edges(edges: torch.Tensor, val_frac: float = 0.1, test_frac: float = 0.1,
                seed: int = 1) -> EdgeSplit:
    """Random 80/10/10 edge split, the series' split (the one common LightGCN tutorials use).
    Derived in notebook 02, §5.

    ``train_test_split(range(E), test_size=val_frac + test_frac, random_state=seed)``
    then the held-out part halved (by ``test_frac / (val_frac + test_frac)``) with the
    same ``random_state``. On ml-latest-small (61,716 edges) this gives
    49,372 / 6,172 / 6,172. A fraction of 0 leaves that part empty (shape ``(2, 0)``).
    """
    from sklearn.model_selection import train_test_split

    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(f"val_frac={val_frac} and test_frac={test_frac} must be in [0, 1) with "
                         f"a sum below 1")
    all_idx = np.arange(edges.shape[1])
    empty = np.zeros(0, dtype=np.int64)
    try:
        if val_frac + test_frac == 0:
            train_idx, held_idx = all_idx, empty
        else:
            train_idx, held_idx = train_test_split(all_idx, test_size=val_frac + test_frac,
                                                   random_state=seed)
        if val_frac == 0 or test_frac == 0:
            val_idx, test_idx = (empty, held_idx) if val_frac == 0 else (held_idx, empty)
        else:
            val_idx, test_idx = train_test_split(
                held_idx, test_size=test_frac / (val_frac + test_frac), random_state=seed
            )
    except ValueError as err:
        raise ValueError(
            f"Cannot split {edges.shape[1]} edge(s) into train/validation/test "
            f"({1 - val_frac - test_frac:g}/{val_frac:g}/{test_frac:g}): every part needs at least "
            f"one edge. Use more ratings or other fractions. (scikit-learn said: {err})"
        ) from None
    parts = (np.asarray(idx, dtype=np.int64) for idx in (train_idx, val_idx, test_idx))
    return EdgeSplit(*(edges.index_select(1, torch.from_numpy(idx)) for idx in parts))


def bipartite_edge_index(edges: torch.Tensor, num_users: int) -> torch.Tensor:
    """Interactions ``(2, E)`` → PyG ``edge_index`` ``(2, 2E)``, items offset by
    ``num_users``; the first ``E`` columns are user→item, the rest item→user. Derived in
    notebook 02, §7."""
    users, items = edges[0], edges[1] + num_users
    return torch.stack([torch.cat([users, items]), torch.cat([items, users])])


def interaction_matrix(edges: torch.Tensor, num_users: int, num_items: int) -> torch.Tensor:
    """Interaction matrix ``R`` as a coalesced sparse COO tensor ``(num_users, num_items)``,
    ``float32``, 1.0 where a user liked an item (duplicate pairs count once). Derived in
    notebook 03, §1."""
    values = torch.ones(edges.shape[1], dtype=torch.float32, device=edges.device)
    r = _coo(edges, values, (num_users, num_items))
    return _coo(r.indices(), torch.ones_like(r.values()), r.shape)


def _coo(indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """Coalesced sparse COO tensor; indices come from our own encoders, so the
    (costly) invariant checks are explicitly switched off."""
    coo = torch.sparse_coo_tensor(indices, values, tuple(shape), check_invariants=False)
    return coo.coalesce()


def _bipartite_entries(edges: torch.Tensor, num_users: int,
                       num_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of every non-zero of ``A``, unique and sorted row-major: one sort of the
    keys ``row * N + col`` of both edge directions."""
    n = num_users + num_items
    ei = bipartite_edge_index(edges, num_users)
    keys = unique_keys(ei[0] * n + ei[1])  # sorted, duplicates dropped
    return keys // n, keys % n


def _sparse(row: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int,
            layout: str) -> torch.Tensor:
    """Square sparse matrix from row-major sorted, unique entries, in ``layout``."""
    if layout == "coo":
        return torch.sparse_coo_tensor(torch.stack([row, col]), values, (n, n), is_coalesced=True,
                                       check_invariants=False)
    if layout == "csr":
        crow = torch.zeros(n + 1, dtype=torch.long, device=row.device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0)
        with quiet_sparse():  # "Sparse CSR tensor support is in beta state"
            return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)
    raise ValueError(f"layout must be 'coo' or 'csr', got {layout!r}")


def adjacency_matrix(edges: torch.Tensor, num_users: int, num_items: int,
                     layout: str = "coo") -> torch.Tensor:
    """Bipartite adjacency ``A = [[0, R], [Rᵀ, 0]]``, sparse ``(N, N)`` ``float32``
    with ``N = num_users + num_items``; ``layout`` is ``'coo'`` or ``'csr'``.
    Built straight from the edge list (duplicate pairs count once), never densely.
    Derived in notebook 03, §1."""
    row, col = _bipartite_entries(edges, num_users, num_items)
    n = num_users + num_items
    return _sparse(row, col, torch.ones(row.numel(), device=row.device), n, layout)


def symmetric_weights(row: torch.Tensor, col: torch.Tensor, n: int,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``1 / sqrt(d_row · d_col)`` for every entry ``(row, col)`` of a symmetric graph over ``n``
    nodes, each edge listed in both directions (``d``: a node's number of entries) — the values
    of ``Ã = D^-1/2 A D^-1/2``. An isolated node has ``D^-1/2 = 0`` (no self-loops, as in
    LightGCN and PyG's ``gcn_norm(add_self_loops=False)``). Derived in notebook 03, §6."""
    dinv = torch.bincount(row, minlength=n).to(dtype).pow(-0.5)
    dinv[torch.isinf(dinv)] = 0.0
    return dinv[row] * dinv[col]


def normalized_adjacency(edges: torch.Tensor, num_users: int, num_items: int,
                         layout: str = "csr") -> torch.Tensor:
    """Symmetrically normalized adjacency ``Ã = D^-1/2 A D^-1/2``, sparse ``(N, N)``
    ``float32``: entry ``(u, i)`` is ``1 / sqrt(|N_u| |N_i|)`` (:func:`symmetric_weights`);
    isolated nodes get an all-zero row. Derived in notebook 03, §6."""
    n = num_users + num_items
    row, col = _bipartite_entries(edges, num_users, num_items)
    return _sparse(row, col, symmetric_weights(row, col, n), n, layout)


class ColdStartWarning(UserWarning):
    """Some users have held-out interactions but no training edge (see :func:`build_graph`).
    Discussed in notebook 02, §6."""


@dataclass
class InteractionGraph:
    """Everything the training notebooks need, built from an interaction table in one
    call (:func:`build_graph`): encoders, the positive edges and their split. ``items``
    is optional item metadata (one row per raw item id, e.g. ``title``, ``genres``).
    Derived in notebook 02, §8."""

    num_users: int
    num_items: int
    user_encoder: IdEncoder
    item_encoder: IdEncoder
    edges: torch.Tensor
    split: EdgeSplit
    threshold: float | None = 3.5  # None: implicit data (every interaction is positive)
    items: pd.DataFrame | None = None
    name: str = "interactions"
    duplicates: int = 0  # repeated (user, item) rows merged into one pair

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    def train_edge_index(self) -> torch.Tensor:
        """Bidirectional training ``edge_index`` (2, 2·E_train); never holds held-out edges."""
        return bipartite_edge_index(self.split.train, self.num_users)

    def train_adjacency(self, layout: str = "csr") -> torch.Tensor:
        """``D^-1/2 A D^-1/2`` of the training graph only."""
        return normalized_adjacency(self.split.train, self.num_users, self.num_items, layout)

    def __repr__(self) -> str:
        tr, va, te = self.split.sizes()
        kind = "implicit" if self.threshold is None else f"rating >= {self.threshold:g}"
        return (f"InteractionGraph({self.name!r}: {self.num_users:,} users, "
                f"{self.num_items:,} items, {self.edges.shape[1]:,} positive edges ({kind}), "
                f"train/val/test {tr:,}/{va:,}/{te:,})")


def build_graph(data, *, user_col: str = "userId", item_col: str = "movieId",
                rating_col: str | None = "rating", timestamp_col: str | None = None,
                threshold: float = 3.5, val_frac: float = 0.1, test_frac: float = 0.1,
                seed: int = 1, split_col: str | None = None, items: pd.DataFrame | None = None,
                name: str | None = None, **read_kwargs) -> InteractionGraph:
    """Your interactions → the :class:`InteractionGraph` the notebooks use. Derived in
    notebook 02, §8 (your own data: §9).

    ``data`` is a DataFrame or a file path (read by
    :func:`lightgcn_helpers.data.read_interactions`, to which ``sep=``, ``header=``,
    ``names=`` and ``encoding=`` are passed). Columns: ``user_col``, ``item_col``, an
    optional ``rating_col`` (``None``: implicit data, every row is a positive; else a
    rating ``>= threshold`` is a positive) and an optional ``timestamp_col`` (decides
    which rating of a repeated pair counts: the latest). Ids may be any sortable values;
    users and items are encoded separately to ``0..n-1``. Each (user, item) pair becomes
    one edge, however often it occurs.

    Split: randomly ``1 - val_frac - test_frac`` / ``val_frac`` / ``test_frac`` of the
    edges (:func:`split_edges`, ``seed``) — or, with ``split_col``, the split the data
    comes with (values ``'train'``, ``'val'``/``'validation'``, ``'test'``); when it has no
    validation rows, ``val_frac`` of the training edges are carved out as validation.
    A pair never lands in two parts. Users with held-out edges but no training edge get
    a :class:`ColdStartWarning` with their number (notebook 02, §6).
    """
    columns = (user_col, item_col, rating_col, timestamp_col)
    frame, split_values = _read_table(data, columns, split_col, read_kwargs)
    users = IdEncoder(str(user_col)).fit(_ids(frame[user_col]))
    items_enc = IdEncoder(str(item_col)).fit(_ids(frame[item_col]))
    edges, keys, latest = _positive_edges(frame, users, items_enc, threshold, *columns)
    if split_values is None:
        split = split_edges(edges, val_frac=val_frac, test_frac=test_frac, seed=seed)
    else:
        part = _parts(split_values.reset_index(drop=True))
        split = _presplit(edges, keys, latest, part, len(items_enc), val_frac, seed)
    graph = InteractionGraph(len(users), len(items_enc), users, items_enc, edges, split,
                             None if rating_col is None else threshold, items,
                             name or "interactions", duplicates=int(keys.size - latest.sum()))
    _warn_cold_users(graph)
    return graph


def _read_table(data, columns, split_col, read_kwargs) -> tuple[pd.DataFrame, pd.Series | None]:
    """:func:`~lightgcn_helpers.data.read_interactions` of ``data``, ids made sortable
    (:func:`_ids`), and the split column when there is one."""
    from .data import DataError, read_interactions

    user_col, item_col, rating_col, timestamp_col = columns
    split_values = None
    if isinstance(data, pd.DataFrame) and split_col is not None:
        if split_col not in data.columns:
            raise DataError(f"split_col={split_col!r} is not a column; the table has "
                            f"{list(data.columns)}")
        split_values = data[split_col]
    frame = read_interactions(data, user_col=user_col, item_col=item_col, rating_col=rating_col,
                              timestamp_col=timestamp_col, **read_kwargs)
    if split_col is not None and split_values is None:
        raise DataError("split_col needs the data as a DataFrame (read your file with pandas "
                        "first)")
    if len(frame) == 0:
        raise DataError("The interaction table is empty.")
    for col in (user_col, item_col):
        dtype = frame[col].dtype
        if not (isinstance(dtype, np.dtype) and dtype.kind in "iu"):  # integer ids stay as they are
            frame[col] = _ids(frame[col])
    return frame, split_values


def _ids(column: pd.Series) -> np.ndarray:
    """Raw ids as a sortable array: integers stay integers, anything else becomes str."""
    values = column.to_numpy()
    return values if values.dtype.kind in "iu" else values.astype(str)


_PART_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test"}


def _parts(split_values: pd.Series) -> np.ndarray:
    """The split column as ``'train'`` / ``'val'`` / ``'test'``, one per row."""
    from .data import DataError

    part = split_values.astype(str).str.lower().map(_PART_NAMES)
    if part.isna().any():
        bad = sorted(split_values[part.isna()].astype(str).unique())[:5]
        raise DataError(f"split column values {bad} are not one of 'train', "
                        f"'val'/'validation', 'test'")
    return part.to_numpy()


def _presplit(edges, keys, latest, part, num_items, val_frac, seed) -> EdgeSplit:
    """The split a table comes with: each positive pair in the part of its latest row."""
    from .data import DataError

    key_part = pd.Series(part[latest], index=keys[latest])
    edge_part = key_part.reindex((edges[0] * num_items + edges[1]).numpy()).to_numpy()
    pick = lambda name: edges[:, torch.from_numpy(np.flatnonzero(edge_part == name))]  # noqa: E731
    train, val, test = pick("train"), pick("val"), pick("test")
    if train.shape[1] == 0:
        raise DataError("The split column marks no (positive) interaction as 'train'.")
    if val.shape[1] == 0 and val_frac > 0:
        carved = split_edges(train, val_frac=val_frac, test_frac=0.0, seed=seed)
        train, val = carved.train, carved.val
    return EdgeSplit(train, val, test)


def _warn_cold_users(graph: InteractionGraph) -> None:
    has_train = torch.zeros(graph.num_users, dtype=torch.bool)
    has_train[graph.split.train[0]] = True
    held = torch.cat([graph.split.val[0], graph.split.test[0]]).unique()
    cold = int((~has_train[held]).sum())
    if cold:
        warnings.warn(
            f"{cold} of the {held.numel():,} users with validation/test edges have no training "
            f"edge: no model learns anything about them from this split. They are kept in the "
            f"evaluation (their misses count); notebook 02 discusses them.", ColdStartWarning,
            stacklevel=3)


def build_movielens_graph(ratings: pd.DataFrame, threshold: float = 3.5,
                          seed: int = 1) -> InteractionGraph:
    """MovieLens ratings (``userId, movieId, rating``) → :class:`InteractionGraph`: ids
    encoded separately over *all* rated movies, ratings ``>= threshold`` kept, edges split
    80/10/10 with :func:`split_edges`. A thin wrapper of :func:`build_graph`. Derived in
    notebook 02, §8.

    On ml-latest-small: 610 users, 9,724 movies, 61,716 edges → 49,372 / 6,172 / 6,172.
    """
    return build_graph(ratings, user_col="userId", item_col="movieId", rating_col="rating",
                       timestamp_col="timestamp" if "timestamp" in ratings.columns else None,
                       threshold=threshold, seed=seed, name="movielens")
