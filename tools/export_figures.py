#!/usr/bin/env python3
"""Copy figures the docs show out of the stored notebook outputs (never drawn separately).

    python tools/export_figures.py           # write every figure of FIGURES
    python tools/export_figures.py --check   # exit 1 when a file differs from its notebook's output

Each entry names the notebook and a line of the code cell that draws the figure; the figure is
that cell's stored PNG output. ``tests/test_readme.py`` runs the check.
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {  # file -> (notebook, a line of the cell that draws it)
    "docs/images/gowalla-ladder.png": ("notebooks/08_gowalla_and_scale.ipynb",
                                        "figures.plot_ladder("),
}


def stored_png(notebook: str, marker: str) -> bytes:
    """The PNG output of the one code cell of ``notebook`` whose source contains ``marker``."""
    cells = json.loads((ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    hits = [c for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"])]
    if len(hits) != 1:
        raise SystemExit(f"{notebook}: {len(hits)} code cells contain {marker!r}, expected 1")
    for out in hits[0].get("outputs", []):
        data = out.get("data", {}).get("image/png")
        if data:
            return base64.b64decode("".join(data) if isinstance(data, list) else data)
    raise SystemExit(f"{notebook}: the cell with {marker!r} has no stored PNG (run the notebook)")


def main(argv: list[str]) -> int:
    stale = []
    for name, (notebook, marker) in FIGURES.items():
        png, path = stored_png(notebook, marker), ROOT / name
        if "--check" in argv:
            if not path.is_file() or path.read_bytes() != png:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
            print(f"wrote {name} from {notebook}")
    for name in stale:
        print(f"{name} differs from its notebook's output: run python tools/export_figures.py",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
