"""Which code a committed benchmark table measured: a fingerprint stored next to the table.

``run_benchmarks.py`` and ``gowalla_speed.py`` print, under their tables, a line such as

    <!-- measured code: run_benchmarks 1a2b3c4d5e6f -->

which travels with the table into benchmarks/README.md (and any page that copies it). The
fingerprint is a sha256 over the source of the files the benchmark times (:data:`MEASURED`),
read as Python code: comments, docstrings and layout do not count, any change to the code does.
``tests/test_benchmark_tables.py`` recomputes it and fails when a committed table is older
than the code it measures (then run the benchmark again and copy its table).
"""
from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PACKAGE = ("_fast", "data", "graph", "loss", "metrics", "model", "sampling", "train")
MEASURED = {
    "run_benchmarks": [f"lightgcn_helpers/{m}.py" for m in _PACKAGE]
    + ["benchmarks/run_benchmarks.py", "benchmarks/original.py"],
    "gowalla_speed": [f"lightgcn_helpers/{m}.py" for m in _PACKAGE]
    + ["benchmarks/gowalla_speed.py"],
}
MARKER = re.compile(r"<!-- measured code: (\w+) ([0-9a-f]{12}) -->")


def _code(path: Path) -> str:
    """The file as Python code without docstrings (``ast.unparse`` drops comments and layout)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def fingerprint(benchmark: str) -> str:
    """12 hex digits of a sha256 over the code :data:`MEASURED` by ``benchmark``."""
    digest = hashlib.sha256()
    for rel in MEASURED[benchmark]:
        digest.update(rel.encode() + b"\0" + _code(ROOT / rel).encode() + b"\0")
    return digest.hexdigest()[:12]


def marker(benchmark: str) -> str:
    """The line a benchmark prints under its table."""
    return f"<!-- measured code: {benchmark} {fingerprint(benchmark)} -->"
