"""Smoke test of benchmarks/scaling.py at --tiny size: it runs, prints the table and the slopes,
and writes its JSON and plot; plus checks of its synthetic graphs and its tensor tally.
No timing is asserted."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import scaling  # noqa: E402  (benchmarks/scaling.py)


def test_scaling_runs_at_tiny_size(tmp_path):
    env = {**os.environ, "CI": "true"}  # quiet progress bars
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--tiny",
                           "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| Graph | Training interactions |" in out
    assert "log-log slopes vs training interactions, synthetic power-law graphs" in out
    for name in ("scaling.json", "scaling.md", "scaling.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    res = json.loads((tmp_path / "scaling.json").read_text())
    assert res["tiny"] is True and res["command"].startswith("python benchmarks/scaling.py")
    graphs = res["graphs"]
    assert len(graphs) >= 3 and not [g for g in graphs if "failed" in g or g.get("skipped")]
    for g in graphs:
        assert g["spec"]["name"] in out
        assert g["train_interactions"] == g["spec"]["train"]
        assert g["epoch_seconds"] > 0 and g["eval_seconds"] > 0 and g["peak_mb"] > 0
        assert g["tensor_mb"]["train_total"] > g["tensor_mb"]["resident"] > 0
        assert g["omp_wait_policy"]  # recorded (PASSIVE unless set otherwise)
    for key in ("epoch_seconds", "step_seconds", "eval_seconds", "peak_mb"):
        assert math.isfinite(res["fits"]["synthetic"][key]["slope"]), key
    assert res["gpu_estimate"]["tensor_bytes_per_interaction"] > 0
    largest = max(g["train_interactions"] for g in graphs)
    assert res["largest_trained"]["train_interactions"] == largest


def test_synthetic_graph_is_a_clean_power_law_split():
    train, test, users, items = scaling.synthetic_interactions(200_000, seed=3)
    assert train.shape == (2, 200_000) and train.dtype == torch.long
    # ids compact, every node has a training interaction, test pairs only between known nodes
    assert int(train[0].max()) == users - 1 and int(train[1].max()) == items - 1
    assert torch.bincount(train[0], minlength=users).min() > 0
    assert torch.bincount(train[1], minlength=items).min() > 0
    assert int(test[0].max()) < users and int(test[1].max()) < items
    # one edge per pair, no pair both in train and test
    keys = torch.cat([train[0] * items + train[1], test[0] * items + test[1]])
    assert keys.unique().numel() == keys.numel()
    # Gowalla-like mean degree and a heavy tail
    assert 0.15 < test.shape[1] / (train.shape[1] + test.shape[1]) < 0.25
    deg = torch.bincount(train[1], minlength=items).float()
    assert deg.max() > 8 * deg.median()
    again = scaling.synthetic_interactions(200_000, seed=3)[0]
    assert torch.equal(train, again)  # seeded


def test_tensor_tally_counts_new_storages_until_freed():
    with scaling.TensorBytes() as tally:
        a = torch.ones(1000)  # 4,000 bytes
        b = a * 2  # 4,000 more
        del b
        c = a.view(10, 100) + 1  # b was freed: 8,000 live again, never 12,000
        del a, c
    assert tally.peak == 8000
