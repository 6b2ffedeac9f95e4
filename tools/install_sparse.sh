#!/usr/bin/env bash
# Install the optional torch-scatter + torch-sparse (requirements-sparse.txt, they provide
# torch_sparse.SparseTensor) into the environment of PYTHON.
#
# By default only PREBUILT wheels, never a compile (seconds, or skipped with one line):
#   1. nothing to do when both already import;
#   2. PyG's prebuilt wheels for the installed torch/CUDA, from PyG's wheel index
#      https://data.pyg.org/whl/torch-<major>.<minor>.0+<cpu|cuXYZ>.html
#      (or LIGHTGCN_PYG_INDEX: a mirror, or a folder of wheels);
#   3. wheels compiled on an earlier --build, from pip's cache (pip cache list);
#   otherwise it installs nothing and prints one line: what is missing, which notebook
#   cells skip without it, and the command that adds it (exit status 4).
# With --build it then compiles them against the installed torch when 1-3 found nothing
# (about 12 minutes on an idle 2-core machine, up to 75 on a busy one; pip caches the wheels,
# so later set-ups, other clones and CI take them from step 3 in seconds).
# A copy that is installed but does not import (built for another torch) is replaced.
#
#   tools/install_sparse.sh PYTHON                    prebuilt wheels only (set-up's default)
#   tools/install_sparse.sh --build PYTHON            the same, else compile (on request)
#   tools/install_sparse.sh --print-index-url PYTHON  print the PyG index for PYTHON's torch
#
# Environment variables:
#   LIGHTGCN_SKIP_SPARSE=1     install nothing (not even prebuilt wheels)
#   LIGHTGCN_PYG_WHEELS=0      do not try PyG's wheel index (pip's cache, else skip/compile)
#   LIGHTGCN_PYG_INDEX=URL     try this index page or folder instead (a mirror, an offline copy)
#   LIGHTGCN_LATEST=1          (set by workshop.sh) keep builds for the newest torch in their
#                              own pip cache, so they never replace the pinned torch's builds
#   LIGHTGCN_SPARSE_CMD=...    the command the skip line names (workshop.sh: ./workshop.sh sparse)
#   LIGHTGCN_SPARSE_STATUS=F   write how they came to this file: installed, prebuilt, cache,
#                              compiled, skipped or failed (.ci/run reports it)
#   MAX_JOBS=N                 parallel compile jobs (default: 2)
#
# Exit status: 0 when torch_scatter and torch_sparse import afterwards (or
# LIGHTGCN_SKIP_SPARSE is set); 4 when no prebuilt wheel was found and nothing was
# compiled (without --build); 3 when a --build failed (a warning says so); 2 for a usage
# error. Without them everything else runs: lightgcn_helpers uses torch.sparse.
set -euo pipefail

usage() {  # the comment block at the top of this file
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

mode=install
case "${1:-}" in
  --print-index-url) mode=print; shift ;;
  --build) mode=build; shift ;;
esac
if [ $# -ne 1 ] || [ "${1:0:1}" = "-" ]; then usage >&2; exit 2; fi
PY="$1"
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # the repository root, where requirements-sparse.txt is
REQ="requirements-sparse.txt"
SPARSE_CMD="${LIGHTGCN_SPARSE_CMD:-bash tools/install_sparse.sh --build $PY}"
# The cells that skip without them (the notebooks say so too).
AFFECTS="notebook 03's SparseTensor cells (and 04's SparseTensor row, 08's mini-batch section)"

if [ -t 1 ]; then B=$'\033[1m' Y=$'\033[1;33m' N=$'\033[0m'; else B='' Y='' N=''; fi
say()  { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
warn() { printf '%sWARNING: %s%s\n' "$Y" "$*" "$N" >&2; }
status() {  # $1: how they came (see LIGHTGCN_SPARSE_STATUS above)
  local file="${LIGHTGCN_SPARSE_STATUS:-}"
  [ -n "$file" ] || return 0
  # "installed" keeps what an earlier run in the same command wrote (workshop.sh sparse runs
  # the set-up first, which may already have taken them from pip's cache).
  if [ "$1" = installed ] && [ -s "$file" ]; then return 0; fi
  echo "$1" > "$file"
}

pip_install() { "$PY" -m pip install --progress-bar off "$@"; }

sparse_ok() {  # both import (an ABI mismatch with the installed torch fails here too)
  "$PY" -c 'import torch_scatter, torch_sparse' >/dev/null 2>&1
}

uninstall_sparse() {  # prints pip's "Successfully uninstalled ..." lines, if any
  "$PY" -m pip uninstall --yes torch-scatter torch-sparse 2>&1 \
    | grep 'Successfully uninstalled' || true
}

TORCH=""
torch_label() {  # sets TORCH="torch 2.13.0+cpu, Python 3.11" (or why torch does not import)
  [ -z "$TORCH" ] || return 0
  TORCH="$("$PY" -c 'import sys
try:
    import torch
    t = "torch " + torch.__version__
except Exception as exc:
    t = f"no importable torch ({type(exc).__name__})"
print(t + ", Python %d.%d" % sys.version_info[:2])' 2>/dev/null || echo "an unknown torch")"
}

pyg_index_url() {  # PyG's wheel index for PYTHON's torch; exit 1 with the reason if none
  "$PY" - <<'PY'
import re, sys
try:
    import torch
except Exception as exc:  # not installed, or broken
    sys.exit(f"torch does not import ({type(exc).__name__}: {exc})")
if getattr(torch.version, "hip", None):
    sys.exit(f"torch {torch.__version__} is a ROCm build; PyG publishes no wheels for ROCm")
m = re.match(r"(\d+)\.(\d+)", torch.__version__)
if not m:
    sys.exit(f"cannot read torch's version {torch.__version__!r}")
cuda = getattr(torch.version, "cuda", None)
flavour = "cu" + cuda.replace(".", "") if cuda else "cpu"
print(f"https://data.pyg.org/whl/torch-{m[1]}.{m[2]}.0+{flavour}.html")
PY
}

try_prebuilt() {  # 0 when PyG's wheels are installed and import
  if [ "${LIGHTGCN_PYG_WHEELS:-1}" = "0" ]; then
    echo "    LIGHTGCN_PYG_WHEELS=0: not trying PyG's prebuilt wheels"
    return 1
  fi
  local url out why src
  if [ -n "${LIGHTGCN_PYG_INDEX:-}" ]; then
    url="$LIGHTGCN_PYG_INDEX"
    src="Prebuilt wheels from LIGHTGCN_PYG_INDEX ($url)"
  elif ! url="$(pyg_index_url 2>&1)"; then
    echo "    No PyG wheel index for this torch: $url"
    return 1
  else
    src="Prebuilt wheels from PyG's index ($url)"
  fi
  # Wheels only (never a source archive), a short timeout and one retry: an unreachable
  # index must not hold up the set-up.
  if out="$(pip_install --only-binary :all: --timeout 15 --retries 1 --find-links "$url" \
              -r "$REQ" 2>&1)"; then
    if sparse_ok; then
      echo "    $src:"
      grep '^Successfully installed' <<<"$out" | sed 's/^/    /' || true
      echo "    torch-sparse OK (prebuilt wheels, nothing compiled)"
      status prebuilt
      return 0
    fi
    echo "    $src: installed, but they do not import with this torch; removing them"
    uninstall_sparse | sed 's/^ */      /'
  else
    # One line: why pip found nothing (its own messages are long and say ERROR, which reads
    # as if the set-up had failed).
    torch_label
    why="no wheel there for $TORCH"
    local offline='NameResolution|Failed to (establish|resolve)|Max retries|timed out'
    offline="$offline|Connection (refused|reset)|Network is unreachable"
    if grep -q -E "$offline" <<<"$out"; then
      why="unreachable"
    elif grep -q -E 'Could not fetch URL|[0-9]{3} (Client|Server) Error' <<<"$out"; then
      why="could not be read"
    fi
    echo "    $src: $why"
  fi
  return 1
}

cached_wheel() {  # $1: name==version; the newest matching wheel in pip's cache, if any
  local name="${1%%==*}" version="${1#*==}"
  # pip names the files torch_sparse-0.6.18-<python>-<abi>-<platform>.whl
  "$PY" -m pip cache list "${name//-/_}-${version}-*" --format=abspath 2>/dev/null \
    | "$PY" -c 'import os, sys
files = [f for f in sys.stdin.read().splitlines() if f.endswith(".whl") and os.path.isfile(f)]
print(max(files, key=os.path.getmtime) if files else "")'
}

STALE_CACHE=0
try_cache() {  # 0 when wheels compiled on an earlier --build (pip's cache) install and import
  local pins pin whl wheels=()
  pins="$(grep -E '^[A-Za-z0-9_.-]+==' "$REQ" | cut -d' ' -f1)"
  for pin in $pins; do
    whl="$(cached_wheel "$pin")"
    if [ -z "$whl" ]; then
      echo "    pip's cache ($("$PY" -m pip cache dir 2>/dev/null || echo disabled))" \
        "has no compiled ${pin%%==*} ${pin#*==}"
      return 1
    fi
    wheels+=("$whl")
  done
  echo "    Found compiled wheels in pip's cache:"
  printf '      %s\n' "${wheels[@]##*/}"
  if pip_install --no-deps --no-index --force-reinstall --quiet "${wheels[@]}" >/dev/null 2>&1 \
      && sparse_ok; then
    echo "    torch-sparse OK (taken from pip's cache, nothing compiled)"
    status cache
    return 0
  fi
  echo "    They do not install or import here (compiled for another torch or Python);" \
    "removing them"
  uninstall_sparse | sed 's/^ */      /'
  STALE_CACHE=1
  return 1
}

compile_sparse() {  # pip compiles the source against the installed torch; 0 when they import
  local t0
  t0=$(date +%s)
  export MAX_JOBS="${MAX_JOBS:-2}"
  torch_label
  say "Compiling torch-scatter and torch-sparse against $TORCH (MAX_JOBS=$MAX_JOBS):"
  echo "    about 12 minutes on an idle 2-core machine, up to 75 on a busy one; pip caches"
  echo "    the wheels, so later set-ups take them in seconds."
  if [ "$STALE_CACHE" = 1 ]; then
    # pip would take the stale wheels from its cache again: drop them, compile anew.
    "$PY" -m pip cache remove 'torch_scatter-*' >/dev/null 2>&1 || true
    "$PY" -m pip cache remove 'torch_sparse-*' >/dev/null 2>&1 || true
  fi
  # --no-build-isolation: compile against the torch in this environment, not a fresh one.
  pip_install --no-build-isolation -r "$REQ" || return 1
  if ! sparse_ok; then
    # Installed but not importable: pip's cached wheel was compiled against another torch
    # (the cache does not know which torch a wheel was built for). Drop it from the cache
    # and compile against this torch; the new wheel takes its place in the cache.
    say "The cached torch-sparse was built for another torch: compiling it again"
    "$PY" -m pip cache remove 'torch_scatter-*' >/dev/null 2>&1 || true
    "$PY" -m pip cache remove 'torch_sparse-*' >/dev/null 2>&1 || true
    pip_install --no-build-isolation --no-deps --force-reinstall -r "$REQ" || return 1
    sparse_ok || return 1
  fi
  echo "    torch-sparse OK (compiled in $(( $(date +%s) - t0 )) s; pip cached the wheels)"
  status compiled
}

if [ "$mode" = print ]; then
  pyg_index_url
  exit
fi

if [ "${LIGHTGCN_SKIP_SPARSE:-0}" != "0" ]; then
  warn "LIGHTGCN_SKIP_SPARSE is set: not installing torch-sparse/torch-scatter ($AFFECTS skip)."
  status skipped
  exit 0
fi

how="prebuilt wheels"
if [ "$mode" = build ]; then how="prebuilt wheels, else compile"; fi
say "torch-scatter and torch-sparse ($REQ): $how"
if [ "${LIGHTGCN_LATEST:-0}" != "0" ]; then
  PIP_CACHE_DIR="${LIGHTGCN_LATEST_PIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lightgcn-latest-pip}"
  export PIP_CACHE_DIR
  echo "    LIGHTGCN_LATEST: builds for the newest torch are cached apart, in $PIP_CACHE_DIR"
fi
if sparse_ok; then
  echo "    torch-sparse OK (already installed)"
  status installed
  exit 0
fi
# A copy that does not import would count as "already installed" for pip: remove it.
uninstall_sparse | sed 's/^ */    removed a copy that does not import: /'

if try_prebuilt || try_cache; then
  exit 0
fi
if [ "$mode" = install ]; then
  # The one line the issue asks for: what is missing, what skips, the command that adds it.
  torch_label
  line="torch-sparse skipped: no prebuilt torch-scatter/torch-sparse wheel for $TORCH;"
  line="$line $AFFECTS will be skipped."
  warn "$line Add them with: $SPARSE_CMD (compiles, about 12 min on 2 idle cores)"
  status skipped
  exit 4
fi
if compile_sparse; then
  exit 0
fi
status failed
warn "torch-sparse/torch-scatter could not be compiled or imported (a C++ compiler is needed:
         Linux gcc/g++, macOS xcode-select --install). Everything else works without them:
         lightgcn_helpers uses torch.sparse, and $AFFECTS skip.
         To retry: $SPARSE_CMD"
exit 3
