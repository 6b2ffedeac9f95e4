"""From ratings to a bipartite user–movie graph: encoders, edges, split, adjacency.

Conventions used throughout the package:

* users are indexed ``0..num_users-1`` and movies ``0..num_items-1``, each with its
  own :class:`IdEncoder`;
* an *interaction* tensor ``edges`` has shape ``(2, E)``, dtype ``int64``: row 0 the
  user index, row 1 the movie index (not offset);
* a *bipartite* ``edge_index`` (PyG convention) has shape ``(2, 2E)`` over
  ``num_users + num_items`` nodes, movies offset by ``num_users``, both directions.

Nothing here allocates a dense ``(users + movies)²`` matrix.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

__all__ = [
    "IdEncoder",
    "positive_edges",
    "split_edges",
    "EdgeSplit",
    "bipartite_edge_index",
    "interaction_matrix",
    "adjacency_matrix",
    "normalized_adjacency",
    "MovieLensGraph",
    "build_movielens_graph",
]


class IdEncoder:
    """Invertible map between raw ids and contiguous indices ``0..n-1``.

    Classes are the sorted unique raw ids, so the mapping equals scikit-learn's
    ``LabelEncoder``; ``transform`` and ``inverse_transform`` are vectorized
    (``np.searchsorted``) and raise a ``KeyError`` / ``IndexError`` naming the
    offending values instead of silently mapping them.
    """

    def __init__(self, name: str = "id"):
        self.name = name
        self.classes_: np.ndarray | None = None

    def fit(self, raw_ids) -> "IdEncoder":
        self.classes_ = np.unique(np.asarray(raw_ids))
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
        idx = np.searchsorted(self.classes_, raw)
        idx_clipped = np.minimum(idx, len(self.classes_) - 1)
        unknown = self.classes_[idx_clipped] != raw
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
    threshold: float = 3.5,
    user_col: str = "userId",
    item_col: str = "movieId",
    rating_col: str = "rating",
) -> torch.Tensor:
    """Vectorized ratings → positive interactions, kept in the ratings' row order.

    A rating ``>= threshold`` (exactly ``threshold`` included, compared as float)
    is a positive edge. Returns ``edges`` of shape ``(2, E)``, ``int64``.
    Raises ``ValueError`` when no rating reaches the threshold.
    """
    missing = [c for c in (user_col, item_col, rating_col) if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lacks column(s) {missing}; it has {list(ratings.columns)}")
    keep = ratings[rating_col].to_numpy(dtype=np.float64) >= float(threshold)
    if not keep.any():
        raise ValueError(
            f"No rating is >= {threshold}: there are no positive edges. "
            f"Lower the threshold (ratings range {ratings[rating_col].min()}..{ratings[rating_col].max()})."
        )
    users = user_encoder.transform(ratings[user_col].to_numpy()[keep])
    items = item_encoder.transform(ratings[item_col].to_numpy()[keep])
    return torch.from_numpy(np.stack([users, items]))


@dataclass
class EdgeSplit:
    """Train / validation / test interactions, each ``(2, E_part)`` ``int64``."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def sizes(self) -> tuple[int, int, int]:
        return self.train.shape[1], self.val.shape[1], self.test.shape[1]


def split_edges(edges: torch.Tensor, val_frac: float = 0.1, test_frac: float = 0.1, seed: int = 1) -> EdgeSplit:
    """Random edge split, identical to the original material's.

    ``train_test_split(range(E), test_size=val_frac + test_frac, random_state=seed)``
    then the held-out part halved (by ``test_frac / (val_frac + test_frac)``) with the
    same ``random_state``. On ml-latest-small (61,716 edges) this gives
    49,372 / 6,172 / 6,172.
    """
    from sklearn.model_selection import train_test_split

    all_idx = np.arange(edges.shape[1])
    try:
        train_idx, held_idx = train_test_split(all_idx, test_size=val_frac + test_frac, random_state=seed)
        val_idx, test_idx = train_test_split(
            held_idx, test_size=test_frac / (val_frac + test_frac), random_state=seed
        )
    except ValueError as err:
        raise ValueError(
            f"Cannot split {edges.shape[1]} edge(s) into train/validation/test "
            f"({1 - val_frac - test_frac:g}/{val_frac:g}/{test_frac:g}): every part needs at least "
            f"one edge. Use more ratings or other fractions. (scikit-learn said: {err})"
        ) from None
    take = lambda idx: edges[:, torch.from_numpy(np.asarray(idx, dtype=np.int64))]  # noqa: E731
    return EdgeSplit(take(train_idx), take(val_idx), take(test_idx))


def bipartite_edge_index(edges: torch.Tensor, num_users: int) -> torch.Tensor:
    """Interactions ``(2, E)`` → PyG ``edge_index`` ``(2, 2E)``, movies offset by
    ``num_users``; the first ``E`` columns are user→movie, the rest movie→user."""
    users, items = edges[0], edges[1] + num_users
    return torch.stack([torch.cat([users, items]), torch.cat([items, users])])


def interaction_matrix(edges: torch.Tensor, num_users: int, num_items: int) -> torch.Tensor:
    """Interaction matrix ``R`` as a coalesced sparse COO tensor ``(num_users, num_items)``,
    ``float32``, 1.0 where a user liked a movie (duplicate pairs count once)."""
    values = torch.ones(edges.shape[1], dtype=torch.float32, device=edges.device)
    r = _coo(edges, values, (num_users, num_items))
    return _coo(r.indices(), torch.ones_like(r.values()), r.shape)


def _coo(indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """Coalesced sparse COO tensor; indices come from our own encoders, so the
    (costly) invariant checks are explicitly switched off."""
    return torch.sparse_coo_tensor(indices, values, tuple(shape), check_invariants=False).coalesce()


def _bipartite_entries(edges: torch.Tensor, num_users: int, num_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of every non-zero of ``A``, unique and sorted row-major: one
    ``torch.unique`` over the keys ``row * N + col`` of both edge directions."""
    n = num_users + num_items
    ei = bipartite_edge_index(edges, num_users)
    keys = torch.unique(ei[0] * n + ei[1])  # sorted, duplicates dropped
    return keys // n, keys % n


def _sparse(row: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int, layout: str) -> torch.Tensor:
    """Square sparse matrix from row-major sorted, unique entries, in ``layout``."""
    if layout == "coo":
        return torch.sparse_coo_tensor(torch.stack([row, col]), values, (n, n), is_coalesced=True,
                                       check_invariants=False)
    if layout == "csr":
        crow = torch.zeros(n + 1, dtype=torch.long, device=row.device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0)
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)
    raise ValueError(f"layout must be 'coo' or 'csr', got {layout!r}")


def adjacency_matrix(edges: torch.Tensor, num_users: int, num_items: int, layout: str = "coo") -> torch.Tensor:
    """Bipartite adjacency ``A = [[0, R], [Rᵀ, 0]]``, sparse ``(N, N)`` ``float32``
    with ``N = num_users + num_items``; ``layout`` is ``'coo'`` or ``'csr'``.
    Built straight from the edge list (duplicate pairs count once), never densely."""
    row, col = _bipartite_entries(edges, num_users, num_items)
    return _sparse(row, col, torch.ones(row.numel(), device=row.device), num_users + num_items, layout)


def normalized_adjacency(edges: torch.Tensor, num_users: int, num_items: int, layout: str = "csr") -> torch.Tensor:
    """Symmetrically normalized adjacency ``Ã = D^-1/2 A D^-1/2``, sparse ``(N, N)``
    ``float32``. Entry ``(u, i)`` is ``1 / sqrt(|N_u| |N_i|)``; isolated nodes get an
    all-zero row (no self-loops, as in LightGCN and PyG's ``gcn_norm(add_self_loops=False)``)."""
    n = num_users + num_items
    row, col = _bipartite_entries(edges, num_users, num_items)
    deg = torch.bincount(row, minlength=n).float()
    dinv = deg.pow(-0.5)
    dinv[torch.isinf(dinv)] = 0.0
    return _sparse(row, col, dinv[row] * dinv[col], n, layout)


@dataclass
class MovieLensGraph:
    """Everything the training notebooks need, built from the ratings in one call."""

    num_users: int
    num_items: int
    user_encoder: IdEncoder
    item_encoder: IdEncoder
    edges: torch.Tensor
    split: EdgeSplit
    threshold: float = 3.5

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    def train_edge_index(self) -> torch.Tensor:
        """Bidirectional training ``edge_index`` (2, 2·E_train); never holds held-out edges."""
        return bipartite_edge_index(self.split.train, self.num_users)

    def train_adjacency(self, layout: str = "csr") -> torch.Tensor:
        """``D^-1/2 A D^-1/2`` of the training graph only."""
        return normalized_adjacency(self.split.train, self.num_users, self.num_items, layout)


def build_movielens_graph(ratings: pd.DataFrame, threshold: float = 3.5, seed: int = 1) -> MovieLensGraph:
    """Encode ids (users and movies separately, over *all* rated movies), keep ratings
    ``>= threshold`` and split them 80/10/10 with :func:`split_edges`.

    On ml-latest-small: 610 users, 9,724 movies, 61,716 edges → 49,372 / 6,172 / 6,172.
    """
    users = IdEncoder("userId").fit(ratings["userId"].to_numpy())
    items = IdEncoder("movieId").fit(ratings["movieId"].to_numpy())
    edges = positive_edges(ratings, users, items, threshold)
    return MovieLensGraph(len(users), len(items), users, items, edges, split_edges(edges, seed=seed), threshold)
