"""Committed benchmark tables are as new as the code they measure.

benchmarks/README.md shows the tables printed by ``benchmarks/run_benchmarks.py`` and
``benchmarks/gowalla_speed.py``; each is followed by the marker line the benchmark printed under
it, ``<!-- measured code: NAME FINGERPRINT -->`` (``benchmarks/measured.py``). A change to the
measured code changes the fingerprint: run the benchmark again (on a quiet machine) and copy its
table and marker. Any other page that copies a table with its marker is checked the same way."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import measured  # noqa: E402  (benchmarks/measured.py)

REQUIRED = {"benchmarks/README.md": ["run_benchmarks", "gowalla_speed"]}
DOCS = [str(p.relative_to(ROOT)) for p in ROOT.glob("docs/*.md")]
PAGES = sorted({"README.md", *REQUIRED, *DOCS})


@pytest.mark.parametrize("page", PAGES)
def test_committed_tables_measured_todays_code(page):
    if not (ROOT / page).is_file():
        pytest.skip(f"{page} does not exist")
    found = measured.MARKER.findall((ROOT / page).read_text())
    names = [name for name, _ in found]
    for name in REQUIRED.get(page, []):
        assert name in names, (f"{page}: the {name} table has no '<!-- measured code: ... -->' "
                               f"line; run benchmarks/{name}.py and copy its table")
    for name, digest in found:
        assert digest == measured.fingerprint(name), (
            f"{page}: a {name} table measured older code ({digest}, today "
            f"{measured.fingerprint(name)}): run benchmarks/{name}.py again and copy its table")


def test_the_fingerprint_ignores_comments_and_docstrings_but_not_code(tmp_path, monkeypatch):
    src = tmp_path / "lightgcn_helpers" / "m.py"
    src.parent.mkdir()
    src.write_text('"""Doc."""\n\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n')
    monkeypatch.setattr(measured, "ROOT", tmp_path)
    monkeypatch.setitem(measured.MEASURED, "toy", ["lightgcn_helpers/m.py"])
    before = measured.fingerprint("toy")
    src.write_text('"""Other doc."""\n\n\ndef f(x):\n    return x + 1\n')
    assert measured.fingerprint("toy") == before
    src.write_text('"""Doc."""\n\ndef f(x):\n    return x + 2\n')
    assert measured.fingerprint("toy") != before
