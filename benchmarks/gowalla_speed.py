"""How fast is one Gowalla epoch, where does its time go, and how does it compare with PyG's
example?

    python benchmarks/gowalla_speed.py                  # CPU, ~5 minutes
    python benchmarks/gowalla_speed.py --device cuda
    python benchmarks/gowalla_speed.py --tiny           # synthetic graph, seconds (smoke test)

Every stage runs in a fresh child process (so its peak memory is its own) on the LightGCN
paper's Gowalla split (810,128 training interactions, 29,858 users, 40,981 items; 3 layers,
64 dimensions) and reports wall time, CPU time (user and kernel), minor page faults and the
peak resident memory of the process (data included):

* ``steps``: one training step at the series' settings taken apart — sampling, propagation
  (forward), the loss (scoring the candidate negatives, choosing the hardest, BPR + L2),
  backward pass (including the propagation's), optimiser — mean over ``--steps`` steps;
* ``epoch``: one whole epoch of ``train_bpr`` at the series' settings
  (``lightgcn_helpers.train.RECIPES['series-gowalla']``), and the same again with glibc told to
  keep freed
  memory for reuse (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``), which shows how much
  of the epoch is the kernel mapping and zeroing fresh pages for large temporaries;
* ``pyg``: PyG's own LightGCN example loop (``torch_geometric.nn.models.LightGCN`` over the
  ``edge_index``, ``recommendation_loss``, one uniform negative item per pair, batch 2,048,
  Adam), timed over ``--pyg-batches`` batches and extrapolated to an epoch (its time per
  batch is flat);
* ``eval``: full-ranking Recall/NDCG@20 of all 29,858 test users, training items masked.

Ratios are formed within one run. Timings are never asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
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

from lightgcn_helpers.env import load_average, machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning, build_graph  # noqa: E402

from measured import fingerprint, marker  # noqa: E402  (benchmarks/measured.py)

GLIBC_KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 36),
                    "MALLOC_TOP_PAD_": str(1 << 29)}


def load_graph(tiny: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        if tiny:
            g = torch.Generator().manual_seed(0)
            users = torch.randint(0, 300, (6000,), generator=g)
            items = (torch.rand(6000, generator=g) ** 2 * 500).long()  # popular items first
            import pandas as pd

            table = pd.DataFrame({"user": users.numpy(), "item": items.numpy(),
                                  "split": ["test" if i % 5 == 0 else "train"
                                            for i in range(6000)]})
            return build_graph(table, user_col="user", item_col="item", rating_col=None,
                               split_col="split",
                               val_frac=0.0)
        from lightgcn_helpers.datasets import load_dataset

        return load_dataset("gowalla").graph()


def _usage() -> dict:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"user": r.ru_utime, "sys": r.ru_stime, "minflt": r.ru_minflt}


def _peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KB on Linux


def child(stage: str, args) -> dict:
    from lightgcn_helpers.loss import bpr_shared_negatives_loss
    from lightgcn_helpers.model import LightGCN
    from lightgcn_helpers.sampling import BPRSampler
    from lightgcn_helpers.train import RECIPES, evaluate_model, train_bpr

    device = pick_device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    seed_everything(0)
    graph = load_graph(args.tiny)
    cfg = replace(RECIPES["series-gowalla"], epochs=1)
    train = graph.split.train.to(device)
    adj = graph.train_adjacency("csr").to(device)
    model = LightGCN(graph.num_users, graph.num_items, 64, 3).to(device)
    rss_data = _peak_mb()
    out = {"stage": stage, "config": asdict(cfg), "train_interactions": train.shape[1]}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    u0, t0 = _usage(), time.perf_counter()
    if stage == "epoch":
        train_bpr(model, adj, train, None, cfg, progress=False)
        sync()
    elif stage == "steps":
        sampler = BPRSampler(train, graph.num_users, graph.num_items, seed=0)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        batches = sampler.epoch_shared(cfg.batch_size, cfg.num_negatives)
        parts = dict.fromkeys(["sampling", "propagation",
                               "loss (negatives: score, pick hardest; BPR + L2)",
                               "backward", "optimiser"], 0.0)
        off = graph.num_users
        n = 0
        for _ in range(args.steps + 1):
            marks = [time.perf_counter()]
            try:
                users, pos, row, neg = next(batches)
            except StopIteration:
                batches = sampler.epoch_shared(cfg.batch_size, cfg.num_negatives)
                users, pos, row, neg = next(batches)
            sync()
            marks.append(time.perf_counter())
            emb = model.propagate_embeddings(adj)
            sync()
            marks.append(time.perf_counter())
            loss = bpr_shared_negatives_loss(emb, model.embedding.weight, users, pos + off, row,
                                             neg + off,
                                             cfg.l2_lambda, hardest=cfg.hard_negatives)
            sync()
            marks.append(time.perf_counter())
            opt.zero_grad()
            loss.backward()
            sync()
            marks.append(time.perf_counter())
            opt.step()
            sync()
            marks.append(time.perf_counter())
            if n or args.steps == 0:  # the first step warms up
                for key, a, b in zip(parts, marks, marks[1:]):
                    parts[key] += b - a
            n += 1
            if n == 1:
                u0, t0 = _usage(), time.perf_counter()
        out["per_step"] = {k: v / max(n - 1, 1) for k, v in parts.items()}
        out["steps_timed"] = n - 1
        out["steps_per_epoch"] = sampler.batches_per_epoch(cfg.batch_size)
    elif stage == "pyg":
        from torch_geometric.nn.models import LightGCN as PygLightGCN

        pyg = PygLightGCN(graph.num_nodes, 64, 3).to(device)
        opt = torch.optim.Adam(pyg.parameters(), lr=1e-3)
        edge_index = graph.train_edge_index().to(device)
        label = torch.stack([train[0], train[1] + graph.num_users])
        perm = torch.randperm(label.shape[1], device=device)
        times = []
        for b in range(args.pyg_batches + 1):
            t = time.perf_counter()
            idx = perm[b * 2048:(b + 1) * 2048]
            pos_index = label[:, idx]
            neg_index = torch.stack([pos_index[0],
                                     torch.randint(graph.num_users, graph.num_nodes, (idx.numel(),),
                                                                 device=device)])
            edge_label_index = torch.cat([pos_index, neg_index], dim=1)
            opt.zero_grad()
            pos_rank, neg_rank = pyg(edge_index, edge_label_index).chunk(2)
            loss = pyg.recommendation_loss(pos_rank, neg_rank, node_id=edge_label_index.unique(),
                                           lambda_reg=1e-4)
            loss.backward()
            opt.step()
            sync()
            times.append(time.perf_counter() - t)
            if b == 0:
                u0, t0 = _usage(), time.perf_counter()
        per_batch = sum(times[1:]) / max(len(times) - 1, 1)
        out["per_batch"] = per_batch
        out["batches_per_epoch"] = -(-train.shape[1] // 2048)
        out["epoch_extrapolated"] = per_batch * out["batches_per_epoch"]
    elif stage == "eval":
        with torch.no_grad():
            model.embedding.weight.normal_(0, 0.1)
        m = evaluate_model(model, adj, graph.split.test.to(device), [train], ks=(20,))
        sync()
        out["users"] = m["users"]
    else:
        raise SystemExit(f"unknown stage {stage}")
    wall = time.perf_counter() - t0
    u1 = _usage()
    out.update({"wall": wall, "cpu_user": u1["user"] - u0["user"], "cpu_sys": u1["sys"] - u0["sys"],
                "minor_faults": u1["minflt"] - u0["minflt"], "peak_rss_mb": _peak_mb(),
                "rss_after_load_mb": rss_data})
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 1e6
    return out


def run_child(stage: str, args, extra_env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, "--steps", str(args.steps),
           "--pyg-batches", str(args.pyg_batches)] + (["--tiny"] if args.tiny else []) + (
        ["--device", args.device] if args.device else [])
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"stage {stage} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=5, help="timed training steps in the 'steps' stage")
    p.add_argument("--pyg-batches", type=int, default=10,
                   help="timed batches of PyG's example loop")
    p.add_argument("--tiny", action="store_true",
                   help="a small synthetic graph (smoke test; numbers mean nothing)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "gowalla_speed.json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return {}
    res = {"command": "python benchmarks/gowalla_speed.py "
                      + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine_info(), "tiny": args.tiny}
    for stage in ("steps", "epoch", "pyg", "eval"):
        print(f"running {stage} ...", file=sys.stderr, flush=True)
        res[stage] = run_child(stage, args)
    print("running epoch with glibc keeping freed memory ...", file=sys.stderr, flush=True)
    res["epoch_keep_freed"] = run_child("epoch", args, GLIBC_KEEP_FREED)
    res["machine"]["load_at_end"] = load_average()
    ep, pyg, ev = res["epoch"], res["pyg"], res["eval"]
    kf, st = res["epoch_keep_freed"], res["steps"]
    n = ep["train_interactions"]
    ours_us, pyg_us = 1e6 * ep["wall"] / n, 1e6 * pyg["epoch_extrapolated"] / n
    res["summary"] = {"epoch_seconds": ep["wall"], "pyg_epoch_seconds": pyg["epoch_extrapolated"],
                      "speedup_per_interaction": pyg_us / ours_us, "eval_seconds": ev["wall"],
                      "kernel_share_epoch": ep["cpu_sys"] / max(ep["cpu_user"] + ep["cpu_sys"],
                                                                1e-9),
                      "epoch_seconds_keep_freed": kf["wall"]}
    step_total = sum(st["per_step"].values())
    lines = ["| What | Time | Notes |", "|---|---:|---|"]
    for key, v in st["per_step"].items():
        lines.append(f"| step: {key} | {1e3 * v:.0f} ms | {100 * v / step_total:.0f} % of a step |")
    lines += [
        f"| one step, total | {1e3 * step_total:.0f} ms | × {st['steps_per_epoch']} steps per "
        "epoch (batch "
        f"{st['config']['batch_size']:,}) |",
        f"| **epoch, series settings** (`train_bpr`) | **{ep['wall']:.1f} s** | {ours_us:.1f} µs "
        "per training "
        f"interaction; CPU {ep['cpu_user']:.0f} s user + {ep['cpu_sys']:.1f} s kernel "
        f"({100 * res['summary']['kernel_share_epoch']:.0f} %), {ep['minor_faults']:,} page "
        "faults; peak RSS "
        f"{ep['peak_rss_mb']:,.0f} MB |",
        f"| epoch, glibc keeping freed memory | {kf['wall']:.1f} s | kernel {kf['cpu_sys']:.1f} s, "
        f"{kf['minor_faults']:,} page faults |",
        f"| PyG example loop (batch 2,048), epoch extrapolated | {pyg['epoch_extrapolated']:.0f} s "
        "| "
        f"{1e3 * pyg['per_batch']:.0f} ms per batch × {pyg['batches_per_epoch']} batches; "
        f"{pyg_us:.0f} µs per "
        f"interaction → **series {pyg_us / ours_us:.1f}× faster per interaction** |",
        f"| full-ranking evaluation, {ev['users']:,} test users | **{ev['wall']:.1f} s** | peak "
        "RSS "
        f"{ev['peak_rss_mb']:,.0f} MB |",
    ]
    table = "\n".join(lines)
    print(table)
    print(marker("gowalla_speed"))
    print(f"\nmachine: {res['machine']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    res["measured_code"] = fingerprint("gowalla_speed")
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    # the marker travels with the table (tests/test_benchmark_tables.py)
    (args.out.with_suffix(".md")).write_text(f"{table}\n\n{marker('gowalla_speed')}\n")
    return res


if __name__ == "__main__":
    main()
