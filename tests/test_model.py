"""LightGCN propagation: message passing == matrix form == PyG's LightGCN, on a toy graph."""
import pytest
import torch
from torch_geometric.nn.models import LightGCN as PygLightGCN

from lightgcn_helpers.env import has_torch_sparse
from lightgcn_helpers.graph import bipartite_edge_index, normalized_adjacency
from lightgcn_helpers.model import LightGCN, LightGCNConv, propagate_matrix_form

USERS, ITEMS = 4, 5
EDGES = torch.tensor([[0, 0, 1, 2, 2, 2, 3], [0, 1, 1, 2, 3, 4, 4]])


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LightGCN(USERS, ITEMS, embedding_dim=8, num_layers=3)


def test_conv_matches_dense_propagation(dense_norm):
    x = torch.randn(USERS + ITEMS, 3)
    ei = bipartite_edge_index(EDGES, USERS)
    out = LightGCNConv()(x, ei)
    torch.testing.assert_close(out, dense_norm(EDGES, USERS, ITEMS).float() @ x)


@pytest.mark.parametrize("layout", ["edge_index", "coo", "csr"])
def test_all_graph_formats_agree_with_matrix_form(model, layout, dense_norm):
    ei = bipartite_edge_index(EDGES, USERS)
    adj = ei if layout == "edge_index" else normalized_adjacency(EDGES, USERS, ITEMS, layout)
    expected = propagate_matrix_form(model.embedding.weight, dense_norm(EDGES, USERS, ITEMS).float(), 3)
    torch.testing.assert_close(model.propagate_embeddings(adj), expected)
    users, items = model(adj)
    assert users.shape == (USERS, 8) and items.shape == (ITEMS, 8)


@pytest.mark.skipif(not has_torch_sparse(), reason="torch-sparse not installed")
def test_sparse_tensor_input(model):
    from torch_sparse import SparseTensor

    a = normalized_adjacency(EDGES, USERS, ITEMS, "coo")
    st = SparseTensor(row=a.indices()[0], col=a.indices()[1], value=a.values(), sparse_sizes=a.shape)
    torch.testing.assert_close(model.propagate_embeddings(st), model.propagate_embeddings(a))


def test_matches_pyg_lightgcn(model):
    pyg = PygLightGCN(USERS + ITEMS, 8, 3)
    pyg.embedding.weight.data.copy_(model.embedding.weight.data)
    ei = bipartite_edge_index(EDGES, USERS)
    torch.testing.assert_close(model.propagate_embeddings(ei), pyg.get_embedding(ei))


def test_gradients_of_csr_path_match_edge_index_path(model):
    ei = bipartite_edge_index(EDGES, USERS)
    csr = normalized_adjacency(EDGES, USERS, ITEMS, "csr")
    w = torch.randn(USERS + ITEMS, 8)
    grads = []
    for adj in (ei, csr):
        model.zero_grad()
        (model.propagate_embeddings(adj) * w).sum().backward()
        grads.append(model.embedding.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_zero_layers_is_matrix_factorization():
    mf = LightGCN(USERS, ITEMS, 8, num_layers=0)
    out = mf.propagate_embeddings(bipartite_edge_index(EDGES, USERS))
    torch.testing.assert_close(out, mf.embedding.weight)


def test_isolated_node_keeps_only_its_own_layer0_share():
    m = LightGCN(USERS + 1, ITEMS, 4, num_layers=2)  # user 4 has no edge
    out = m.propagate_embeddings(normalized_adjacency(EDGES, USERS + 1, ITEMS))
    torch.testing.assert_close(out[4], m.embedding.weight[4] / 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="alpha"):
        LightGCN(USERS, ITEMS, 4, num_layers=2, alpha=torch.ones(2))
    with pytest.raises(ValueError, match="node"):
        LightGCN(USERS, ITEMS, 4).propagate_embeddings(torch.tensor([[0], [USERS + ITEMS]]))
