"""LightGCN (He et al., SIGIR 2020): propagation layer and model.

One layer (no weights, no non-linearity):

    e_u^(k+1) = Σ_{i ∈ N(u)} 1 / (sqrt|N_u| sqrt|N_i|) · e_i^(k)      (and symmetrically for items)

Final embedding: e = Σ_{k=0..K} α_k e^(k), α_k = 1/(K+1) by default; score ŷ_ui = e_u · e_i.
In matrix form E = Σ_k α_k Ã^k E⁰ with Ã = D^-1/2 A D^-1/2.

The graph argument ``adj`` may be any of

* a bipartite ``edge_index`` ``(2, 2E)`` ``int64`` (normalization computed on the fly,
  gather/scatter message passing);
* a torch sparse tensor (COO or CSR) holding the *already normalized*, symmetric ``Ã``
  (see :func:`lightgcn_helpers.graph.normalized_adjacency`); CSR is fastest on CPU;
* a ``torch_sparse.SparseTensor`` holding ``Ã`` (when torch-sparse is installed).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import spmm

__all__ = ["LightGCNConv", "LightGCN", "propagate_matrix_form"]


def _is_edge_index(adj) -> bool:
    return isinstance(adj, Tensor) and not adj.is_sparse and adj.layout == torch.strided


class _SymmetricSpmm(torch.autograd.Function):
    """``Ã @ X`` for a *symmetric* torch sparse ``Ã``: the backward pass needs ``Ãᵀ @ G``,
    which is ``Ã @ G`` again, so no transpose of the sparse matrix is ever built
    (PyTorch's generic sparse backward re-transposes ``Ã`` at every step, ~4× slower)."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, torch.sparse.mm(ctx.adj, grad)


class LightGCNConv(MessagePassing):
    """One LightGCN propagation step as a PyG ``MessagePassing`` layer.

    ``message`` scales each neighbour's embedding by the edge's normalization
    ``1/sqrt(deg_i deg_j)``; ``aggr='add'`` sums them. When the graph comes as a
    sparse matrix, ``message_and_aggregate`` does both in one sparse product Ã·X.
    """

    def __init__(self):
        super().__init__(aggr="add")

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
            return _SymmetricSpmm.apply(adj_t, x)  # Ã is symmetric (see the class docstring)
        # torch_sparse.SparseTensor: on the CPU, PyG converts it to a torch CSR matrix for every
        # product, and PyTorch warns ("invariant checks are implicitly disabled", "CSR ... beta")
        # unless the invariant checks are switched off explicitly.
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            return spmm(adj_t, x, reduce="sum")


class LightGCN(nn.Module):
    """LightGCN over ``num_users + num_items`` nodes (movies offset by ``num_users``).

    Parameters: only the layer-0 embedding table ``E⁰`` of shape
    ``(num_users + num_items, embedding_dim)``. ``num_layers=0`` is plain matrix
    factorization (MF-BPR). ``alpha`` defaults to ``1/(K+1)`` for every layer.
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
        """``[E⁰, E¹, ..., E^K]``, each ``(N, d)``."""
        adj, w = self._prepare(adj)
        xs = [self.embedding.weight]
        for _ in range(self.num_layers):
            xs.append(self.conv(xs[-1], adj, w))
        return xs

    def propagate_embeddings(self, adj) -> Tensor:
        """Final embeddings ``Σ_k α_k E^k``, shape ``(N, d)``."""
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
    """Matrix form ``E = Σ_k α_k Ã^k E⁰`` with a sparse (or, for toy graphs, dense) ``Ã``."""
    if alpha is None:
        alpha = torch.full((num_layers + 1,), 1.0 / (num_layers + 1), device=e0.device)
    x, out = e0, e0 * alpha[0]
    for k in range(1, num_layers + 1):
        x = norm_adj @ x
        out = out + alpha[k] * x
    return out
