"""README.md is a front page: short, the set-up command near the top, its results table (and
docs/results.md's) made from the committed records (tools/results_table.py), its figure the stored
output of notebook 08 (tools/export_figures.py), and every page it links to present."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_short_front_page():
    words = README.split()
    assert len(words) <= 1200, f"README.md has {len(words)} words (at most 1,200)"
    first = " ".join(words[:400])
    assert "./workshop.sh lab" in first, "the set-up command is not within the first 400 words"


def test_results_tables_come_from_the_records():
    results = tool("results_table")
    for path, blocks in results.BLOCKS.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        for name, make in blocks.items():
            start, end = results.markers(name)
            assert start in text and end in text, f"{path} has no {name} block"
            block = text.split(start, 1)[1].split(end, 1)[0].strip()
            assert block == make(), \
                f"{path}'s {name} table is stale: python tools/results_table.py --write"


def test_figures_are_the_notebooks_stored_outputs():
    assert tool("export_figures").main(["--check"]) == 0


def test_every_linked_page_exists():
    links = re.findall(r"\]\(((?!https?://)[^)#]+)\)", README)
    missing = [link for link in links if not (ROOT / link).exists()]
    assert links and not missing, f"README links to missing files: {missing}"
