"""The mini-batch trainer under DistributedDataParallel: 2 CPU processes (gloo, launched with
torchrun) follow the same trajectory as 1 process with the same global batch.

Why they can agree: every process draws the same global batches (same seed) and trains on
its shard; DDP averages the gradients and each process scales its loss by
world_size * local / global, so the averaged gradient is the global batch's. With every
neighbour sampled (num_neighbors = -1) each shard's seeds get exactly their full-graph
embeddings. What remains is float summation order (other subgraphs, other reduction order),
~1e-7 relative per step, hence the tolerances below.

Observed (torch 2.13 CPU, 2 cores): step losses within 2.2e-7 relative, final E⁰ within
5.2e-6 absolute (Adam amplifies round-off of small gradients), Recall@20 and NDCG@20 equal."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightgcn_helpers import minibatch as mb

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "train_minibatch.py"
# Stated tolerances for 2 processes vs 1 (float32, 3 epochs x 7 steps of the tiny graph, lr 0.05).
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 5e-5  # Adam turns gradient round-off into step-size differences
METRIC_ATOL = 1e-6  # ranking metrics: equal unless a tie flips
ARGS = ["--tiny", "--epochs", "3", "--batch-size", "128", "--num-neighbors", "-1"]

pytestmark = [
    pytest.mark.skipif(not mb.sampling_available(), reason=mb.SKIP_MESSAGE),
    pytest.mark.skipif(not torch.distributed.is_available()
                       or not torch.distributed.is_gloo_available(),
                       reason="this PyTorch build has no torch.distributed gloo backend"),
]


def outputs(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return ["--out", str(folder / "result.json"), "--save-weights", str(folder / "e0.pt")]


def read(folder: Path):
    return json.loads((folder / "result.json").read_text()), torch.load(folder / "e0.pt")


def one_process(folder: Path):
    """The 1-process reference, in this process (saves a Python start-up): the script's main()."""
    spec = importlib.util.spec_from_file_location("train_minibatch", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert "WORLD_SIZE" not in os.environ
    assert script.main(ARGS + outputs(folder)) == 0
    return read(folder)


def two_processes(folder: Path, timeout=240):
    """torchrun, 2 CPU processes; --standalone rendezvous on a free local port, and torchrun
    ends both workers if one fails; the timeout ends a hang."""
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    # never inherit a group
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(SCRIPT)]
    proc = subprocess.run(cmd + ARGS + outputs(folder), cwd=ROOT, env=env, capture_output=True,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return read(folder)


def test_two_processes_match_one_process(tmp_path):
    one, w1 = one_process(tmp_path / "one")
    two, w2 = two_processes(tmp_path / "two")
    assert one["world_size"] == 1 and two["world_size"] == 2 and two["backend"] == "gloo"
    r1, r2 = one["result"], two["result"]
    steps = 3 * math.ceil(one["graph"]["train"] / 128)
    assert r1["steps"] == r2["steps"] == steps and r1["epochs"] == r2["epochs"] == [1, 2, 3]
    # the loss trajectory, step by step and per epoch
    torch.testing.assert_close(torch.tensor(r2["step_loss"]), torch.tensor(r1["step_loss"]),
                               rtol=LOSS_RTOL, atol=0)
    torch.testing.assert_close(torch.tensor(r2["loss"]), torch.tensor(r1["loss"]), rtol=LOSS_RTOL,
                               atol=0)
    assert r1["loss"][-1] < 0.8 * r1["loss"][0]  # it trained
    # the final weights and the final test metrics
    torch.testing.assert_close(w2, w1, rtol=0, atol=WEIGHT_ATOL)
    for key in ("recall@20", "ndcg@20"):
        assert abs(two["test"][key] - one["test"][key]) <= METRIC_ATOL, key
