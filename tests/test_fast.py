"""The fast internals (lightgcn_helpers._fast) equal the plain expressions they replace:
values, and gradients where there are any."""
import gc
import warnings

import numpy as np
import pytest
import torch
from test_model import EDGES, ITEMS, USERS, _non_symmetric  # a toy graph, a non-symmetric matrix

from lightgcn_helpers import _fast
from lightgcn_helpers.graph import normalized_adjacency
from lightgcn_helpers.loss import l2_regularization
from lightgcn_helpers.model import LightGCN, LightGCNConv


def _sparse(dense, layout):
    with _fast.quiet_sparse():  # "Sparse CSR tensor support is in beta"
        return dense.to_sparse_csr() if layout == "csr" else dense.to_sparse_coo()


# --------------------------------------------------------------------------- sparse products

@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_sparse_matmul_equals_torch_sparse_mm(layout, symmetric):
    a = _non_symmetric(seed=7)
    a = a + a.T if symmetric else a
    adj = _sparse(a, layout)
    w = torch.randn(a.shape[0], 3)
    x = torch.randn(a.shape[0], 3, requires_grad=True)
    out = _fast.sparse_matmul(adj, x, _fast.TransposeCache())
    (out * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    plain = torch.sparse.mm(adj, x2)
    (plain * w).sum().backward()
    assert torch.equal(out.detach(), plain.detach())
    torch.testing.assert_close(x.grad, x2.grad)


def test_gradients_through_the_model_reuse_the_symmetric_matrix():
    model = LightGCN(USERS, ITEMS, 8, 3)
    adj = normalized_adjacency(EDGES, USERS, ITEMS, "csr")
    model.propagate_embeddings(adj).sum().backward()
    assert model.conv._transposes(adj) is adj  # symmetric Ã: no transpose is ever built


def test_symmetry_is_checked_once_per_adjacency_object(monkeypatch):
    torch.manual_seed(0)
    model = LightGCN(USERS, ITEMS, 8, 3)
    calls = []
    real = _fast.is_symmetric
    monkeypatch.setattr(_fast, "is_symmetric", lambda adj: calls.append(id(adj)) or real(adj))
    adj = normalized_adjacency(EDGES, USERS, ITEMS, "csr")
    for _ in range(4):  # four training steps over the same Ã, three layers each
        model.propagate_embeddings(adj).sum().backward()
    assert calls == [id(adj)]
    other = normalized_adjacency(EDGES, USERS, ITEMS, "csr")  # equal, another object: checked again
    model.propagate_embeddings(other).sum().backward()
    assert len(calls) == 2


def test_is_symmetric_and_sparse_transpose():
    for layout in ("coo", "csr"):
        sym = normalized_adjacency(EDGES, USERS, ITEMS, layout)
        assert _fast.is_symmetric(sym) and _fast.sparse_transpose(sym) is sym
        a = _non_symmetric(seed=5)
        s = _sparse(a, layout)
        assert not _fast.is_symmetric(s)
        t = _fast.sparse_transpose(s)
        assert t.layout == s.layout
        torch.testing.assert_close(t.to_dense(), a.T)
    assert not _fast.is_symmetric(torch.ones(2, 3).to_sparse_coo())  # not square
    pattern_only = torch.tensor([[0.0, 1.0], [2.0, 0.0]])  # symmetric pattern, different values
    assert not _fast.is_symmetric(pattern_only.to_sparse_csr())


def test_transpose_cache_forgets_collected_matrices():
    conv = LightGCNConv()
    x = torch.randn(USERS + ITEMS, 2, requires_grad=True)
    for seed in range(3):  # e.g. one adjacency per fold or per experiment
        adj = _non_symmetric(seed=seed).to_sparse_csr()
        conv(x, adj).sum().backward()
        assert len(conv._transposes) == 1  # the previous adjacency (and its transpose) is gone
    del adj
    gc.collect()
    assert len(conv._transposes) == 0


def test_quiet_sparse_silences_the_csr_beta_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _fast.quiet_sparse():
            warnings.warn("Sparse CSR tensor support is in beta state", UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]


# --------------------------------------------------------------------------- BPR scores

def _scoring_case(seed=0, rows=7, n=5, nodes=12, dim=4):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(nodes, dim, generator=g)
    a = torch.randint(0, nodes, (rows,), generator=g)
    b = torch.randint(0, nodes, (rows, n), generator=g)  # repeats within and across rows
    return emb, a, b


def test_pair_scores_equal_the_plain_expression(monkeypatch):
    monkeypatch.setattr(_fast, "_CHUNK", 3)  # several chunks, the last one partial
    emb, a, b = _scoring_case()
    w = torch.randn(b.shape)
    fast = emb.clone().requires_grad_(True)
    plain = emb.clone().requires_grad_(True)
    out = _fast.pair_scores(fast, a, b)
    expected = (plain[a].unsqueeze(1) * plain[b]).sum(-1)
    torch.testing.assert_close(out, expected)
    (out * w).sum().backward()
    (expected * w).sum().backward()
    torch.testing.assert_close(fast.grad, plain.grad)
    with torch.no_grad():
        torch.testing.assert_close(_fast.pair_scores(emb, a, b), expected.detach())


def test_chunked_scores_against_another_table():
    emb, a, b = _scoring_case(seed=1)
    other = torch.randn_like(emb)
    torch.testing.assert_close(_fast.chunked_scores(emb, a, b, other),
                               (emb[a].unsqueeze(1) * other[b]).sum(-1))


def test_shared_l2_equals_the_plain_l2_term():
    g = torch.Generator().manual_seed(2)
    emb0 = torch.randn(15, 3, generator=g)
    users, pos = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([5, 6, 7, 8, 9, 10])
    row = torch.tensor([0, 0, 1, 2, 2, 2])  # each distinct user's row of shared negatives
    neg = torch.tensor([[11, 12], [13, 11], [14, 14]])
    fast = emb0.clone().requires_grad_(True)
    plain = emb0.clone().requires_grad_(True)
    out = _fast.shared_l2(fast, users, pos, row, neg)
    # ½ (‖e_u‖² + ‖e_i‖² + mean_j ‖e_j‖²) / B, positive by positive
    mean_neg = plain[neg[row]].pow(2).sum(-1).mean(1)
    expected = 0.5 * (plain[users].pow(2).sum() + plain[pos].pow(2).sum() + mean_neg.sum()) / 6
    torch.testing.assert_close(out, expected)
    one = torch.arange(6)  # one negative per positive: l2_regularization itself
    torch.testing.assert_close(_fast.shared_l2(emb0, users, pos, one, neg[row][:, :1]),
                               l2_regularization(emb0[users], emb0[pos], emb0[neg[row][:, 0]]))
    out.backward()
    expected.backward()
    torch.testing.assert_close(fast.grad, plain.grad)


# --------------------------------------------------------------------------- ranking

def test_excluded_index_equals_plain_masking():
    g = torch.Generator().manual_seed(3)
    exclude = [torch.stack([torch.randint(0, 9, (30,), generator=g),
                            torch.randint(0, 6, (30,), generator=g)]), torch.empty(2, 0).long()]
    users = torch.tensor([4, 0, 8, 2, 7, 1, 3])  # some users without any excluded item
    index = _fast.ExcludedIndex(exclude, 6, users)
    for start, stop in ((0, 3), (3, 7), (5, 9)):
        rows, items = index.entries(start, stop)
        got = torch.zeros(stop - start, 6, dtype=torch.bool)
        got[rows, items] = True
        plain = torch.zeros_like(got)
        for r, u in enumerate(users[start:stop].tolist()):
            plain[r, exclude[0][1, exclude[0][0] == u]] = True
        assert torch.equal(got[:len(users[start:stop])], plain[:len(users[start:stop])])
    with pytest.raises(ValueError, match="items in 0..5"):
        _fast.ExcludedIndex([torch.tensor([[0], [6]])], 6, users)


def test_topk_ties_by_index_equals_a_stable_descending_sort():
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 4, (50, 30), generator=g).float()  # many exact ties
    scores[0] = 1.0  # a row of ties only
    for k in (1, 5, 29, 30):
        expected = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        assert torch.equal(_fast.topk_ties_by_index(scores, k), expected)


def test_auto_chunk_size_bounds():
    assert _fast.auto_chunk_size(9724) == 215 and _fast.auto_chunk_size(40981) == 51
    assert _fast.auto_chunk_size(1) == 1024 and _fast.auto_chunk_size(10**9) == 16


# --------------------------------------------------------------------------- ids and keys

@pytest.mark.parametrize("values", [
    np.array([5, 3, 3, 900, -2, 5]),                  # integers in a modest range: counted
    np.array([3, 10**15, 3, -10**15]),                # a huge range: sorted
    np.array([7, 1, 7], dtype=np.int32),              # the dtype is kept
    np.array(["b", "a", "b", "c"]),
    np.array([2.5, 0.5, 2.5]),
    np.array([], dtype=np.int64),
])
def test_sorted_unique_equals_np_unique(values):
    got = _fast.sorted_unique(values)
    assert got.dtype == np.unique(values).dtype
    np.testing.assert_array_equal(got, np.unique(values))


def test_positions_equal_searchsorted_and_find_the_unknown():
    classes = np.array([-3, 0, 4, 5, 90])
    raw = np.array([4, -3, 90, 5, 0, 4])
    table = _fast.position_table(classes)
    for t in (None, table):
        idx, unknown = _fast.positions(classes, raw, t)
        np.testing.assert_array_equal(idx, np.searchsorted(classes, raw))
        assert not unknown.any()
    odd = np.array([1, -4, 91, 4, 2**62, -2**62])  # between, below, above, known, extremes
    for t in (None, table):
        _, unknown = _fast.positions(classes, odd, t)
        np.testing.assert_array_equal(unknown, [True, True, True, False, True, True])
    assert _fast.position_table(np.array(["a", "b"])) is None
    assert _fast.position_table(np.array([0, 10**12])) is None  # too sparse a range


def test_unique_keys_equal_torch_unique():
    keys = torch.tensor([9, 2, 2, 7, 10**12, 2, 0])
    assert torch.equal(_fast.unique_keys(keys), torch.unique(keys))
    assert torch.equal(_fast.unique_keys(keys[:0]), torch.unique(keys[:0]))


def test_a_used_model_pickles_and_copies_with_an_empty_transpose_cache():
    import copy
    import pickle

    conv = LightGCNConv()
    x = torch.randn(USERS + ITEMS, 2, requires_grad=True)
    adj = _non_symmetric(seed=8).to_sparse_csr()  # kept alive: the cache holds it weakly
    conv(x, adj).sum().backward()
    assert len(conv._transposes) == 1
    for clone in (pickle.loads(pickle.dumps(conv)), copy.deepcopy(conv)):
        assert isinstance(clone._transposes, _fast.TransposeCache) and len(clone._transposes) == 0
