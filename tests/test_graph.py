"""Graph construction on tiny synthetic ratings: encoders, edges, split, adjacency."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import train_test_split

from lightgcn_helpers.graph import (
    IdEncoder,
    MovieLensGraph,
    adjacency_matrix,
    bipartite_edge_index,
    build_movielens_graph,
    interaction_matrix,
    normalized_adjacency,
    positive_edges,
    split_edges,
)


def ratings_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating"])


def fitted(ratings: pd.DataFrame) -> tuple[IdEncoder, IdEncoder]:
    return IdEncoder("userId").fit(ratings["userId"]), IdEncoder("movieId").fit(ratings["movieId"])


def pairs(edges: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edges.t().tolist()))


# A toy graph: 3 users, 4 movies; user 2 and movie 3 have no edge (isolated).
TOY_EDGES = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 0, 1, 2]])
TOY_USERS, TOY_ITEMS = 3, 4


# ---------------------------------------------------------------- encoders

def test_encoder_round_trip_and_order():
    raw = np.array([193609, 1, 50, 1, 7])
    enc = IdEncoder("movieId").fit(raw)
    idx = enc.transform(raw)
    assert idx.dtype == np.int64
    assert idx.tolist() == [3, 0, 2, 0, 1]  # sorted unique ids, as sklearn's LabelEncoder
    assert enc.inverse_transform(idx).tolist() == raw.tolist()
    assert enc.inverse_transform(torch.tensor([3, 0])).tolist() == [193609, 1]
    assert len(enc) == 4


def test_encoder_rejects_unknown_ids_and_bad_indices():
    enc = IdEncoder("movieId").fit([10, 20, 30])
    with pytest.raises(KeyError, match="unknown movieId"):
        enc.transform([20, 25, 99])
    with pytest.raises(IndexError):
        enc.inverse_transform([3])
    with pytest.raises(IndexError):
        enc.inverse_transform([-1])
    with pytest.raises(RuntimeError, match="not fitted"):
        IdEncoder("userId").transform([1])


def test_users_and_movies_have_separate_encoders():
    # User ids 1..3, movie ids 10/20/500: the original material's defect (movies encoded
    # with the user encoder) cannot happen silently any more.
    liked = [(1, 500), (2, 10), (3, 20), (3, 500), (1, 20), (2, 500)]
    ratings = ratings_frame([(u, m, 4.0) for u, m in liked] + [(2, 20, 1.0)])
    graph = build_movielens_graph(ratings)
    assert graph.user_encoder.classes_.tolist() == [1, 2, 3]
    assert graph.item_encoder.classes_.tolist() == [10, 20, 500]
    assert graph.user_encoder is not graph.item_encoder
    with pytest.raises(KeyError):
        graph.user_encoder.transform(ratings["movieId"])
    raw_pairs = {
        (int(u), int(m))
        for u, m in zip(graph.user_encoder.inverse_transform(graph.edges[0]),
                        graph.item_encoder.inverse_transform(graph.edges[1]))
    }
    assert raw_pairs == set(liked)


def test_too_few_edges_to_split_is_a_clear_error():
    with pytest.raises(ValueError, match="Cannot split 4 edge"):
        split_edges(random_edges(4))


# ---------------------------------------------------------------- positive edges

def test_threshold_is_inclusive_and_float():
    ratings = ratings_frame([
        (1, 10, 3.5),    # exactly the threshold: kept
        (1, 20, 3.49),   # just below: dropped
        (2, 10, 3.0),    # dropped
        (2, 30, 4.5),    # kept
        (3, 20, 0.5),    # dropped
        (3, 30, 5.0),    # kept
    ])
    users, items = fitted(ratings)
    edges = positive_edges(ratings, users, items)  # default threshold 3.5
    assert edges.dtype == torch.int64 and edges.shape == (2, 3)
    assert edges.tolist() == [[0, 1, 2], [0, 2, 2]]  # row order kept


def test_ratings_are_not_truncated_to_integers():
    # The original's .to(long) made 3.5 -> 3 and lost every 3.5 rating (48,580 instead
    # of 61,716 edges on MovieLens); here 3.5 and 4.5 stay what they are.
    ratings = ratings_frame([(1, 10, 3.5), (1, 20, 4.5), (2, 10, 3.5)])
    users, items = fitted(ratings)
    assert positive_edges(ratings, users, items, threshold=3.5).shape[1] == 3
    assert positive_edges(ratings, users, items, threshold=4.0).shape[1] == 1  # only 4.5
    assert positive_edges(ratings, users, items, threshold=4.5).shape[1] == 1


def test_no_positive_edge_is_a_clear_error():
    ratings = ratings_frame([(1, 10, 1.0), (2, 20, 3.0)])
    users, items = fitted(ratings)
    with pytest.raises(ValueError, match="no positive edges"):
        positive_edges(ratings, users, items, threshold=3.5)


def test_missing_rating_column_is_named():
    ratings = ratings_frame([(1, 10, 4.0)]).rename(columns={"rating": "score"})
    users, items = fitted(ratings)
    with pytest.raises(ValueError, match="rating"):
        positive_edges(ratings, users, items)


# ---------------------------------------------------------------- split

def random_edges(num_edges=1000, num_users=50, num_items=80, seed=0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    flat = rng.choice(num_users * num_items, size=num_edges, replace=False)  # unique pairs
    return torch.from_numpy(np.stack([flat // num_items, flat % num_items]).astype(np.int64))


def test_split_sizes_disjoint_and_complete():
    edges = random_edges(1000)
    split = split_edges(edges, seed=1)
    assert split.sizes() == (800, 100, 100)
    train, val, test = pairs(split.train), pairs(split.val), pairs(split.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == pairs(edges)
    assert all(part.dtype == torch.int64 for part in (split.train, split.val, split.test))


def test_split_is_the_original_sklearn_split():
    edges = random_edges(617)
    split = split_edges(edges, seed=1)
    train_idx, held_idx = train_test_split(np.arange(617), test_size=0.2, random_state=1)
    val_idx, test_idx = train_test_split(held_idx, test_size=0.5, random_state=1)
    assert torch.equal(split.train, edges[:, train_idx])
    assert torch.equal(split.val, edges[:, val_idx])
    assert torch.equal(split.test, edges[:, test_idx])


def test_split_is_reproducible_and_depends_on_seed():
    edges = random_edges(500)
    a, b, c = split_edges(edges, seed=1), split_edges(edges, seed=1), split_edges(edges, seed=2)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val) and torch.equal(a.test, b.test)
    assert not torch.equal(a.test, c.test)


# ---------------------------------------------------------------- edge_index and adjacency

def test_bipartite_edge_index_offsets_movies_and_has_both_directions():
    ei = bipartite_edge_index(TOY_EDGES, TOY_USERS)
    assert ei.shape == (2, 2 * TOY_EDGES.shape[1]) and ei.dtype == torch.int64
    forward, backward = ei[:, :5], ei[:, 5:]
    assert torch.equal(forward[0], TOY_EDGES[0])
    assert torch.equal(forward[1], TOY_EDGES[1] + TOY_USERS)
    assert torch.equal(backward, forward.flip(0))
    assert int(ei[1, :5].min()) >= TOY_USERS  # no movie shares an index with a user


def test_interaction_matrix_counts_duplicates_once():
    edges = torch.tensor([[0, 0, 1], [2, 2, 0]])  # (0, 2) twice
    r = interaction_matrix(edges, 2, 3)
    assert r.layout == torch.sparse_coo and r.shape == (2, 3) and r.dtype == torch.float32
    assert r.to_dense().tolist() == [[0, 0, 1], [1, 0, 0]]


def test_adjacency_is_symmetric_bipartite_block_matrix():
    a = adjacency_matrix(TOY_EDGES, TOY_USERS, TOY_ITEMS)
    n = TOY_USERS + TOY_ITEMS
    assert a.shape == (n, n) and a.dtype == torch.float32 and a.layout == torch.sparse_coo
    dense = a.to_dense()
    assert torch.equal(dense, dense.t())
    r = interaction_matrix(TOY_EDGES, TOY_USERS, TOY_ITEMS).to_dense()
    assert torch.equal(dense[:TOY_USERS, TOY_USERS:], r)
    assert torch.equal(dense[TOY_USERS:, :TOY_USERS], r.t())
    assert not dense[:TOY_USERS, :TOY_USERS].any() and not dense[TOY_USERS:, TOY_USERS:].any()
    assert a._nnz() == 2 * TOY_EDGES.shape[1]


def test_normalized_adjacency_equals_dense_formula(dense_norm):
    expected = dense_norm(TOY_EDGES, TOY_USERS, TOY_ITEMS)
    got = normalized_adjacency(TOY_EDGES, TOY_USERS, TOY_ITEMS, layout="coo").to_dense().double()
    torch.testing.assert_close(got, expected)
    # one entry by hand: user 0 has 2 movies, movie 1 has 2 users -> 1/sqrt(2*2)
    assert got[0, TOY_USERS + 1].item() == pytest.approx(0.5)
    # user 1 (3 movies) and movie 2 (1 user) -> 1/sqrt(3)
    assert got[1, TOY_USERS + 2].item() == pytest.approx(3 ** -0.5)


def test_isolated_nodes_have_all_zero_rows_not_nan():
    got = normalized_adjacency(TOY_EDGES, TOY_USERS, TOY_ITEMS, layout="coo").to_dense()
    assert torch.isfinite(got).all()
    isolated_user, isolated_movie = 2, TOY_USERS + 3
    assert not got[isolated_user].any() and not got[:, isolated_user].any()
    assert not got[isolated_movie].any() and not got[:, isolated_movie].any()


def test_csr_and_coo_layouts_agree():
    coo = normalized_adjacency(TOY_EDGES, TOY_USERS, TOY_ITEMS, layout="coo")
    csr = normalized_adjacency(TOY_EDGES, TOY_USERS, TOY_ITEMS, layout="csr")
    assert coo.layout == torch.sparse_coo and csr.layout == torch.sparse_csr
    assert torch.equal(coo.to_dense(), csr.to_dense())
    x = torch.randn(TOY_USERS + TOY_ITEMS, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(csr @ x, torch.sparse.mm(coo, x))
    a_csr = adjacency_matrix(TOY_EDGES, TOY_USERS, TOY_ITEMS, layout="csr")
    assert torch.equal(a_csr.to_dense(), adjacency_matrix(TOY_EDGES, TOY_USERS, TOY_ITEMS).to_dense())
    with pytest.raises(ValueError, match="layout"):
        normalized_adjacency(TOY_EDGES, TOY_USERS, TOY_ITEMS, layout="dense")


# ---------------------------------------------------------------- one-call graph

def test_build_graph_trains_only_on_training_edges():
    rng = np.random.default_rng(3)
    ratings = pd.DataFrame({
        "userId": rng.integers(1, 30, 400) * 7,
        "movieId": rng.integers(1, 60, 400) * 13,
        "rating": rng.choice(np.arange(0.5, 5.01, 0.5), 400),
    })
    graph = build_movielens_graph(ratings, seed=1)
    assert isinstance(graph, MovieLensGraph)
    num_pos = int((ratings["rating"] >= 3.5).sum())
    assert graph.edges.shape == (2, num_pos)
    assert sum(graph.split.sizes()) == num_pos
    assert graph.num_nodes == ratings["userId"].nunique() + ratings["movieId"].nunique()

    ei = graph.train_edge_index()
    assert ei.shape == (2, 2 * graph.split.train.shape[1])
    adj = graph.train_adjacency()
    assert adj.shape == (graph.num_nodes, graph.num_nodes) and adj.layout == torch.sparse_csr
    # Held-out edges never enter propagation.
    held_out = torch.cat([graph.split.val, graph.split.test], dim=1)
    held_only = torch.tensor(sorted(pairs(held_out) - pairs(graph.split.train))).t()
    assert held_only.shape[1] > 0
    dense = adj.to_dense()
    assert not dense[held_only[0], graph.num_users + held_only[1]].any()
    assert dense[graph.split.train[0], graph.num_users + graph.split.train[1]].all()
