"""LightGCN (He et al., SIGIR 2020): propagation layer and model.

One layer (no weights, no non-linearity):

    e_u^(k+1) = Σ_{i ∈ N(u)} 1 / (sqrt|N_u| sqrt|N_i|) · e_i^(k)      (and symmetrically for items)

Final embedding over L layers (the paper calls it K): e = Σ_{l=0..L} α_l e^(l), α_l = 1/(L+1)
by default; score ŷ_ui = e_u · e_i. In matrix form E = Σ_l α_l Ã^l E⁰ with Ã = D^-1/2 A D^-1/2.

The graph argument ``adj`` may be any of

* a bipartite ``edge_index`` ``(2, 2E)`` ``int64`` (normalization computed on the fly,
  gather/scatter message passing);
* a torch sparse tensor (COO or CSR) holding the *already normalized* ``Ã``
  (see :func:`lightgcn_helpers.graph.normalized_adjacency`); CSR is fastest on CPU.
  ``Ã`` is symmetric, which makes the backward pass cheap (``Ãᵀ = Ã``, no transpose is
  built); this is checked once per matrix object, not assumed: a non-symmetric matrix gets
  correct gradients through its transpose (see :meth:`LightGCNConv.transpose_of`);
* a ``torch_sparse.SparseTensor`` holding ``Ã`` (when torch-sparse is installed).
"""
from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import spmm

__all__ = ["LightGCNConv", "LightGCN", "propagate_matrix_form", "is_symmetric", "sparse_transpose"]


def _is_edge_index(adj) -> bool:
    return isinstance(adj, Tensor) and not adj.is_sparse and adj.layout == torch.strided


class _SparseMM(torch.autograd.Function):
    """``adj @ x`` for a torch sparse ``adj`` (COO or CSR), with the backward pass given its
    transpose explicitly: ``∂L/∂x = adjᵀ @ ∂L/∂out``. Pass ``adj_t = adj`` itself when ``adj`` is
    symmetric (LightGCN's ``Ã``): the backward then needs no transpose at all, where PyTorch's
    generic sparse backward re-transposes the matrix at every step (~4× slower on the CPU).
    Whether ``adj`` is symmetric is decided by :func:`sparse_transpose`, never assumed.

    No gradient flows into ``adj`` / ``adj_t`` (they must not require one; see
    :meth:`LightGCNConv.message_and_aggregate`, which falls back to ``torch.sparse.mm`` then).
    ``adj_t`` is kept with ``ctx.save_for_backward`` (only when ``x`` needs a gradient), which
    accepts sparse COO and CSR tensors (checked on torch 2.13) and raises if the matrix is
    modified in place between the forward and the backward pass."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            raise RuntimeError("_SparseMM gives no gradient for the sparse matrix; use torch.sparse.mm "
                               "when the matrix's values require grad")
        ctx.save_for_backward(adj_t if ctx.needs_input_grad[2] else None)
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (adj_t,) = ctx.saved_tensors
        grad_x = torch.sparse.mm(adj_t, grad) if ctx.needs_input_grad[2] else None
        return None, None, grad_x


def _sparse_entries(adj: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(row, col, value)`` of a COO or CSR matrix, sorted row-major, duplicates summed."""
    if adj.layout == torch.sparse_csr:
        crow = adj.crow_indices()
        row = torch.repeat_interleave(torch.arange(adj.shape[0], device=crow.device), crow.diff())
        col, val = adj.col_indices(), adj.values()
        key = row * adj.shape[1] + col
        if key.numel() > 1 and not bool((key[1:] > key[:-1]).all()):  # unsorted or repeated columns
            return _sparse_entries(torch.sparse_coo_tensor(torch.stack([row, col]), val, adj.shape))
        return row, col, val
    adj = adj.coalesce()
    return adj.indices()[0], adj.indices()[1], adj.values()


def is_symmetric(adj: Tensor) -> bool:
    """Is the torch sparse (COO or CSR) matrix exactly equal to its transpose? Compares the
    entries ``(i, j, value)`` with ``(j, i, value)``, vectorized (one sort, no dense matrix)."""
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        return False
    row, col, val = _sparse_entries(adj)
    n = adj.shape[0]
    order = torch.argsort(col * n + row)  # the transpose's entries, in row-major order
    return bool(torch.equal(col[order], row) and torch.equal(row[order], col) and torch.equal(val[order], val))


def sparse_transpose(adj: Tensor) -> Tensor:
    """``adjᵀ`` in ``adj``'s layout (COO or CSR) — ``adj`` itself when it is symmetric
    (:func:`is_symmetric`), so that a symmetric ``Ã`` is never copied."""
    if is_symmetric(adj):
        return adj
    if adj.layout == torch.sparse_csr:
        return adj.t().to_sparse_csr()  # .t() of a CSR matrix is CSC: convert back
    return adj.t().coalesce()


class LightGCNConv(MessagePassing):
    """One LightGCN propagation step as a PyG ``MessagePassing`` layer.

    ``message`` scales each neighbour's embedding by the edge's normalization
    ``1/sqrt(deg_i deg_j)``; ``aggr='add'`` sums them. When the graph comes as a
    sparse matrix, ``message_and_aggregate`` does both in one sparse product Ã·X.
    """

    def __init__(self):
        super().__init__(aggr="add")
        # id(adj) -> (weak reference to adj, adj._version, adjᵀ or None when adj is symmetric);
        # see :meth:`transpose_of`
        self._transposes: dict[int, tuple[weakref.ref, int, Tensor | None]] = {}

    def __getstate__(self):  # pickling / deepcopy: the cache holds weak references, rebuild it lazily
        state = super().__getstate__()  # nn.Module: a copy of __dict__
        state["_transposes"] = {}
        return state

    def transpose_of(self, adj: Tensor) -> Tensor:
        """``adjᵀ`` for the backward pass of a sparse ``adj``, determined once per adjacency
        *object*: the first call checks symmetry (:func:`is_symmetric`; ``adj`` itself is used
        when symmetric, else the transpose is built) and caches the answer under ``id(adj)``,
        so training, which propagates over the same ``Ã`` at every step, pays the check once.
        The entry is dropped when ``adj`` is garbage collected (the cache never keeps ``adj``
        alive) and recomputed when ``adj`` is modified in place (its version counter changes)."""
        key, cache = id(adj), self._transposes
        hit = cache.get(key)
        if hit is not None and hit[0]() is adj and hit[1] == adj._version:
            return adj if hit[2] is None else hit[2]
        adj_t = sparse_transpose(adj)

        def forget(ref, key=key, cache=cache):  # adj was garbage collected
            if key in cache and cache[key][0] is ref:
                del cache[key]

        cache[key] = (weakref.ref(adj, forget), adj._version, None if adj_t is adj else adj_t)
        return adj_t

    def forward(self, x: Tensor, adj, edge_weight: Tensor | None = None) -> Tensor:
        """``x`` ``(N, d)`` → ``(N, d)``. ``edge_weight`` is the normalization of an
        ``edge_index`` (computed with ``gcn_norm`` when omitted); ignored for sparse ``adj``."""
        if _is_edge_index(adj) and edge_weight is None:
            adj, edge_weight = gcn_norm(adj, None, x.size(0), add_self_loops=False)
        return self.propagate(adj, x=x, edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t, x: Tensor) -> Tensor:
        if isinstance(adj_t, Tensor) and adj_t.layout in (torch.sparse_csr, torch.sparse_coo):
            # (PyG's name ``adj_t``: the matrix M of ``out = M @ x``; for LightGCN M = Ã.)
            if adj_t.requires_grad or not (x.requires_grad and torch.is_grad_enabled()):
                # learnable edge weights: PyTorch's generic sparse backward; no gradient: no backward
                return torch.sparse.mm(adj_t, x)
            return _SparseMM.apply(adj_t, self.transpose_of(adj_t), x)
        # torch_sparse.SparseTensor: on the CPU, PyG converts it to a torch CSR matrix for every
        # product, and PyTorch warns ("invariant checks are implicitly disabled", "CSR ... beta")
        # unless the invariant checks are switched off explicitly.
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            return spmm(adj_t, x, reduce="sum")


class LightGCN(nn.Module):
    """LightGCN over ``num_users + num_items`` nodes (movies offset by ``num_users``).

    Parameters: only the layer-0 embedding table ``E⁰`` of shape
    ``(num_users + num_items, embedding_dim)``. ``num_layers=0`` is plain matrix
    factorization (MF-BPR). ``alpha`` defaults to ``1/(L+1)`` for every layer (L = ``num_layers``).
    """

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64, num_layers: int = 3,
                 alpha: Tensor | None = None, init_std: float = 0.1):
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.num_layers = num_layers
        self.embedding = nn.Embedding(num_users + num_items, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=init_std)
        if alpha is None:
            alpha = torch.full((num_layers + 1,), 1.0 / (num_layers + 1))
        if alpha.numel() != num_layers + 1:
            raise ValueError(f"alpha needs num_layers + 1 = {num_layers + 1} entries, got {alpha.numel()}")
        self.register_buffer("alpha", alpha.float())
        self.conv = LightGCNConv()

    def _prepare(self, adj):
        if _is_edge_index(adj):
            n = self.embedding.num_embeddings
            if adj.numel() and int(adj.max()) >= n:
                raise ValueError(f"edge_index refers to node {int(adj.max())}, but the model has {n} nodes")
            return gcn_norm(adj, None, n, add_self_loops=False)
        return adj, None

    def layer_embeddings(self, adj) -> list[Tensor]:
        """``[E⁰, E¹, ..., E^L]``, each ``(N, d)``."""
        adj, w = self._prepare(adj)
        xs = [self.embedding.weight]
        for _ in range(self.num_layers):
            xs.append(self.conv(xs[-1], adj, w))
        return xs

    def propagate_embeddings(self, adj) -> Tensor:
        """Final embeddings ``Σ_l α_l E^l``, shape ``(N, d)``."""
        xs = self.layer_embeddings(adj)
        out = xs[0] * self.alpha[0]
        for k in range(1, len(xs)):
            out = out + xs[k] * self.alpha[k]
        return out

    def forward(self, adj) -> tuple[Tensor, Tensor]:
        """``(user_emb (num_users, d), item_emb (num_items, d))`` after propagation."""
        out = self.propagate_embeddings(adj)
        return out[: self.num_users], out[self.num_users:]

    @staticmethod
    def score(user_emb: Tensor, item_emb: Tensor) -> Tensor:
        """Inner-product scores ŷ_ui = e_u · e_i for paired rows: ``(B, d), (B, d) → (B,)``.
        For all user × item scores use ``user_emb @ item_emb.T``."""
        return (user_emb * item_emb).sum(-1)


def propagate_matrix_form(e0: Tensor, norm_adj: Tensor, num_layers: int, alpha: Tensor | None = None) -> Tensor:
    """Matrix form ``E = Σ_l α_l Ã^l E⁰`` with a sparse (or, for toy graphs, dense) ``Ã``."""
    if alpha is None:
        alpha = torch.full((num_layers + 1,), 1.0 / (num_layers + 1), device=e0.device)
    x, out = e0, e0 * alpha[0]
    for layer in range(1, num_layers + 1):
        x = norm_adj @ x
        out = out + alpha[layer] * x
    return out
