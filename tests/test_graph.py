"""Graph construction on tiny synthetic ratings: encoders, edges, split, adjacency."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import train_test_split

from lightgcn_helpers.data import DataError
from lightgcn_helpers.graph import (
    ColdStartWarning,
    IdEncoder,
    InteractionGraph,
    adjacency_matrix,
    bipartite_edge_index,
    build_graph,
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
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val) and torch.equal(a.test,
                                                                                       b.test)
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
    assert torch.equal(a_csr.to_dense(),
                       adjacency_matrix(TOY_EDGES, TOY_USERS, TOY_ITEMS).to_dense())
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
    assert isinstance(graph, InteractionGraph)
    # a repeated pair: its last rating
    latest = ratings.drop_duplicates(["userId", "movieId"], keep="last")
    num_pos = int((latest["rating"] >= 3.5).sum())
    assert len(latest) < len(ratings) and graph.edges.shape == (2, num_pos)
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


# ---------------------------------------------------------------- any interaction table:
# build_graph

def test_duplicate_pairs_become_one_edge_in_every_format(dense_norm):
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    # implicit logs repeat pairs: (1, 10) three times, (2, 20) twice
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"u": rng.integers(0, 12, 150), "i": rng.integers(0, 15, 150)})
    logs = pd.concat([base, base.sample(60, random_state=1), base.head(20)], ignore_index=True)
    graph = build_graph(logs, user_col="u", item_col="i", rating_col=None, seed=3)
    distinct = base.drop_duplicates()
    assert graph.edges.shape[1] == len(distinct) and graph.duplicates == len(logs) - len(distinct)
    assert pairs(graph.edges) == {(graph.user_encoder.transform([u])[0],
                                   graph.item_encoder.transform([i])[0])
                                  for u, i in distinct.itertuples(index=False)}
    train, val, test = pairs(graph.split.train), pairs(graph.split.val), pairs(graph.split.test)
    assert not (train & val) and not (train & test) and not (val & test)
    # gcn_norm over the edge_index and the sparse Ã agree with the textbook formula
    expected = dense_norm(graph.split.train, graph.num_users, graph.num_items)
    ei, w = gcn_norm(graph.train_edge_index(), None, graph.num_nodes, add_self_loops=False)
    from_edge_index = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.float64)
    from_edge_index.index_put_((ei[0], ei[1]), w.double(), accumulate=True)
    torch.testing.assert_close(from_edge_index, expected)
    torch.testing.assert_close(graph.train_adjacency("coo").to_dense().double(), expected)


def test_the_latest_rating_of_a_pair_decides():
    ratings = pd.DataFrame({"userId": [1, 1, 1, 2, 2, 3], "movieId": [10, 10, 20, 10, 10, 20],
                            "rating": [5.0, 1.0, 4.0, 1.0, 5.0, 4.0], "timestamp": [1, 2, 3, 9, 5,
                                                                                    1]})
    users, items = fitted(ratings)
    by_time = positive_edges(ratings, users, items, timestamp_col="timestamp")
    # (1, 10): 5 then 1 -> not liked; (2, 10): the later 1.0 (t=9) decides -> not liked
    assert sorted(pairs(by_time)) == [(0, 1), (2, 1)]
    by_row = positive_edges(ratings, users, items)  # no timestamp: the last row wins
    assert sorted(pairs(by_row)) == [(0, 1), (1, 0), (2, 1)]


@pytest.mark.filterwarnings("ignore::lightgcn_helpers.graph.ColdStartWarning")
def test_build_graph_reads_a_file_and_keeps_item_metadata(tmp_path):
    rated = [(1, 7, 5, 1), (1, 8, 4, 2), (2, 7, 3, 3), (2, 9, 5, 4), (3, 8, 4, 5), (3, 9, 4, 6),
             (4, 7, 5, 7), (4, 9, 2, 8), (5, 8, 5, 9), (5, 7, 4, 9)]
    (tmp_path / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rated))
    meta = pd.DataFrame({"item": [7, 8, 9], "title": ["A", "B", "C"]})
    graph = build_graph(tmp_path / "u.data", sep="\t", header=False, user_col="user",
                        item_col="item",
                        rating_col="rating", timestamp_col="ts", names=["user", "item", "rating",
                                                                        "ts"],
                        threshold=4, val_frac=0.2, test_frac=0.2, seed=0, items=meta, name="toy")
    assert isinstance(graph, InteractionGraph) and graph.name == "toy" and graph.items is meta
    assert (graph.num_users, graph.num_items, graph.edges.shape[1]) == (5, 3, 8)
    assert sum(graph.split.sizes()) == 8
    assert "InteractionGraph('toy': 5 users, 3 items, 8 positive edges (rating >= 4)" in repr(graph)


def test_string_ids_and_implicit_data():
    logs = pd.DataFrame({"who": ["ann", "bob", "ann", "cy", "bob", "cy", "dee", "dee", "ann", "cy"],
                         "what": ["x", "y", "y", "x", "z", "z", "x", "y", "z", "y"]})
    graph = build_graph(logs, user_col="who", item_col="what", rating_col=None, val_frac=0.2,
                        test_frac=0.2)
    assert graph.user_encoder.classes_.tolist() == ["ann", "bob", "cy", "dee"]
    assert graph.threshold is None and graph.edges.shape[1] == 10


def test_a_split_that_comes_with_the_data_is_kept():
    rows = [(u, i, "train") for u in range(6) for i in range(4) if (u + i) % 3]
    rows += [(u, 5, "test") for u in range(6)]
    table = pd.DataFrame(rows, columns=["user", "item", "part"])
    graph = build_graph(table, user_col="user", item_col="item", rating_col=None, split_col="part",
                        val_frac=0)
    assert graph.split.sizes() == (len(rows) - 6, 0, 6)
    assert pairs(graph.split.test) == {(u, graph.item_encoder.transform([5])[0]) for u in range(6)}
    carved = build_graph(table, user_col="user", item_col="item", rating_col=None, split_col="part",
                         val_frac=0.25)
    assert carved.split.sizes() == (12, 4, 6) and torch.equal(carved.split.test, graph.split.test)
    assert pairs(carved.split.train) | pairs(carved.split.val) == pairs(graph.split.train)
    with pytest.raises(DataError, match="'holdout'"):
        build_graph(table.assign(part="holdout"), user_col="user", item_col="item", rating_col=None,
                    split_col="part")


def test_users_without_a_training_edge_are_a_warning_with_their_number():
    # user 9 has a single like, which must land in validation or test
    rows = [(u, i, 5.0) for u in range(8) for i in range(6)] + [(9, 0, 5.0)]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    for seed in range(20):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = build_graph(ratings, seed=seed)
        if graph.split.train[0].eq(graph.user_encoder.transform([9])[0]).any():
            assert not [w for w in caught if issubclass(w.category, ColdStartWarning)]
        else:
            [w] = [w for w in caught if issubclass(w.category, ColdStartWarning)]
            assert str(w.message).startswith("1 of the ")
            return
    pytest.fail("no seed put user 9's only edge outside training")


def test_nothing_left_after_the_threshold_is_a_clear_error():
    ratings = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [1.0, 2.0]})
    with pytest.raises(ValueError, match="No rating is >= 3.5.*rating_col=None"):
        build_graph(ratings)
