"""Mini-batch LightGCN (PyG LinkNeighborLoader + LGConv) on one process or several (torchrun +
DDP).

    # 1 process, synthetic graph; 2 CPU processes (gloo); 1 process on Gowalla
    python benchmarks/train_minibatch.py --tiny
    torchrun --standalone --nproc_per_node=2 benchmarks/train_minibatch.py --tiny
    python benchmarks/train_minibatch.py --dataset gowalla --epochs 5
    # 4 GPUs (NCCL); then on each of 2 machines
    torchrun --standalone --nproc_per_node=4 benchmarks/train_minibatch.py \\
        --dataset gowalla --device cuda
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 --rdzv-id=lightgcn \\
        benchmarks/train_minibatch.py --dataset gowalla --device cuda

(``python -m torch.distributed.run`` is the same as ``torchrun``.) Every process loads the
data and draws the same global batches; each trains on its shard of every batch and DDP
averages the gradients (see :mod:`lightgcn_helpers.minibatch`), so ``--batch-size`` is the
*global* batch: 2 processes with ``--batch-size 512`` follow the same trajectory as 1 process
with ``--batch-size 512``, up to float reduction order (``tests/test_distributed.py``).
The backend follows ``--device``: ``nccl`` for ``cuda`` (process i on ``cuda:<LOCAL_RANK>``),
``gloo`` for ``cpu``.

Training runs a fixed number of epochs (``--epochs``) or until ``--time-budget`` seconds;
then rank 0 evaluates Recall/NDCG@20 on the test split over the **full** graph (all items
ranked, training and validation items masked) and writes ``--out`` (JSON: the command, the
machine, the configuration, per-epoch and per-step global losses, the metrics);
``--save-weights`` also saves the final layer-0 embedding table. Without torch-sparse (or
pyg-lib) it prints one skip line, writes ``{"skipped": ...}`` and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from lightgcn_helpers import minibatch as mb  # noqa: E402
from lightgcn_helpers.env import machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning, InteractionGraph, build_graph  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402


def tiny_graph(num_users: int = 120, num_items: int = 80, per_user: int = 10, communities: int = 3,
               seed: int = 0) -> InteractionGraph:
    """A small synthetic graph with a planted structure (each user likes ``per_user`` items,
    ~80 % of them in its own community of items), split 70/10/20 at random. Seconds to train."""
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    users = torch.arange(num_users)
    item_community = (torch.arange(num_items) * communities) // num_items
    own = item_community.unsqueeze(0) == (users % communities).unsqueeze(1)  # (users, items)
    # mostly own community, some others
    scores = torch.rand(num_users, num_items, generator=g) + 0.8 * own
    items = scores.topk(per_user, dim=1).indices
    frame = pd.DataFrame({"user": users.repeat_interleave(per_user).numpy(),
                          "item": items.reshape(-1).numpy()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        return build_graph(frame, user_col="user", item_col="item", rating_col=None, val_frac=0.1,
                           test_frac=0.2,
                           seed=1, name="tiny")


def load_graph(args) -> InteractionGraph:
    if args.tiny:
        return tiny_graph()
    from lightgcn_helpers.datasets import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        kwargs = {} if args.val_frac is None else {"val_frac": args.val_frac}
        return load_dataset(args.dataset).graph(**kwargs)


def fanouts(text: str) -> int | tuple[int, ...]:
    parts = [int(p) for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else tuple(parts)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true",
                   help="small synthetic graph (seconds; what CI runs)")
    p.add_argument("--dataset", default="gowalla", help="registry dataset (default gowalla)")
    p.add_argument("--val-frac", type=float, default=None,
                   help="validation carved from training (default: dataset's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--epochs", type=int, default=None, help="default 5 (--tiny: 3)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="stop after this many seconds of training")
    p.add_argument("--batch-size", type=int, default=None,
                   help="GLOBAL triples per step (default 2048, --tiny 128)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--l2-lambda", type=float, default=None,
                   help="λ of the layer-0 L2 term of the BPR objective")
    p.add_argument("--num-negatives", type=int, default=None)
    p.add_argument("--hard-negatives", type=int, default=None)
    p.add_argument("--num-neighbors", type=fanouts, default=None,
                   help="fan-out per layer, e.g. 10,10,10, or one number for all; -1 = all "
                        "neighbours")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--dim", type=int, default=None, help="embedding size (default 64, --tiny 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--out", type=Path, default=None, help="JSON results (rank 0)")
    p.add_argument("--save-weights", type=Path, default=None,
                   help="save the final E⁰ table here (rank 0)")
    p.add_argument("--progress", action="store_true", help="show a progress bar (rank 0)")
    return p.parse_args(argv)


def config_from(args) -> mb.MiniBatchConfig:
    base = mb.MiniBatchConfig(epochs=3, batch_size=128, lr=0.05,
                              num_neighbors=-1) if args.tiny else \
        mb.MiniBatchConfig(epochs=5)
    over = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "l2_lambda": args.l2_lambda,
            "num_negatives": args.num_negatives, "hard_negatives": args.hard_negatives,
            "num_neighbors": args.num_neighbors, "time_budget": args.time_budget, "seed": args.seed}
    kwargs = {**base.__dict__, **{k: v for k, v in over.items() if v is not None}}
    return mb.MiniBatchConfig(**kwargs)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not mb.sampling_available():
        print(mb.SKIP_MESSAGE)
        if args.out is not None and int(os.environ.get("RANK", 0)) == 0:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"skipped": mb.SKIP_MESSAGE}, indent=1))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    machine = machine_info(device)  # load_at_start: read before anything runs
    rank, world = mb.init_distributed(device)
    try:
        cfg = config_from(args)
        graph = load_graph(args)
        dim = args.dim or (16 if args.tiny else 64)
        seed_everything(args.seed)  # the same initial weights in every process
        model = LightGCN(graph.num_users, graph.num_items, embedding_dim=dim,
                         num_layers=args.layers).to(device)
        t0 = time.perf_counter()
        res = mb.train_minibatch(model, graph.split.train, None, cfg,
                                 progress=args.progress and rank == 0)
        wall = time.perf_counter() - t0
        if rank == 0:
            from lightgcn_helpers.train import evaluate_model

            adj = graph.train_adjacency().to(device)
            exclude = [graph.split.train.to(device)]
            if graph.split.val.numel():
                exclude.append(graph.split.val.to(device))
            t1 = time.perf_counter()
            metrics = evaluate_model(model, adj, graph.split.test.to(device), exclude, k=20)
            eval_s = time.perf_counter() - t1
            out = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
                   "dataset": graph.name,
                   "graph": {"users": graph.num_users, "items": graph.num_items,
                             "train": graph.split.train.shape[1],
                             "test": graph.split.test.shape[1]},
                   "world_size": world, "backend": dist.get_backend() if world > 1 else None,
                   "device": str(device), "embedding_dim": dim, "layers": args.layers,
                   "result": res.as_dict(), "test": metrics, "wall_seconds": wall,
                   "eval_seconds": eval_s,
                   "machine": machine}
            last = res.loss[-1] if res.loss else float("nan")
            print(f"{graph.name}: {world} process(es) on {device}, {res.steps} steps in "
                  f"{res.seconds:.1f} s "
                  f"(epochs {res.epochs[-1] if res.epochs else 0}, last loss {last:.4f}, "
                  f"~{res.sampled_nodes:,.0f} nodes / {res.sampled_edges:,.0f} edges per sampled "
                  "subgraph); "
                  f"test Recall@20 {metrics['recall@20']:.4f}, NDCG@20 {metrics['ndcg@20']:.4f}")
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(out, indent=1))
            if args.save_weights is not None:
                args.save_weights.parent.mkdir(parents=True, exist_ok=True)
                torch.save(model.embedding.weight.detach().cpu(), args.save_weights)
        if world > 1:
            dist.barrier()
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
