"""The facts the series reproduces, asserted on the real ml-latest-small.

The data comes through the package's own cache (``download_movielens()`` with its
default folder, ``./data`` or ``$LIGHTGCN_DATA_DIR``): CI pre-fills that cache with the
official zip, which is then checksum-verified and extracted by the real code path.
"""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from lightgcn_helpers.data import MOVIELENS_SHA256, download_movielens, load_movielens, sha256_of
from lightgcn_helpers.graph import build_movielens_graph


@pytest.fixture(scope="module")
def movielens():
    folder = download_movielens()
    ratings, movies = load_movielens()
    return folder, ratings, movies


@pytest.fixture(scope="module")
def graph(movielens):
    _, ratings, _ = movielens
    return build_movielens_graph(ratings)


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
    pyg = torch.sparse_coo_tensor(ei, w, (graph.num_nodes, graph.num_nodes), check_invariants=True).coalesce()
    assert torch.equal(ours.indices(), pyg.indices())
    torch.testing.assert_close(ours.values(), pyg.values())
