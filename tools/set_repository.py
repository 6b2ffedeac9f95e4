#!/usr/bin/env python3
"""Point the Colab/Binder badges and the Colab set-up cell at the repository's address.

    python tools/set_repository.py OWNER/REPO                 # e.g. alice/lightgcn-workshop
    python tools/set_repository.py OWNER/REPO --from OLD/REPO  # move them again later
    python tools/set_repository.py OWNER/REPO --dry-run        # only list what would change

Until the series has its public home, every link to it uses the placeholder
``lightgcn-from-scratch/lightgcn-from-scratch``. This rewrites that owner/name (or the one
given with ``--from``) wherever it follows github.com/, colab.research.google.com/github/,
mybinder.org/v2/gh/, nbviewer.org/github/ or raw.githubusercontent.com/, in README.md and
in the .md, .py and .ipynb files under docs/, notebooks/ and solutions/. Nothing else is
touched (the words of the text, outputs that merely mention the name). Exit status 1 when
no link was found (a typo in --from?), 2 for a bad argument.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PLACEHOLDER = "lightgcn-from-scratch/lightgcn-from-scratch"
HOSTS = ("github.com/", "colab.research.google.com/github/", "mybinder.org/v2/gh/",
         "nbviewer.org/github/", "raw.githubusercontent.com/")
FOLDERS = ("docs", "notebooks", "solutions")
SUFFIXES = (".md", ".py", ".ipynb")
# GitHub's rules for owner and repository names (letters, digits, '-', and '.'/'_' in names).
REPO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


def files(root: Path) -> list[Path]:
    found = [root / "README.md"] if (root / "README.md").is_file() else []
    for folder in FOLDERS:
        if (root / folder).is_dir():
            found += sorted(p for p in (root / folder).rglob("*")
                            if p.suffix in SUFFIXES and p.is_file()
                            and ".ipynb_checkpoints" not in p.parts)
    return found


def link_pattern(old: str) -> re.Pattern[str]:
    """``old`` right after one of HOSTS and followed by the end of the name."""
    hosts = "|".join(re.escape(h) for h in HOSTS)
    # the name ends where no name character follows (".git" and a full stop are not part of it)
    return re.compile(rf"({hosts}){re.escape(old)}(?=\.git\b|\.(?![\w-])|[^\w.-]|$)")


def rewrite(root: Path, old: str, new: str, dry_run: bool = False) -> dict[Path, int]:
    """Replace the links in place; return {file: number of links} for the files changed."""
    pattern = link_pattern(old)
    changed = {}
    for path in files(root):
        text = path.read_text(encoding="utf-8")
        updated, n = pattern.subn(lambda m: m[1] + new, text)
        if n:
            changed[path] = n
            if not dry_run:
                path.write_text(updated, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", help="OWNER/REPO on GitHub")
    parser.add_argument("--from", dest="old", default=PLACEHOLDER,
                        help=f"the OWNER/REPO the links name now (default: {PLACEHOLDER})")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would change, change nothing")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help=argparse.SUPPRESS)  # the repository folder (tests use a copy)
    args = parser.parse_args(argv)
    for value in (args.repository, args.old):
        if not REPO_NAME.fullmatch(value):
            parser.error(f"{value!r} is not a GitHub OWNER/REPO (e.g. alice/lightgcn-workshop)")

    changed = rewrite(args.root, args.old, args.repository, dry_run=args.dry_run)
    if not changed:
        print(f"No links to {args.old} found in README.md, {', '.join(FOLDERS)} under {args.root}.",
              file=sys.stderr)
        return 1
    verb = "would rewrite" if args.dry_run else "rewrote"
    for path, n in changed.items():
        print(f"{verb} {n:3d} link(s) in {path.relative_to(args.root)}")
    print(f"{args.old} -> {args.repository}: {sum(changed.values())} link(s) in "
          f"{len(changed)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
