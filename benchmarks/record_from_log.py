"""Turn the printed log of a ``reproduce_paper.py`` run that was stopped before its last epoch
into a record, marked partial.

    python benchmarks/record_from_log.py LOG --command "..." --reason "..." --out RECORD

``reproduce_paper.py`` writes its record only when training ends; a run stopped earlier (the
machine was needed, the session ended) leaves only its log, one line per evaluation. This reads
those lines (4 decimals, as printed) and the recipe line, and writes a record in the same shape,
with ``"partial"`` saying where and why it stopped. Notebook 08 compares seeds at the last epoch
that every record reached.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lightgcn_helpers.train import RECIPES, TrainConfig  # noqa: E402

LINE = re.compile(r"epoch\s+(\d+)\s+loss ([\d.]+)\s+(\w+) Recall@20 ([\d.]+)\s+NDCG@20 ([\d.]+)"
                  r"\s+train\s+([\d.]+) s\s+eval\s+([\d.]+) s\s+wall\s+([\d.]+) min")
RECIPE = re.compile(r"^(\S+) recipe on (\S+): TrainConfig\((.*)\)$")


def parse_log(text: str) -> dict:
    """The recipe, device, config and trajectory printed by ``reproduce_paper.py``."""
    head = next(RECIPE.match(line) for line in text.splitlines() if RECIPE.match(line))
    recipe, device = head.group(1), head.group(2)
    config = {key: ast.literal_eval(value) for key, value in
              (pair.split("=") for pair in head.group(3).split(", "))}
    trajectory = []
    for m in LINE.finditer(text):
        epoch, loss, split, rec, ndcg, train_s, eval_s, wall_min = m.groups()
        trajectory.append({"epoch": int(epoch), "train_seconds": float(train_s),
                           "eval_seconds": float(eval_s), "wall_seconds": float(wall_min) * 60,
                           "loss": float(loss), "recall@20": float(rec),
                           "ndcg@20": float(ndcg)})
    if not trajectory:
        raise SystemExit("no evaluation lines found: is this a reproduce_paper.py log?")
    return {"recipe": recipe, "device": device, "config": config, "split": split,
            "trajectory": trajectory}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("log", type=Path)
    p.add_argument("--command", required=True, help="the command that produced the log")
    p.add_argument("--reason", required=True, help="why the run stopped early")
    p.add_argument("--machine", default="{}", help="JSON: what is known of the machine")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    run = parse_log(args.log.read_text())
    cfg = run["config"]  # as the run printed it (older runs name some fields differently)
    if TrainConfig.from_dict(cfg) != replace(RECIPES[run["recipe"]], seed=cfg["seed"]):
        raise SystemExit(f"the log's config is not today's RECIPES[{run['recipe']!r}]")
    last = run["trajectory"][-1]
    record = {"partial": {"stopped_after_epoch": last["epoch"], "planned_epochs": cfg["epochs"],
                          "reason": args.reason, "source": "its printed log (4 decimals)"},
              "dataset": "gowalla", "split": run["split"], "recipe": run["recipe"],
              "config": cfg, "command": args.command, "device": run["device"],
              "machine": json.loads(args.machine), "trajectory": run["trajectory"],
              "final": last, "train_seconds": last["train_seconds"],
              "wall_seconds": last["wall_seconds"],
              "seconds_per_epoch": round(last["train_seconds"] / last["epoch"], 2)}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{args.out}: seed {cfg['seed']}, {len(run['trajectory'])} evaluations, stopped after "
          f"epoch {last['epoch']} of {cfg['epochs']}")
    return record


if __name__ == "__main__":
    main()
