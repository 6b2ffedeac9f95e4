"""Mini-batch (sampled neighbourhoods) versus full-graph LightGCN training at equal wall-clock
budget.

    python benchmarks/minibatch_vs_fullgraph.py --budget 600            # Gowalla, CPU, 10 min each
    python benchmarks/minibatch_vs_fullgraph.py --budget 600 --device cuda
    python benchmarks/minibatch_vs_fullgraph.py --tiny --budget 1       # synthetic, seconds

Both methods start from the same initial weights (same seed) on the same training graph
(Gowalla: the paper's split, ``load_dataset("gowalla").graph()``) and train for
``--budget`` seconds of *training* time each, one after the other in this process:

* **full graph**: :func:`lightgcn_helpers.train.train_bpr` — every step propagates over the
  whole training graph (sparse CSR ``Ã``). Its configuration is ``FULL_GRAPH`` below (the
  series' Gowalla recipe of ``benchmarks/reproduce_paper.py`` when this was written). It
  does not start an epoch that would not end within the budget, judged by its mean epoch
  time so far (its first epoch always runs; a slower epoch can overrun by a little).
* **mini-batch**: :func:`lightgcn_helpers.minibatch.train_minibatch` — every step samples
  the batch's K-hop neighbourhood with PyG's LinkNeighborLoader and propagates it with
  ``LGConv`` (``--num-neighbors`` per layer). It stops after the step that reaches the budget.

Then each is evaluated once on the test split (Recall/NDCG@20, all items ranked over the
full graph, training items masked; evaluation time is not part of the budget, and the test
split decides nothing). ``--trajectory`` also evaluates after every epoch of either method
(reporting only, not counted in the budget; a mini-batch epoch is many steps, so it may give
a single point). Writes ``results.json`` (after each method) and ``table.md`` to ``--out``
(default ``benchmarks/results/minibatch_vs_fullgraph/``) and prints the table. The machine's
load average is recorded at the start and the end: timings on a busy machine are not comparable.
Without torch-sparse (or pyg-lib) it prints one skip line and exits 0.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402

from lightgcn_helpers import minibatch as mb  # noqa: E402
from lightgcn_helpers.env import load_average, machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402
from lightgcn_helpers.train import RECIPES, evaluate_model, train_bpr  # noqa: E402

from train_minibatch import fanouts, tiny_graph  # noqa: E402  (benchmarks/train_minibatch.py)

# The series' full-graph recipe for Gowalla (RECIPES["series-gowalla"], validation-tuned with
# benchmarks/reproduce_paper.py --tune); epochs is only a cap, the budget decides.
FULL_GRAPH = replace(RECIPES["series-gowalla"], epochs=100_000)
# Mini-batch: 4 uniform negatives per pair, a decreasing fan-out, Adam lr 0.02, lambda 1e-4.
# Not tuned (no budget for it on the 2-core machine). Three hops cover Gowalla: one batch of
# 2,048 pairs with fan-out (10, 10, 10) reaches ~69,500 of the 70,839 nodes and ~620,000 edges;
# (10, 5, 2) ~63,000 nodes and ~300,000 edges, at about half the cost per step; 8,192 pairs
# with (10, 5, 2) ~68,000 nodes and ~480,000 edges: 4x the pairs for ~1.5x the cost.
MINIBATCH = mb.MiniBatchConfig(epochs=100_000, batch_size=8192, lr=0.02, l2_lambda=1e-4,
                               num_negatives=4,
                               hard_negatives=None, num_neighbors=(10, 5, 2))
TINY_FULL = replace(FULL_GRAPH, batch_size=64, lr=0.05, num_negatives=8, hard_negatives=2,
                    lr_decay=1.0)
TINY_MINI = replace(MINIBATCH, batch_size=64, lr=0.05, num_neighbors=(5, 5, 5))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=600.0,
                   help="training seconds per method (default 600)")
    p.add_argument("--tiny", action="store_true",
                   help="synthetic graph, seconds; numbers mean nothing")
    p.add_argument("--dataset", default="gowalla")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-neighbors", type=fanouts, default=None,
                   help="mini-batch fan-out per layer, e.g. 10,10,10")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch triples per step")
    p.add_argument("--lr", type=float, default=None, help="mini-batch learning rate")
    p.add_argument("--num-negatives", type=int, default=None, help="mini-batch negatives per pair")
    p.add_argument("--only", choices=["full_graph", "minibatch"], default=None,
                   help="run one method only")
    p.add_argument("--trajectory", action="store_true",
                   help="also evaluate during training (not timed)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=HERE / "results" / "minibatch_vs_fullgraph")
    return p.parse_args(argv)


def load(args):
    if args.tiny:
        return tiny_graph()
    from lightgcn_helpers.datasets import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        return load_dataset(args.dataset).graph()


def run_full_graph(graph, model, adj, cfg, budget, evaluate, trajectory):
    traj = []

    def stop_within_budget(epoch, res):
        if trajectory:
            traj.append({"epoch": epoch, "seconds": res.seconds, **evaluate(model)})
        last = res.seconds / epoch  # mean epoch time so far
        return res.seconds + last > budget  # the next epoch would not end within the budget

    res = train_bpr(model, adj, graph.split.train.to(adj.device), None, cfg, progress=False,
                    callback=stop_within_budget)
    return {"seconds": res.seconds, "epochs": res.epochs[-1], "steps": None, "loss": res.loss,
            "config": asdict(cfg), "trajectory": traj}


def run_minibatch(graph, model, cfg, budget, evaluate, trajectory):
    traj = []

    def record(epoch, res):
        if trajectory:
            traj.append({"epoch": epoch, "steps": res.steps, "seconds": res.seconds,
                         **evaluate(model)})

    cfg = replace(cfg, time_budget=budget)
    res = mb.train_minibatch(model, graph.split.train, None, cfg, progress=False, callback=record)
    return {"seconds": res.seconds, "epochs": res.epochs[-1], "steps": res.steps, "loss": res.loss,
            "config": asdict(cfg), "trajectory": traj, "sampled_nodes": res.sampled_nodes,
            "sampled_edges": res.sampled_edges, "stopped_by_budget": res.stopped_by_budget}


def table(res) -> str:
    g = res["graph"]
    rows = ["| Method | Budget (s) | Training time used (s) | Epochs | Steps | Nodes / edges per "
            "step "
            "| Recall@20 | NDCG@20 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"full_graph": "Full graph (`train_bpr`, CSR Ã)",
             "minibatch": "Mini-batch (LinkNeighborLoader + LGConv, fan-out {fan})"}
    full_size = f"{g['users'] + g['items']:,} / {2 * g['train']:,}"
    for key, run in res["runs"].items():
        fan = run["config"].get("num_neighbors")
        sampled = f"{run.get('sampled_nodes', 0):,.0f} / {run.get('sampled_edges', 0):,.0f}"
        size = full_size if key == "full_graph" else sampled
        steps = "—" if run["steps"] is None else f"{run['steps']:,}"
        rows.append(f"| {names[key].format(fan=fan)} | {res['budget']:g} | {run['seconds']:.1f} | "
                    f"{run['epochs']} "
                    f"| {steps} | {size} | {run['test']['recall@20']:.4f} | "
                    f"{run['test']['ndcg@20']:.4f} |")
    load = res["load_average_start"], res["load_average_end"]
    rows.append("")
    rows.append(f"{res['dataset']}: {g['users']:,} users, {g['items']:,} items, {g['train']:,} "
                "training / "
                f"{g['test']:,} test interactions; device {res['device']}, "
                f"{res['machine']['cpu_count']} CPUs, "
                f"{res['machine']['torch_threads']} torch threads; 1-min load average "
                f"{load[0]:.2f} at the start, "
                f"{load[1]:.2f} at the end.")
    return "\n".join(rows)


def results(args, graph, device, load_start, runs, machine) -> dict:
    return {"command": " ".join(["python", "benchmarks/" + Path(sys.argv[0]).name] + sys.argv[1:]),
            "tiny": args.tiny, "dataset": graph.name, "budget": args.budget, "device": str(device),
            "graph": {"users": graph.num_users, "items": graph.num_items,
                      "train": graph.split.train.shape[1],
                      "test": graph.split.test.shape[1]},
            "load_average_start": load_start,
            "load_average_end": load_average(float("nan")),
            "machine": machine, "runs": runs}


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not mb.sampling_available():
        print(mb.SKIP_MESSAGE)
        (args.out / "results.json").write_text(json.dumps({"skipped": mb.SKIP_MESSAGE}, indent=1))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = load_average(float("nan"))
    device = pick_device(args.device)
    machine = machine_info(device)
    graph = load(args)
    full_cfg = TINY_FULL if args.tiny else FULL_GRAPH
    mini_cfg = TINY_MINI if args.tiny else MINIBATCH
    over = {"num_neighbors": args.num_neighbors, "batch_size": args.batch_size, "lr": args.lr,
            "num_negatives": args.num_negatives}
    mini_cfg = replace(mini_cfg, **{k: v for k, v in over.items() if v is not None})
    adj = graph.train_adjacency().to(device)
    test, exclude = graph.split.test.to(device), [graph.split.train.to(device)]
    if graph.split.val.numel():
        exclude.append(graph.split.val.to(device))

    def evaluate(model):
        m = evaluate_model(model, adj, test, exclude, k=20)
        return {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"]}

    def fresh_model():
        seed_everything(args.seed)
        return LightGCN(graph.num_users, graph.num_items, embedding_dim=args.dim,
                        num_layers=args.layers).to(device)

    runs = {}
    for key in ("full_graph", "minibatch"):
        if args.only not in (None, key):
            continue
        model = fresh_model()
        t0 = time.perf_counter()
        if key == "full_graph":
            run = run_full_graph(graph, model, adj, full_cfg, args.budget, evaluate,
                                 args.trajectory)
        else:
            run = run_minibatch(graph, model, mini_cfg, args.budget, evaluate, args.trajectory)
        run["wall_seconds"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        run["test"] = evaluate(model)
        run["eval_seconds"] = time.perf_counter() - t1
        run["load_average_after"] = load_average(float("nan"))
        runs[key] = run
        print(f"{key}: {run['seconds']:.1f} s of training, test Recall@20 "
              f"{run['test']['recall@20']:.4f}, "
              f"NDCG@20 {run['test']['ndcg@20']:.4f} (load average "
              f"{run['load_average_after']:.2f})", flush=True)
        res = results(args, graph, device, load_start, runs, machine)
        # after each method: nothing lost
        (args.out / "results.json").write_text(json.dumps(res, indent=1))
    text = table(res)
    print(text)
    (args.out / "results.json").write_text(json.dumps(res, indent=1))
    (args.out / "table.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
