"""LightGCN (He et al., SIGIR 2020): the propagation layer, the layer combination, the score.

One layer has no weights and no non-linearity:

    e_u^(l+1) = Σ_{i ∈ N(u)} 1 / (sqrt|N_u| sqrt|N_i|) · e_i^(l)     (and symmetrically for items)

The final embedding over L layers (the paper's K) is e = Σ_{l=0..L} α_l e^(l), α_l = 1/(L+1)
by default, and the score is ŷ_ui = e_u · e_i. In matrix form E = Σ_l α_l Ã^l E⁰ with
Ã = D^-1/2 A D^-1/2. The graph argument ``adj`` may be a bipartite ``edge_index`` ``(2, 2E)``
(normalized on the fly, gather/scatter message passing), a torch sparse COO/CSR matrix holding
the already normalized ``Ã`` (:func:`lightgcn_helpers.graph.normalized_adjacency`; CSR is the
fastest on a CPU) or a ``torch_sparse.SparseTensor`` holding ``Ã``.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import spmm

from ._fast import TransposeCache, quiet_sparse, sparse_matmul

__all__ = ["LightGCNConv", "LightGCN", "combine_layers", "propagate_matrix_form"]


def _is_edge_index(adj) -> bool:
    return isinstance(adj, Tensor) and not adj.is_sparse and adj.layout == torch.strided


def combine_layers(layers: Iterable[Tensor], alpha: Tensor) -> Tensor:
    """The layer combination ``Σ_l α_l E^(l)`` of ``layers`` ``[E⁰, E¹, ..., E^L]`` (any equal
    shapes) with weights ``alpha`` ``(L+1,)``; ``layers`` may be a generator (each layer is
    added as soon as it is made). Derived in notebook 04, §1."""
    out = None
    for layer, x in enumerate(layers):
        out = x * alpha[0] if out is None else out + x * alpha[layer]
    return out


class LightGCNConv(MessagePassing):
    """One LightGCN propagation step as a PyG ``MessagePassing`` layer. Derived in notebook 04, §2.

    ``message`` scales each neighbour's embedding by the edge's normalization
    ``1/sqrt(deg_i deg_j)``; ``aggr='add'`` sums them. When the graph comes as a sparse matrix,
    ``message_and_aggregate`` does both in one sparse product Ã·X (whose backward pass reuses
    Ã itself, Ã being symmetric: :func:`lightgcn_helpers._fast.sparse_matmul`).
    """

    def __init__(self):
        super().__init__(aggr="add")
        self._transposes = TransposeCache()  # Ãᵀ for the backward pass, found once per matrix

    def forward(self, x: Tensor, adj, edge_weight: Tensor | None = None) -> Tensor:
        """``x`` ``(N, d)`` → ``(N, d)``. ``edge_weight`` is the normalization of an
        ``edge_index`` (computed with ``gcn_norm`` when omitted); ignored for sparse ``adj``."""
        if _is_edge_index(adj) and edge_weight is None:
            adj, edge_weight = gcn_norm(adj, None, x.size(0), add_self_loops=False)
        return self.propagate(adj, x=x, edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t, x: Tensor) -> Tensor:
        # (PyG's name ``adj_t``: the matrix M of ``out = M @ x``; for LightGCN M = Ã.)
        if isinstance(adj_t, Tensor) and adj_t.layout in (torch.sparse_csr, torch.sparse_coo):
            return sparse_matmul(adj_t, x, self._transposes)
        with quiet_sparse():  # torch_sparse.SparseTensor: PyG makes a CSR tensor per product
            return spmm(adj_t, x, reduce="sum")


class LightGCN(nn.Module):
    """LightGCN over ``num_users + num_items`` nodes (items offset by ``num_users``).
    Derived in notebook 04, §4.

    Parameters: only the layer-0 embedding table ``E⁰`` of shape
    ``(num_users + num_items, embedding_dim)``. ``num_layers=0`` is plain matrix
    factorization (MF-BPR). ``alpha`` defaults to ``1/(L+1)`` for every layer (L = ``num_layers``).
    """

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 num_layers: int = 3, alpha: Tensor | None = None, init_std: float = 0.1):
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.num_layers = num_layers
        self.embedding = nn.Embedding(num_users + num_items, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=init_std)
        if alpha is None:
            alpha = torch.full((num_layers + 1,), 1.0 / (num_layers + 1))
        if alpha.numel() != num_layers + 1:
            raise ValueError(f"alpha needs num_layers + 1 = {num_layers + 1} entries, "
                             f"got {alpha.numel()}")
        self.register_buffer("alpha", alpha.float())
        self.conv = LightGCNConv()

    def _prepare(self, adj):
        if _is_edge_index(adj):
            n = self.embedding.num_embeddings
            if adj.numel() and int(adj.max()) >= n:
                raise ValueError(f"edge_index refers to node {int(adj.max())}, "
                                 f"but the model has {n} nodes")
            return gcn_norm(adj, None, n, add_self_loops=False)
        return adj, None

    def layer_embeddings(self, adj) -> list[Tensor]:
        """``[E⁰, E¹, ..., E^L]``, each ``(N, d)``: ``E^(l+1) = Ã E^(l)``."""
        adj, weight = self._prepare(adj)
        layers = [self.embedding.weight]
        for _ in range(self.num_layers):
            layers.append(self.conv(layers[-1], adj, weight))
        return layers

    def propagate_embeddings(self, adj) -> Tensor:
        """Final embeddings ``Σ_l α_l E^(l)`` (:func:`combine_layers`), shape ``(N, d)``."""
        return combine_layers(self.layer_embeddings(adj), self.alpha)

    def forward(self, adj) -> tuple[Tensor, Tensor]:
        """``(user_emb (num_users, d), item_emb (num_items, d))`` after propagation."""
        out = self.propagate_embeddings(adj)
        return out[: self.num_users], out[self.num_users:]

    @staticmethod
    def score(user_emb: Tensor, item_emb: Tensor) -> Tensor:
        """Inner-product scores ŷ_ui = e_u · e_i for paired rows: ``(B, d), (B, d) → (B,)``.
        For all user × item scores use ``user_emb @ item_emb.T``."""
        return (user_emb * item_emb).sum(-1)


def propagate_matrix_form(e0: Tensor, norm_adj: Tensor, num_layers: int,
                          alpha: Tensor | None = None) -> Tensor:
    """Matrix form ``E = Σ_l α_l Ã^l E⁰`` with a sparse (or, for toy graphs, dense) ``Ã``.
    Derived in notebook 04, §3."""
    if alpha is None:
        alpha = torch.full((num_layers + 1,), 1.0 / (num_layers + 1), device=e0.device)
    layers = [e0]
    for _ in range(num_layers):
        layers.append(norm_adj @ layers[-1])
    return combine_layers(layers, alpha)
