"""LightGCN propagation: message passing == matrix form == PyG's LightGCN, on a toy graph."""
import pytest
import torch
from torch_geometric.nn.models import LightGCN as PygLightGCN

from lightgcn_helpers.env import has_torch_sparse
from lightgcn_helpers.graph import bipartite_edge_index, normalized_adjacency
from lightgcn_helpers.model import LightGCN, LightGCNConv, combine_layers, propagate_matrix_form

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
    expected = propagate_matrix_form(model.embedding.weight,
                                     dense_norm(EDGES, USERS, ITEMS).float(), 3)
    torch.testing.assert_close(model.propagate_embeddings(adj), expected)
    users, items = model(adj)
    assert users.shape == (USERS, 8) and items.shape == (ITEMS, 8)


@pytest.mark.skipif(not has_torch_sparse(), reason="torch-sparse not installed")
def test_sparse_tensor_input(model, dense_norm):
    from torch_sparse import SparseTensor

    a = normalized_adjacency(EDGES, USERS, ITEMS, "coo")
    st = SparseTensor(row=a.indices()[0], col=a.indices()[1], value=a.values(),
                      sparse_sizes=a.shape)
    expected = propagate_matrix_form(model.embedding.weight,
                                     dense_norm(EDGES, USERS, ITEMS).float(), 3)
    torch.testing.assert_close(model.propagate_embeddings(st), expected)


def test_matches_pyg_lightgcn(model):
    pyg = PygLightGCN(USERS + ITEMS, 8, 3)
    pyg.embedding.weight.data.copy_(model.embedding.weight.data)
    ei = bipartite_edge_index(EDGES, USERS)
    torch.testing.assert_close(model.propagate_embeddings(ei), pyg.get_embedding(ei))


def test_layer_combination_is_the_weighted_sum_of_the_layers(model):
    adj = normalized_adjacency(EDGES, USERS, ITEMS, "csr")
    layers = model.layer_embeddings(adj)
    expected = sum(a * x for a, x in zip(model.alpha, layers))
    torch.testing.assert_close(combine_layers(layers, model.alpha), expected)
    torch.testing.assert_close(combine_layers(iter(layers), model.alpha), expected)  # a generator
    torch.testing.assert_close(model.propagate_embeddings(adj), expected)


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


# --- the sparse product's backward: Ãᵀ @ G, checked against dense autograd -------------

def _non_symmetric(n=USERS + ITEMS, seed=0):
    """A random dense (n, n) matrix with ~40 % non-zeros and no symmetry."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, n, generator=g) * (torch.rand(n, n, generator=g) < 0.4)
    assert not torch.equal(a, a.T)
    return a


def _sparse(dense, layout):
    return dense.to_sparse_csr() if layout == "csr" else dense.to_sparse_coo()


def _dense_grad(dense, x, w, layers=1):
    """∂/∂x of Σ (A^layers x) ⊙ w by torch.autograd on dense matrices: the reference."""
    x = x.detach().clone().requires_grad_(True)
    out = x
    for _ in range(layers):
        out = dense @ out
    (out * w).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_conv_gradient_of_non_symmetric_matrix_matches_dense_autograd(layout):
    a = _non_symmetric()
    x = torch.randn(a.shape[0], 3, requires_grad=True)
    w = torch.randn(a.shape[0], 3)
    conv = LightGCNConv()
    out = conv(x, _sparse(a, layout))
    (out * w).sum().backward()
    expected_out, expected_grad = _dense_grad(a, x, w)
    torch.testing.assert_close(out.detach(), expected_out)
    torch.testing.assert_close(x.grad, expected_grad)
    # a symmetric matrix would give Aᵀ w = A w: make sure the test can tell them apart
    assert not torch.allclose(expected_grad, a @ w)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_model_gradient_of_non_symmetric_matrix_matches_dense_autograd(model, layout):
    a = _non_symmetric(seed=1)
    w = torch.randn(USERS + ITEMS, 8)
    model.zero_grad()
    (model.propagate_embeddings(_sparse(a, layout)) * w).sum().backward()
    e0 = model.embedding.weight.detach().clone().requires_grad_(True)
    # dense A @ x: torch.autograd's own backward
    (propagate_matrix_form(e0, a, 3) * w).sum().backward()
    torch.testing.assert_close(model.embedding.weight.grad, e0.grad)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_gradients_of_sparse_paths_match_edge_index_path(model, layout):
    ei = bipartite_edge_index(EDGES, USERS)
    adj = normalized_adjacency(EDGES, USERS, ITEMS, layout)
    w = torch.randn(USERS + ITEMS, 8)
    grads = []
    for graph in (ei, adj):
        model.zero_grad()
        (model.propagate_embeddings(graph) * w).sum().backward()
        grads.append(model.embedding.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_in_place_change_of_the_matrix_is_noticed():
    a = _non_symmetric(seed=2)
    sym = a + a.T
    adj = sym.to_sparse_coo().coalesce()
    conv = LightGCNConv()
    x, w = torch.randn(a.shape[0], 2, requires_grad=True), torch.randn(a.shape[0], 2)
    conv(x, adj).sum().backward()  # cached as symmetric
    with torch.no_grad():
        adj.values()[0] += 1.0  # breaks the symmetry in place
    changed = adj.to_dense()
    x.grad = None
    (conv(x, adj) * w).sum().backward()
    torch.testing.assert_close(x.grad, _dense_grad(changed, x, w)[1])


def test_conv_without_gradients():
    a = _non_symmetric(seed=3)
    x = torch.randn(a.shape[0], 3)  # requires_grad=False
    for layout in ("coo", "csr"):
        out = LightGCNConv()(x, _sparse(a, layout))
        assert not out.requires_grad
        torch.testing.assert_close(out, a @ x)
    xg = x.clone().requires_grad_(True)
    with torch.no_grad():
        out = LightGCNConv()(xg, _sparse(a, "csr"))
    assert not out.requires_grad
    torch.testing.assert_close(out, a @ x)


def test_learnable_matrix_values_get_pytorchs_gradient():
    a = _non_symmetric(seed=4)
    adj = a.to_sparse_coo().coalesce().requires_grad_(True)
    x = torch.randn(a.shape[0], 2, requires_grad=True)
    LightGCNConv()(x, adj).sum().backward()
    dense = a.clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    (dense @ x2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    # only the stored entries
    torch.testing.assert_close(adj.grad.to_dense(), dense.grad * (a != 0))


def test_model_survives_deepcopy_after_use(model):
    import copy

    adj = normalized_adjacency(EDGES, USERS, ITEMS, "csr")
    model.propagate_embeddings(adj).sum().backward()
    clone = copy.deepcopy(model)
    torch.testing.assert_close(clone.propagate_embeddings(adj), model.propagate_embeddings(adj))
