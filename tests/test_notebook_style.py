"""How the stored notebooks read (docs/contributing.md): no test machinery in a lesson, short
cells, figures that GitHub shows at full size. Reads the committed .ipynb files; runs nothing."""
import base64
import json
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
CORE = [p for p in NOTEBOOKS if p.name[:2] in {"01", "02", "03", "04", "05", "06"}]
TEST_TALK = re.compile(r"\bnbval\b|\bthe tests?\b|\bNBVAL|\bCI\b|\bpytest\b", re.I)
MAX_WIDTH_PX = 900


def cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind
            and "".join(c["source"]).strip()]


def png_widths(path: Path) -> list[int]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    widths = []
    for c in nb["cells"]:
        for out in c.get("outputs", []):
            data = out.get("data", {}).get("image/png")
            if data:
                raw = base64.b64decode("".join(data) if isinstance(data, list) else data)
                widths.append(struct.unpack(">I", raw[16:20])[0])  # the IHDR chunk's width
    return widths


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_no_test_machinery_in_the_lesson(path):
    markers = [s.splitlines()[0] for s in cells(path, "code") if "NBVAL" in s]
    assert not markers, f"NBVAL comments (use the cell tag nbval-ignore-output): {markers}"
    talk = [m.group(0) for s in cells(path, "markdown") for m in TEST_TALK.finditer(s)]
    assert not talk, f"prose about tests/nbval/CI (docs/testing.md explains the policy): {talk}"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_cells_a_reader_can_hold(path):
    code = cells(path, "code")
    lengths = [len(s.splitlines()) for s in code]
    assert lengths[0] <= 6, f"the first code cell has {lengths[0]} lines (at most 6)"
    assert max(lengths) <= 25, f"code cells over 25 lines: {[n for n in lengths if n > 25]}"
    long_lines = [line for s in code for line in s.splitlines() if len(line) > 100]
    assert not long_lines, f"{len(long_lines)} code lines over 100 characters: {long_lines[:3]}"


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_notebooks_keep_cells_short(path):
    over = [len(s.splitlines()) for s in cells(path, "code") if len(s.splitlines()) > 15]
    assert len(over) <= 3, f"{len(over)} code cells over 15 lines (at most 3): {over}"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_figures_fit_the_page(path):
    wide = [w for w in png_widths(path) if w > MAX_WIDTH_PX]
    assert not wide, f"figures wider than {MAX_WIDTH_PX} px: {wide}"
