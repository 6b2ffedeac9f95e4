"""docs/colab_cell.py (which the first code cell of every notebook runs in Colab),
docs/badges.md and tools/set_repository.py. No test touches the network: "Colab" is simulated
with a fake ``google.colab`` module and a local git repository standing in for GitHub."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "docs" / "colab_cell.py"
PLACEHOLDER = "lightgcn-from-scratch/lightgcn-from-scratch"
CLONE_URL = f"https://github.com/{PLACEHOLDER}.git"
_spec = importlib.util.spec_from_file_location(
    "set_repository", ROOT / "tools" / "set_repository.py")
set_repository = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(set_repository)


def requirement_pins(*names: str) -> list[str]:
    text = (ROOT / "requirements.txt").read_text()
    return [re.search(rf"^{re.escape(n)}==\S+", text, re.M).group(0) for n in names]


# ---------------------------------------------------------------- the Colab cell

def test_colab_cell_does_nothing_outside_colab(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    cwd, path = os.getcwd(), list(sys.path)
    exec(compile(CELL.read_text(), str(CELL), "exec"), {})
    assert (os.getcwd(), sys.path, calls) == (cwd, path, [])
    assert capsys.readouterr().out == ""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_colab_cell_in_a_simulated_colab(tmp_path, monkeypatch, capsys):
    # "GitHub": a local repository holding what the cell reads.
    origin = tmp_path / "origin"
    (origin / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "requirements.txt", origin / "requirements.txt")
    (origin / "notebooks" / "README").write_text("notebooks\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(origin)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "origin"]):
        subprocess.run(git + args, check=True, capture_output=True)
    repo_dir = tmp_path / "content" / "lightgcn-from-scratch"
    source = CELL.read_text()
    assert source.count(CLONE_URL) == 1 and source.count("/content/lightgcn-from-scratch") == 1
    source = (source.replace(CLONE_URL, origin.as_uri())
              .replace("/content/lightgcn-from-scratch", str(repo_dir)))

    real_run, pip_calls = subprocess.run, []

    def run(cmd, *args, **kwargs):  # git for real; pip recorded, not run
        if cmd[1:3] == ["-m", "pip"]:
            pip_calls.append(cmd)
            return subprocess.CompletedProcess(cmd, 0)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)

    for _ in range(2):   # running the cell again is harmless
        exec(compile(source, str(CELL), "exec"), {})
        assert (repo_dir / "requirements.txt").is_file()
        assert Path.cwd() == repo_dir / "notebooks"
        assert sys.path[0] == str(repo_dir) and sys.path.count(str(repo_dir)) == 1
    pins = requirement_pins("torch-geometric", "pooch")
    assert pip_calls == [[sys.executable, "-m", "pip", "install", "--quiet", *pins]] * 2
    assert "Colab is ready: " + " ".join(pins) in capsys.readouterr().out


# ---------------------------------------------------------------- the loader in every notebook

LOADER_URL = f"https://raw.githubusercontent.com/{PLACEHOLDER}/main/docs/colab_cell.py"


def first_code_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_every_notebook_opens_with_the_same_short_loader():
    paths = (sorted((ROOT / "notebooks").glob("*.ipynb"))
             + sorted((ROOT / "solutions").glob("*.ipynb")))
    loaders = {first_code_cell(p) for p in paths}
    assert len(loaders) == 1, "the first code cells differ"
    loader = loaders.pop()
    assert len(loader.splitlines()) <= 6 and 'if "google.colab" in sys.modules:' in loader
    assert set_repository.link_pattern(PLACEHOLDER).search(loader)  # set_repository.py moves it


def test_the_loader_runs_docs_colab_cell_in_colab_only(monkeypatch):
    loader = first_code_cell(ROOT / "notebooks" / "01_data_exploration.ipynb")
    import urllib.request

    fetched = []

    class Reply:
        def read(self):
            return b"RAN = True\n"

    monkeypatch.setattr(urllib.request, "urlopen", lambda url: fetched.append(url) or Reply())
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    scope = {}
    exec(compile(loader, "loader", "exec"), scope)
    assert fetched == [] and "RAN" not in scope
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(loader, "loader", "exec"), scope)
    assert fetched == [LOADER_URL] and scope["RAN"] is True


# ---------------------------------------------------------------- badges

def badge_links(text: str) -> list[tuple[str, str]]:
    """(Colab notebook path, Binder notebook path) for each badge line."""
    return re.findall(
        rf"\(https://colab\.research\.google\.com/github/{PLACEHOLDER}/blob/main/"
        rf"(notebooks/[\w.-]+\.ipynb)\) "
        rf"\[!\[Launch Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
        rf"\(https://mybinder\.org/v2/gh/{PLACEHOLDER}/HEAD\?labpath="
        rf"(notebooks%2F[\w.-]+\.ipynb)\)", text)


def test_every_notebook_has_a_badge_line():
    links = badge_links((ROOT / "docs" / "badges.md").read_text())
    for colab, binder in links:
        assert binder == colab.replace("/", "%2F")
    listed = {colab for colab, _ in links}
    # the series' numbered notebooks
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"notebooks/{nb.name}" in listed, (
            f"docs/badges.md has no badge line for notebooks/{nb.name}")


def test_readme_badges_use_the_placeholder():
    readme = (ROOT / "README.md").read_text()
    assert f"https://colab.research.google.com/github/{PLACEHOLDER}/blob/main/notebooks/" in readme
    assert f"https://mybinder.org/v2/gh/{PLACEHOLDER}/HEAD" in readme


# ---------------------------------------------------------------- set_repository.py

def test_set_repository_rewrites_links_only(tmp_path, capsys):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copy(ROOT / "README.md", root / "README.md")
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": [
            "# 01 · A title\n",
            "[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{PLACEHOLDER}"
            "/blob/main/notebooks/01.ipynb)\n"
        ]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
         "source": CELL.read_text().splitlines(keepends=True)},
        {"cell_type": "markdown", "metadata": {},
         "source": [f"The placeholder `{PLACEHOLDER}` in prose stays.\n"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks").mkdir()
    (root / "notebooks" / "01.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    (root / "solutions").mkdir()
    (root / "solutions" / "01_solutions.ipynb").write_text(
        json.dumps(nb, indent=1, ensure_ascii=False))
    (root / "other.md").write_text(f"https://github.com/{PLACEHOLDER}\n")   # outside the folders
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert set_repository.main(["alice/lightgcn-workshop", "--root", str(root), "--dry-run"]) == 0
    assert {p: p.read_bytes() for p in before} == before

    assert set_repository.main(["alice/lightgcn-workshop", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "notebooks/01.ipynb" in out and "solutions/01_solutions.ipynb" in out
    cell = (root / "docs" / "colab_cell.py").read_text()
    assert "https://github.com/alice/lightgcn-workshop.git" in cell
    # the folder in Colab keeps its name
    assert cell.count("/content/lightgcn-from-scratch") == 1
    badges = (root / "docs" / "badges.md").read_text()
    assert (f"/{PLACEHOLDER}/" not in badges
            and badges.count("alice/lightgcn-workshop/HEAD?labpath=") >= 8)
    assert ("colab.research.google.com/github/alice/lightgcn-workshop/blob/main/notebooks/"
            in (root / "README.md").read_text())
    for path in (root / "notebooks" / "01.ipynb", root / "solutions" / "01_solutions.ipynb"):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        assert "github/alice/lightgcn-workshop/blob/main/notebooks/01.ipynb" in text
        assert "https://github.com/alice/lightgcn-workshop.git" in text
        assert f"The placeholder `{PLACEHOLDER}` in prose stays." in text
    assert (root / "other.md").read_bytes() == before[root / "other.md"]
    assert f"repository `{PLACEHOLDER}` until" in badges                 # prose is left alone

    # Nothing left to rewrite: a clear message; --from moves the links on.
    assert set_repository.main(["alice/lightgcn-workshop", "--root", str(root)]) == 1
    assert "No links to" in capsys.readouterr().err
    assert set_repository.main(
        ["bob/x", "--from", "alice/lightgcn-workshop", "--root", str(root)]) == 0
    assert "https://github.com/bob/x.git" in (root / "docs" / "colab_cell.py").read_text()


@pytest.mark.parametrize("bad", ["alice", "alice/", "/x", "a b/c", "alice/x/y", "-a/b"])
def test_set_repository_rejects_bad_names(bad):
    with pytest.raises(SystemExit) as exc:
        set_repository.main([bad, "--dry-run"])
    assert exc.value.code == 2
