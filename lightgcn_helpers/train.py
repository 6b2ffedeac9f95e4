"""Mini-batch BPR training with validation, early stopping and best-weight restore.

Each step: propagate E⁰ over the *training* graph only, look up the final
embeddings of a batch of (user, liked movie, sampled negative) triples, minimise
``bpr_loss + λ · l2_regularization(layer-0 embeddings)`` with Adam. Every
``eval_every`` epochs the validation Recall@K is computed from the final
propagated embeddings, masking training movies; the best weights are kept.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .env import quiet_progress
from .loss import bpr_loss, l2_regularization
from .metrics import evaluate_embeddings
from .model import LightGCN
from .sampling import BPRSampler

__all__ = ["TrainConfig", "TrainResult", "train_bpr", "evaluate_model"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_bpr` (tuned on the validation split only)."""

    epochs: int = 300
    batch_size: int = 4096
    lr: float = 5e-3
    weight_decay: float = 1e-4  # λ of the layer-0 L2 term
    num_negatives: int = 1  # negatives per positive; the BPR loss averages over all pairs
    eval_every: int = 5
    patience: int = 5  # evaluations without improvement before stopping
    k: int = 20
    seed: int = 0


@dataclass
class TrainResult:
    """History of a run: per-epoch loss and per-evaluation validation metric."""

    config: TrainConfig
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_epochs: list[int] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = float("-inf")
    seconds: float = 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["config"] = asdict(self.config)
        return d


def train_bpr(model: LightGCN, adj, train_edges: Tensor, val_edges: Tensor | None = None,
              config: TrainConfig | None = None, progress: bool | None = None) -> TrainResult:
    """Train ``model`` in place; return the :class:`TrainResult` (the model ends with the best weights).

    ``adj``: the training graph (normalized sparse ``Ã``, ``SparseTensor`` or ``edge_index``)
    on the model's device. ``train_edges`` / ``val_edges``: interactions ``(2, E)``
    (movie indices not offset). Without ``val_edges`` it trains ``config.epochs`` epochs.
    """
    cfg = config or TrainConfig()
    device = model.embedding.weight.device
    train_edges = train_edges.to(device)
    sampler = BPRSampler(train_edges, model.num_users, model.num_items, seed=cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    result = TrainResult(cfg)
    best_state, bad_evals = None, 0
    show = (not quiet_progress()) if progress is None else progress
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), desc="epochs", disable=not show, leave=False)
    for epoch in bar:
        model.train()
        total, n = 0.0, 0
        for users, pos, neg in sampler.epoch(cfg.batch_size, cfg.num_negatives):
            neg = neg.view(users.numel(), -1)  # (B, n)
            emb = model.propagate_embeddings(adj)
            u, i, j = emb[users], emb[model.num_users + pos], emb[model.num_users + neg]
            pos_scores = (u * i).sum(-1, keepdim=True).expand(-1, neg.shape[1])
            neg_scores = (u.unsqueeze(1) * j).sum(-1)
            e0 = model.embedding.weight
            # λ·½(‖e_u⁰‖² + ‖e_i⁰‖² + mean over the n negatives of ‖e_j⁰‖²) / B
            reg = l2_regularization(e0[users], e0[model.num_users + pos]) + l2_regularization(
                e0[model.num_users + neg.flatten()])
            loss = bpr_loss(pos_scores, neg_scores) + cfg.weight_decay * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * users.numel()
            n += users.numel()
        result.epochs.append(epoch)
        result.loss.append(total / n)
        if val_edges is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            metric = evaluate_model(model, adj, val_edges, [train_edges], cfg.k)[f"recall@{cfg.k}"]
            result.eval_epochs.append(epoch)
            result.val_metric.append(metric)
            bar.set_postfix(loss=f"{total / n:.4f}", val=f"{metric:.4f}")
            if metric > result.best_val:
                result.best_val, result.best_epoch, bad_evals = metric, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_evals += 1
                if bad_evals >= cfg.patience:
                    break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = result.epochs[-1] if result.epochs else 0
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def evaluate_model(model: LightGCN, adj, eval_edges: Tensor, exclude: list[Tensor], k=20, ks=None) -> dict:
    """Metrics of ``model`` from its final embeddings propagated over ``adj`` (the training graph)."""
    was_training = model.training
    model.eval()
    users, items = model(adj)
    model.train(was_training)
    return evaluate_embeddings(users, items, eval_edges, exclude, ks or (k,))
