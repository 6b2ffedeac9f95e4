"""Mini-batch LightGCN on sampled neighbourhoods, with PyG's own parts — on one process or
many (PyTorch ``DistributedDataParallel``, launched with ``torchrun``).

Full-graph training (:mod:`lightgcn_helpers.train`) propagates E⁰ over the *whole* training
graph at every step: the graph, E⁰ and every layer's activations must fit on one device.
The standard way past that limit is to compute, for each batch of BPR triples
``(user, liked item, negative items)``, only the embeddings of those *seed* nodes, on the
L-hop neighbourhood that PyG samples around them:

* the training graph becomes a PyG :class:`~torch_geometric.data.HeteroData` with two node
  types, ``'user'`` and ``'item'``, and the edge types ``('user', 'likes', 'item')`` and its
  reverse ``('item', 'rev_likes', 'user')`` (:func:`to_hetero_data`). Users and items stay
  distinct types, so nothing can ever draw a user where an item is meant;
* :class:`torch_geometric.loader.LinkNeighborLoader` (with PyG's ``NeighborSampler``)
  samples, for the pairs of a batch, ``num_neighbors[k]`` neighbours per node and hop
  (``-1``: all of them) and returns the subgraph as a ``HeteroData`` with the pairs'
  local indices in ``edge_label_index``;
* L layers of :class:`torch_geometric.nn.LGConv` propagate E⁰ of the subgraph's nodes
  (:class:`MiniBatchLightGCN`) and the series' BPR loss + λ·L2 of the layer-0 rows of the
  triple (:func:`~lightgcn_helpers.loss.bpr_shared_negatives_loss`) trains them.

Decisions, all tested in ``tests/test_minibatch.py``:

* **Normalisation of the full graph.** LightGCN weighs an edge by ``1/sqrt(deg_u deg_i)``
  with the degrees of the *full* training graph; a sampled subgraph has other degrees, so
  ``LGConv(normalize=True)`` would compute other weights. The full-graph weights are stored
  on the edges as the edge attribute ``edge_weight``; the sampler carries them into every
  subgraph and ``LGConv(normalize=False)`` uses them. With ``num_neighbors=[-1] * L``
  ("sample everything") the seeds' embeddings then *equal* the full graph's
  (:meth:`LightGCN.propagate_embeddings <lightgcn_helpers.model.LightGCN.propagate_embeddings>`),
  up to float summation order — the correctness anchor. With a fan-out below a node's
  degree, the node sums a sample of its neighbours at full-graph weights, scaled by
  ``deg / sampled`` so that the sum is an unbiased estimate of the full one
  (:class:`MiniBatchLightGCN`, ``rescale=True``; our own addition), which is what
  evaluation uses. Neighbours are drawn *with* replacement: torch-sparse's sampling without
  replacement is not uniform (:class:`SubgraphSampler`).
* **Negatives.** PyG can draw negatives itself (``neg_sampling=dict(mode='triplet', ...)``,
  which on this ``HeteroData`` draws them among items only), but uniformly: it keeps false
  negatives (items the user liked in training; "TODO: Do not sample false negatives" in
  torch_geometric 2.8.1), and it draws them from each process's own global random stream,
  so two processes could not reproduce one process's batches. Negatives here come from the
  series' :class:`~lightgcn_helpers.sampling.BPRSampler` (items only, never a training like
  of that user), and LinkNeighborLoader samples the neighbourhood of the pairs
  ``[(u, i) | (u, j)]`` of each batch (labels 1 | 0).

Evaluation is unchanged: **mini-batch trains, the full graph evaluates.** The trained
embedding table is the series' :class:`~lightgcn_helpers.model.LightGCN`, so
:func:`lightgcn_helpers.train.evaluate_model` ranks all items for every user from the full
propagated embeddings of the training graph (that needs the graph on one device; on a graph
too big for that, evaluate in chunks of users over sampled subgraphs — not done here).

Several processes (DistributedDataParallel)
-------------------------------------------
:func:`train_minibatch` runs unchanged under ``torchrun``: when a process group is
initialised (:func:`init_distributed`), every process draws the *same* global batch (same
seed) and trains on its shard of it; DDP averages the gradients, and each process scales
its loss by ``world_size · local_pairs / global_pairs``, so the update equals the
one-process update on the global batch up to float reduction order
(``tests/test_distributed.py`` checks it with 2 CPU processes over gloo). The embedding
table is replicated (its dense gradient is all-reduced every step): DDP splits the
*sampling and propagation*, not the table — past one device's memory for the table itself,
shard it (e.g. TorchRec) or use a distributed graph store (``torch_geometric.distributed``).

Launch (``benchmarks/train_minibatch.py`` is the entry point)::

    # CPU, 2 processes, gloo (what CI runs, on a tiny graph)
    torchrun --standalone --nproc_per_node=2 benchmarks/train_minibatch.py --tiny
    # one machine with 4 GPUs: one process per GPU, NCCL
    torchrun --standalone --nproc_per_node=4 benchmarks/train_minibatch.py \\
        --dataset gowalla --device cuda
    # 2 machines x 8 GPUs: run on every machine, HOST = the first machine's address
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        --rdzv-id=lightgcn benchmarks/train_minibatch.py --dataset gowalla --device cuda

The backend follows the device (``nccl`` for CUDA, ``gloo`` for the CPU); each process uses
``cuda:<LOCAL_RANK>``. Every process loads the dataset and samples on its CPU.

PyG's neighbour sampling needs the compiled ``torch-sparse`` (or ``pyg-lib``); without
either, everything that samples raises :class:`SamplingUnavailable` with the message
:data:`SKIP_MESSAGE` (tests skip, scripts print it).
"""
from __future__ import annotations

import datetime
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._fast import quiet_sparse
from .env import has_torch_sparse
from .graph import normalized_adjacency, symmetric_weights
from .loss import bpr_shared_negatives_loss
from .model import LightGCN, combine_layers
from .sampling import BPRSampler
from .train import TrainConfig, TrainResult, evaluate_model, fit

__all__ = [
    "LIKES", "REV_LIKES", "SKIP_MESSAGE", "SamplingUnavailable", "sampling_available",
    "to_hetero_data", "SubgraphSampler", "MiniBatchLightGCN", "triples_of_batch", "minibatch_loss",
    "MiniBatchConfig", "MiniBatchResult", "train_minibatch", "init_distributed", "shard",
]

LIKES = ("user", "likes", "item")
REV_LIKES = ("item", "rev_likes", "user")

SKIP_MESSAGE = ("Mini-batch LightGCN skipped: PyG's neighbour sampling needs torch-sparse or "
                "pyg-lib, and neither is installed. Add torch-sparse with ./workshop.sh sparse "
                "(a one-off compile, about 12 minutes on 2 idle cores), then restart the "
                "kernel. Full-graph training needs neither.")


class SamplingUnavailable(ImportError):
    """PyG's neighbour sampler cannot run: neither torch-sparse nor pyg-lib is installed."""


def sampling_available() -> bool:
    """Can PyG sample neighbourhoods here (torch-sparse or pyg-lib installed)?"""
    import torch_geometric.typing as pyg_typing

    return has_torch_sparse() or bool(getattr(pyg_typing, "WITH_PYG_LIB", False))


def _require_sampling() -> None:
    """Raise :class:`SamplingUnavailable` (message :data:`SKIP_MESSAGE`) unless sampling works."""
    if not sampling_available():
        raise SamplingUnavailable(SKIP_MESSAGE)


# --------------------------------------------------------------------------- the graph


def to_hetero_data(train_edges: Tensor, num_users: int, num_items: int,
                   dtype: torch.dtype = torch.float32):
    """Training interactions ``(2, E)`` (items not offset) → PyG ``HeteroData``.

    Node types ``'user'`` (``num_users``) and ``'item'`` (``num_items``); edge types
    :data:`LIKES` ``('user', 'likes', 'item')`` and :data:`REV_LIKES` (its reverse), each pair
    once, each edge with ``edge_weight = 1/sqrt(deg_u deg_i)`` of the **full** training graph
    (the entries of :func:`~lightgcn_helpers.graph.normalized_adjacency`). No sampling here:
    works without torch-sparse. Node attribute ``deg``: each node's full-graph degree."""
    from torch_geometric.data import HeteroData

    if train_edges.dim() != 2 or train_edges.shape[0] != 2:
        raise ValueError(f"train_edges must be (2, E), got shape {tuple(train_edges.shape)}")
    edges = train_edges.long().cpu()
    if edges.numel() and (int(edges.min()) < 0 or int(edges[0].max()) >= num_users
                          or int(edges[1].max()) >= num_items):
        raise ValueError("train_edges refer to a user or item beyond num_users / num_items "
                         "(pass item indices without the num_users offset)")
    keys = torch.unique(edges[0] * num_items + edges[1])  # each pair once, as normalized_adjacency
    users, items = keys // num_items, keys % num_items
    # the entries of the full graph's Ã, bit for bit: both directions over one node numbering
    row = torch.cat([users, items + num_users])
    col = torch.cat([items + num_users, users])
    weight = symmetric_weights(row, col, num_users + num_items, dtype)[: users.numel()]
    data = HeteroData()
    data["user"].num_nodes = num_users
    data["item"].num_nodes = num_items
    # full-graph degrees as node attributes: the sampler carries them into every subgraph
    # (MiniBatchLightGCN's rescaling of sampled sums needs them)
    data["user"].deg = torch.bincount(users, minlength=num_users)
    data["item"].deg = torch.bincount(items, minlength=num_items)
    data[LIKES].edge_index = torch.stack([users, items])
    data[LIKES].edge_weight = weight
    data[REV_LIKES].edge_index = torch.stack([items, users])
    data[REV_LIKES].edge_weight = weight
    return data


def _fanouts(num_neighbors: int | Sequence[int], num_layers: int) -> list[int]:
    if isinstance(num_neighbors, int):
        return [num_neighbors] * num_layers
    fan = [int(f) for f in num_neighbors]
    if len(fan) != num_layers:
        raise ValueError(f"num_neighbors has {len(fan)} entries but the model has {num_layers} "
                         "layers: give one "
                         f"fan-out per layer (-1 = all neighbours), e.g. {[10] * num_layers}")
    if any(f == 0 or f < -1 for f in fan):
        raise ValueError(f"every fan-out must be -1 (all neighbours) or >= 1, got {fan}")
    return fan


def _pairs(users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
    """Triples → the pairs LinkNeighborLoader samples around: ``[(u, i) for each triple |
    (u, j) for each triple and each of its n negatives, row-major]``, labels ``1 | 0``."""
    neg = neg.reshape(users.numel(), -1)
    n = neg.shape[1]
    index = torch.stack([torch.cat([users, users.repeat_interleave(n)]),
                         torch.cat([pos, neg.reshape(-1)])])
    label = torch.cat([torch.ones(users.numel()), torch.zeros(neg.numel())])
    return index, label


class SubgraphSampler:
    """The training graph as :func:`to_hetero_data` plus PyG's ``NeighborSampler`` (built once:
    it converts the graph to CSC), turning BPR triples into sampled subgraphs with
    :class:`~torch_geometric.loader.LinkNeighborLoader`.

    ``num_neighbors``: one fan-out per layer (``-1``: all neighbours), or one int for all.

    ``replace=True`` (default) samples each node's ``k`` neighbours *with* replacement
    (uniform draws; a node with fewer than ``k`` neighbours gets repeats). Without replacement,
    torch-sparse 0.6.18 (the sampler PyG uses when pyg-lib is absent) is not uniform: it
    over-samples the first combinations of neighbours and never draws the last one
    (rusty1s/pytorch_sparse#385, open; measured here: a user with 5 neighbours and a fan-out
    of 2 got three of them in ~50 % of the samples, the other two in ~25 %, instead of 40 %
    each), which would bias :class:`MiniBatchLightGCN`'s rescaled sums. With a fan-out of
    ``-1`` both take every neighbour once."""

    def __init__(self, train_edges: Tensor, num_users: int, num_items: int,
                 num_neighbors: int | Sequence[int], num_layers: int | None = None,
                 dtype: torch.dtype = torch.float32, replace: bool = True):
        _require_sampling()
        from torch_geometric.sampler import NeighborSampler

        if num_layers is None:
            num_layers = 1 if isinstance(num_neighbors, int) else len(num_neighbors)
        self.num_neighbors = _fanouts(num_neighbors, num_layers)
        self.num_users, self.num_items = num_users, num_items
        self.data = to_hetero_data(train_edges, num_users, num_items, dtype)
        with warnings.catch_warnings():
            # PyG 2.8 warns that sampling through torch-sparse instead of pyg-lib is deprecated;
            # pyg-lib has no wheel for this torch, and torch-sparse's sampler is what runs here.
            warnings.filterwarnings("ignore", message=".*without a 'pyg-lib' installation.*")
            self.neighbor_sampler = NeighborSampler(self.data, num_neighbors=self.num_neighbors,
                                                    replace=replace)

    def loader(self, batches: Sequence[tuple[Tensor, Tensor, Tensor]]):
        """A ``LinkNeighborLoader`` over the pairs of several batches of triples ``(users (B,),
        pos (B,), neg (B,) or (B, n))`` (items not offset), each batch laid out by
        :func:`_pairs`, one after the other; and the ``[first, last)`` pair positions of each
        batch. Calling the loader with a batch's positions, ``loader(torch.arange(first, last))``,
        samples that batch's subgraph."""
        from torch_geometric.loader import LinkNeighborLoader

        pairs = [_pairs(u.cpu(), p.cpu(), n.cpu()) for u, p, n in batches]
        sizes = torch.tensor([0] + [label.numel() for _, label in pairs]).cumsum(0).tolist()
        index, label = torch.cat([i for i, _ in pairs], 1), torch.cat([lab for _, lab in pairs])
        loader = LinkNeighborLoader(self.data, num_neighbors=self.num_neighbors,
                                    edge_label_index=(LIKES, index),
                                    edge_label=label, neighbor_sampler=self.neighbor_sampler)
        return loader, list(zip(sizes[:-1], sizes[1:]))

    def batch(self, users: Tensor, pos: Tensor, neg: Tensor):
        """The sampled subgraph (``HeteroData``) of one batch of triples; see
        :func:`triples_of_batch`."""
        loader, [(first, last)] = self.loader([(users, pos, neg)])
        return loader(torch.arange(first, last))


def triples_of_batch(batch, num_negatives: int) -> tuple[Tensor, Tensor, Tensor]:
    """Local node indices of a sampled batch's triples, in :class:`MiniBatchLightGCN`'s
    numbering (the batch's users first, then its items): ``users (b,)``, ``pos (b,)``,
    ``neg (b, num_negatives)``."""
    eli = batch[LIKES].edge_label_index
    b = eli.shape[1] // (1 + num_negatives)
    lu = batch["user"].num_nodes
    return eli[0, :b], lu + eli[1, :b], lu + eli[1, b:].view(b, num_negatives)


# --------------------------------------------------------------------------- the model


class MiniBatchLightGCN(nn.Module):
    """LightGCN propagation over a sampled subgraph, with PyG's ``LGConv``.

    Wraps (shares the parameters of) the series' :class:`~lightgcn_helpers.model.LightGCN`:
    its layer-0 table ``embedding`` and layer weights ``alpha``. ``forward(batch)`` gathers
    E⁰ of the batch's nodes (users first, then items), runs ``num_layers`` ``LGConv`` layers
    with the full-graph ``edge_weight`` the sampler carried (``normalize=False``) and returns
    ``(emb (L, d), emb0 (L, d))``: final and layer-0 embeddings of the L local nodes.

    ``rescale=True`` (default): a node that received ``c`` sampled edges (draws) from its
    ``deg`` neighbours has those ``c`` edge weights multiplied by ``deg / c``, so that its
    sampled sum is an *unbiased* estimate of its full-graph sum (uniform draws, see
    :class:`SubgraphSampler`; LightGCN is linear and different nodes are sampled
    independently, so the estimate stays unbiased through the layers). Without it, a fan-out
    of 10 at a node of degree 30 sums a third of the neighbourhood: the model would train on
    layer embeddings several times smaller than the full-graph ones it is evaluated with.
    This rescaling is our own addition (``LGConv`` has no such option); with every neighbour
    sampled ``c = deg`` and the weights are unchanged (factor exactly 1)."""

    def __init__(self, model: LightGCN, rescale: bool = True, sparse: bool | None = None):
        super().__init__()
        from torch_geometric.nn import LGConv

        self.model = model
        self.rescale = rescale
        # LGConv over a torch_sparse.SparseTensor runs one sparse product per layer instead of a
        # gather and a scatter over the edges: 1.5-2.5x faster forward + backward on a sampled
        # Gowalla subgraph (~480,000 edges) on the 2-core CPU. None: when torch-sparse is installed.
        self.sparse = has_torch_sparse() if sparse is None else sparse
        self.conv = LGConv(normalize=False)

    def forward(self, batch) -> tuple[Tensor, Tensor]:
        m = self.model
        device = m.embedding.weight.device
        nodes = torch.cat([batch["user"].n_id, batch["item"].n_id + m.num_users]).to(device)
        x0 = m.embedding(nodes)
        edge_index, edge_weight = self._edges(batch, nodes.numel(), device, x0.dtype)
        if self.sparse:
            from torch_sparse import SparseTensor

            n = nodes.numel()  # PyG's adj_t: row = target, column = source
            graph, weight = SparseTensor(row=edge_index[1], col=edge_index[0], value=edge_weight,
                                         sparse_sizes=(n, n)), None
        else:
            graph, weight = edge_index, edge_weight
        with quiet_sparse():  # PyG makes a CSR tensor of the SparseTensor for every product
            out = combine_layers(self._layers(x0, graph, weight), m.alpha)
        return out, x0

    def _layers(self, x0: Tensor, graph, weight):
        """``E⁰, E¹, ..., E^L`` of the subgraph, each made when the combination asks for it."""
        x = x0
        yield x
        for _ in range(self.model.num_layers):
            x = self.conv(x, graph, weight)
            yield x

    def _edges(self, batch, num_nodes: int, device, dtype) -> tuple[Tensor, Tensor]:
        """The subgraph as one homogeneous ``edge_index`` over the local nodes (users, then
        items offset by the local user count) and its full-graph weights, rescaled by
        ``deg / sampled`` (see the class docstring). Done by hand instead of
        ``HeteroData.to_homogeneous()``: two concatenations, the node order explicit."""
        ui, iu = batch[LIKES], batch[REV_LIKES]
        shift_ui = torch.tensor([[0], [batch["user"].num_nodes]])
        edge_index = torch.cat([ui.edge_index + shift_ui, iu.edge_index + shift_ui.flip(0)],
                               1).to(device)
        edge_weight = torch.cat([ui.edge_weight, iu.edge_weight]).to(device=device, dtype=dtype)
        if self.rescale:  # deg / sampled in-edges of each edge's target node
            deg = torch.cat([batch["user"].deg, batch["item"].deg]).to(device)
            sampled = torch.bincount(edge_index[1], minlength=num_nodes)
            target = edge_index[1]
            edge_weight = edge_weight * (deg[target].to(dtype) / sampled[target].to(dtype))
        return edge_index, edge_weight


def minibatch_loss(emb: Tensor, emb0: Tensor, batch, num_negatives: int, l2_lambda: float,
                   hard_negatives: int | None = None) -> Tensor:
    """The series' BPR loss (``mean softplus(ŷ_uj - ŷ_ui) ≥ 0``) + λ·L2 of the layer-0 rows of
    the batch's triples, on :class:`MiniBatchLightGCN`'s local embeddings: exactly
    :func:`~lightgcn_helpers.loss.bpr_batch_loss` (with ``hard_negatives``, each pair trains
    against its highest-scored negatives, as in :class:`~lightgcn_helpers.train.TrainConfig`)."""
    users, pos, neg = triples_of_batch(batch, num_negatives)
    users, pos, neg = users.to(emb.device), pos.to(emb.device), neg.to(emb.device)
    row = torch.arange(users.numel(), device=emb.device)  # each pair its own negatives
    return bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, l2_lambda,
                                     hardest=hard_negatives)


# --------------------------------------------------------------------------- distributed


def init_distributed(device: torch.device | str | None = None,
                     timeout_s: float = 300.0) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``/``PORT`` in the environment), once; return ``(rank, world_size)``.
    Without ``torchrun`` (no ``WORLD_SIZE``) it does nothing and returns ``(0, 1)``. Backend:
    ``nccl`` for a CUDA ``device`` (each process on ``cuda:<LOCAL_RANK>``), else ``gloo``.
    ``timeout_s`` bounds every collective, so a crashed peer ends the run instead of hanging it."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    device = torch.device(device) if device is not None else torch.device("cpu")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of process ``rank``'s share of ``n`` global items: contiguous, sizes
    differing by at most one (``torch.tensor_split``'s rule)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


# --------------------------------------------------------------------------- training


@dataclass
class MiniBatchConfig(TrainConfig):
    """Hyper-parameters of :func:`train_minibatch`: those of
    :class:`~lightgcn_helpers.train.TrainConfig` (other defaults) and the sampling ones.
    Negatives are drawn per (user, liked item) pair, items never liked in training."""

    epochs: int = 20
    batch_size: int = 2048  # *global* triples per step, over all processes
    lr: float = 0.01
    l2_lambda: float = 1e-4
    num_negatives: int = 4  # negatives per (user, liked item) pair
    hard_negatives: int | None = None
    lr_decay: float = 1.0
    eval_every: int = 1
    patience: int = 5
    shared_negatives: bool = False  # mini-batches draw negatives per pair
    num_neighbors: int | tuple[int, ...] = 10  # fan-out per layer (-1: all); an int: every layer
    time_budget: float | None = None  # seconds of training (validation not counted); None: none
    rescale: bool = True  # sampled sums scaled by deg / sampled (unbiased); see MiniBatchLightGCN
    replace: bool = True  # neighbours drawn with replacement (uniform); see SubgraphSampler

    def __post_init__(self):
        super().__post_init__()
        if self.shared_negatives or self.synthetic_negatives is not None:
            raise ValueError("mini-batch training draws negatives per pair and does not synthesise "
                             "them: keep shared_negatives=False and synthetic_negatives=None")
        if not isinstance(self.num_neighbors, int):
            self.num_neighbors = tuple(int(f) for f in self.num_neighbors)


@dataclass
class MiniBatchResult(TrainResult):
    """History of :func:`train_minibatch` (see :class:`~lightgcn_helpers.train.TrainResult`):
    losses are the *global* batch losses (the same numbers one process would print), whatever
    the number of processes; ``seconds`` counts training and validation, as for full-graph
    training."""

    world_size: int = 1
    step_loss: list[float] = field(default_factory=list)  # per step, global batch
    steps: int = 0
    stopped_by_budget: bool = False
    sampled_nodes: float = 0.0  # mean nodes per sampled subgraph (this process)
    sampled_edges: float = 0.0  # mean (directed) edges per sampled subgraph (this process)


def _all_reduce(t: Tensor, device: torch.device, op=None) -> Tensor:
    """All-reduce (sum by default) of a small CPU tensor when several processes run (through
    ``device`` when the backend is NCCL, which reduces only CUDA tensors); else ``t`` itself."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return t
    via = t.to(device) if dist.get_backend() == "nccl" else t
    dist.all_reduce(via, op=op if op is not None else dist.ReduceOp.SUM)
    return via.cpu()


class _Epoch:
    """One epoch of :func:`train_minibatch`, for :func:`~lightgcn_helpers.train.fit`: the
    epoch's global batches, this process's shard of each, one sampled subgraph per step."""

    def __init__(self, module, model, cfg: MiniBatchConfig, sampler: SubgraphSampler,
                 triples: BPRSampler, result: MiniBatchResult, device: torch.device):
        self.module, self.model, self.cfg, self.sampler = module, model, cfg, sampler
        self.triples, self.result, self.device = triples, result, device
        self.rank, self.world = _world()
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=cfg.lr_decay)
        self.subgraphs, self.nodes, self.edges = 0, 0, 0

    def _shards(self) -> tuple[list, list]:
        """This process's shard of each global batch, and (local, global) sizes."""
        parts, sizes = [], []
        for users, pos, neg in self.triples.epoch(self.cfg.batch_size, self.cfg.num_negatives):
            size = users.numel()
            if size < self.world:
                continue
            first, last = shard(size, self.rank, self.world)
            parts.append((users[first:last], pos[first:last], neg.view(size, -1)[first:last]))
            sizes.append((last - first, size))
        if not parts:
            raise ValueError(f"{self.triples.edges.shape[1]} training interaction(s) cannot be "
                             f"shared by {self.world} processes")
        return parts, sizes

    def _step(self, batch, local: int, size: int) -> Tensor:
        """One optimisation step on a sampled subgraph; the scaled loss times the global size."""
        self.subgraphs += 1
        self.nodes += batch["user"].num_nodes + batch["item"].num_nodes
        self.edges += batch[LIKES].edge_index.shape[1] + batch[REV_LIKES].edge_index.shape[1]
        emb, emb0 = self.module(batch)
        cfg = self.cfg
        loss = minibatch_loss(emb, emb0, batch, cfg.num_negatives, cfg.l2_lambda,
                              cfg.hard_negatives)
        # DDP averages gradients over processes: scaled so that the average is the global mean
        scaled = loss * (local * self.world / size)
        self.opt.zero_grad()
        scaled.backward()
        self.opt.step()
        return scaled.detach() * size

    def __call__(self, tick, training_seconds) -> tuple[float | None, bool]:
        parts, sizes = self._shards()
        # one loader per epoch over all of its pairs; loader(positions of a batch) samples it
        loader, spans = self.sampler.loader(parts)
        step_losses, stop = [], False
        for (first, last), (local, size) in zip(spans, sizes):
            step_losses.append(self._step(loader(torch.arange(first, last)), local, size))
            self.result.steps += 1
            tick()
            if self.cfg.time_budget is not None:
                over = torch.tensor([float(training_seconds() >= self.cfg.time_budget)])
                if _all_reduce(over, self.device, dist.ReduceOp.MAX).item() > 0:
                    stop = self.result.stopped_by_budget = True
                    break
        self.sched.step()
        # global loss of each step: mean over processes of the scaled losses
        losses = torch.stack(step_losses).float().cpu() if step_losses else torch.zeros(0)
        sums = _all_reduce(losses, self.device) / self.world
        counts = torch.tensor([size for _, size in sizes[:len(step_losses)]], dtype=torch.float32)
        if not step_losses:
            return None, stop
        self.result.step_loss.extend((sums / counts).tolist())
        return float(sums.sum() / counts.sum()), stop


def train_minibatch(model: LightGCN, train_edges: Tensor, val_edges: Tensor | None = None,
                    config: MiniBatchConfig | None = None, progress: bool | None = None,
                    callback: Callable[[int, MiniBatchResult], bool | None] | None = None,
                    eval_adj=None) -> MiniBatchResult:
    """Train ``model`` (the series' :class:`~lightgcn_helpers.model.LightGCN`, on its device)
    in place with mini-batches on sampled neighbourhoods; return a :class:`MiniBatchResult`.
    Derived in notebook 08, §5.

    Each epoch walks every training interaction once in a random order (global batches of
    ``config.batch_size``, negatives from :class:`~lightgcn_helpers.sampling.BPRSampler`);
    each step samples the batch's L-hop subgraph (``config.num_neighbors``), propagates it with
    :class:`MiniBatchLightGCN` and minimises :func:`minibatch_loss` with Adam. Everything else —
    validation on the **full** graph every ``eval_every`` epochs (over ``eval_adj``, by default
    the normalized training adjacency, built once), early stopping, the best weights restored,
    ``callback``, timing, the progress bar — is :func:`lightgcn_helpers.train.fit`, the loop of
    full-graph training. ``config.time_budget`` stops training after the step at which the
    training time (without validation and callback) reaches it.

    Under ``torchrun`` (after :func:`init_distributed`) each process trains on its shard of
    every global batch, DDP averaging the gradients; rank 0 validates and shares the result,
    and stopping decisions (budget, callback, patience) are taken together. A final global
    batch with fewer triples than processes is skipped (at most ``world_size - 1`` triples).
    """
    cfg = config or MiniBatchConfig()
    _require_sampling()
    rank, world = _world()
    device = model.embedding.weight.device
    train_cpu = train_edges.detach().cpu().long()
    sampler = SubgraphSampler(train_cpu, model.num_users, model.num_items,
                              _fanouts(cfg.num_neighbors, model.num_layers), model.num_layers,
                              dtype=model.embedding.weight.dtype, replace=cfg.replace)
    # every process draws the same global batches: same seed, same sequence of draws (on the CPU)
    triples = BPRSampler(train_cpu, model.num_users, model.num_items, seed=cfg.seed)
    module = net = MiniBatchLightGCN(model, rescale=cfg.rescale)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                         else None)
    result = MiniBatchResult(cfg, world_size=world)
    epoch = _Epoch(module, model, cfg, sampler, triples, result, device)
    validate = None if val_edges is None else _validation(model, train_cpu, val_edges, cfg,
                                                          eval_adj, rank, world, device)

    def agree(flag: bool) -> bool:  # any process stopping stops all
        return _all_reduce(torch.tensor([float(flag)]), device, dist.ReduceOp.MAX).item() > 0

    fit(model, cfg, result, epoch, validate, progress if rank == 0 else False, callback,
        triples.batches_per_epoch(cfg.batch_size), agree)
    result.sampled_nodes = epoch.nodes / max(epoch.subgraphs, 1)
    result.sampled_edges = epoch.edges / max(epoch.subgraphs, 1)
    return result


def _validation(model, train_cpu: Tensor, val_edges: Tensor, cfg: MiniBatchConfig, eval_adj,
                rank: int, world: int, device: torch.device):
    """``validate()`` for :func:`~lightgcn_helpers.train.fit`: validation Recall@k on the full
    graph, computed by rank 0 and shared, so that every process decides the same."""
    graph = {"adj": eval_adj}

    def validate() -> float:
        metric = torch.zeros(1)
        if rank == 0:
            if graph["adj"] is None:
                graph["adj"] = normalized_adjacency(train_cpu, model.num_users,
                                                    model.num_items).to(device)
            metric[0] = evaluate_model(model, graph["adj"], val_edges.to(device),
                                       [train_cpu.to(device)], cfg.k)[f"recall@{cfg.k}"]
        if world > 1:  # everyone takes rank 0's answer (the other processes contribute 0)
            metric = _all_reduce(metric, device)
        return float(metric[0])

    return validate
