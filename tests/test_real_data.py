"""The facts the series reproduces, asserted on the real ml-latest-small and Gowalla.

The data comes through the package's own cache (default folder ``./data`` or
``$LIGHTGCN_DATA_DIR``): CI pre-fills that cache with the official MovieLens zip and the
offline copy of the LightGCN Gowalla split, which are then verified (and extracted) by
the real code path of the registry.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from lightgcn_helpers.data import MOVIELENS_SHA256, download_movielens, load_movielens, sha256_of
from lightgcn_helpers.datasets import load_dataset
from lightgcn_helpers.graph import ColdStartWarning, build_movielens_graph


@pytest.fixture(scope="module")
def movielens():
    folder = download_movielens()
    ratings, movies = load_movielens()
    return folder, ratings, movies


@pytest.fixture(scope="module")
def graph(movielens):
    _, ratings, _ = movielens
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = build_movielens_graph(ratings)
    cold = [str(w.message) for w in caught if issubclass(w.category, ColdStartWarning)]
    assert cold == [cold[0]] and cold[0].startswith("1 of the 597 users with validation/test edges")
    return graph


def test_cached_archive_is_the_official_one(movielens):
    folder, _, _ = movielens
    assert sha256_of(folder.parent / "ml-latest-small.zip") == MOVIELENS_SHA256


def test_ratings_and_movies_counts(movielens):
    _, ratings, movies = movielens
    assert len(ratings) == 100_836
    assert ratings["userId"].nunique() == 610
    assert ratings["movieId"].nunique() == 9_724
    assert len(movies) == 9_742
    assert ratings["movieId"].max() == 193_609
    assert ratings["rating"].dtype == "float64"


def test_rating_distribution(movielens):
    _, ratings, _ = movielens
    counts = ratings["rating"].value_counts().to_dict()
    assert counts == {
        4.0: 26_818, 3.0: 20_047, 5.0: 13_211, 3.5: 13_136, 4.5: 8_551,
        2.0: 7_551, 2.5: 5_550, 1.0: 2_811, 1.5: 1_791, 0.5: 1_370,
    }


def test_positive_edges_and_split(graph):
    assert (graph.num_users, graph.num_items) == (610, 9_724)
    assert graph.edges.shape == (2, 61_716)
    assert graph.split.sizes() == (49_372, 6_172, 6_172)
    train = graph.split.train
    assert train[0].unique().numel() == 608
    assert train[1].unique().numel() == 6_682
    assert graph.train_edge_index().shape == (2, 98_744)


def test_normalized_adjacency_matches_pyg_gcn_norm(graph):
    ours = graph.train_adjacency(layout="coo")
    ei, w = gcn_norm(graph.train_edge_index(), None, graph.num_nodes, add_self_loops=False)
    pyg = torch.sparse_coo_tensor(ei, w, (graph.num_nodes, graph.num_nodes),
                                  check_invariants=True).coalesce()
    assert torch.equal(ours.indices(), pyg.indices())
    torch.testing.assert_close(ours.values(), pyg.values())


def test_registry_loads_ml_latest_small_like_the_series(movielens):
    _, ratings, movies = movielens
    ds = load_dataset("ml-latest-small")
    assert ds.interactions.equals(ratings) and ds.items.equals(movies)


def test_gowalla_is_the_paper_split():
    ds = load_dataset("gowalla")
    graph = ds.graph()
    assert (graph.num_users, graph.num_items) == (29_858, 40_981)
    assert graph.split.sizes() == (810_128, 0, 217_242)
    assert graph.duplicates == 0 and graph.threshold is None
    # already 0-based, kept as is
    assert graph.user_encoder.classes_.tolist() == list(range(29_858))
    train, test = graph.split.train, graph.split.test
    overlap = torch.isin(train[0] * graph.num_items + train[1], test[0] * graph.num_items + test[1])
    assert not overlap.any()
    assert len(ds.items) == 40_981
