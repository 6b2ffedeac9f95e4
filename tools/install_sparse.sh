#!/usr/bin/env bash
# Install the optional torch-scatter + torch-sparse (requirements-sparse.txt) into the
# environment of PYTHON, the fastest way that works:
#
#   1. PyG's prebuilt wheels for the installed torch/CUDA, from PyG's wheel index
#      https://data.pyg.org/whl/torch-<major>.<minor>.0+<cpu|cuXYZ>.html (seconds);
#   2. otherwise pip's usual route, exactly as before: a wheel compiled on an earlier
#      set-up comes from pip's cache (seconds), else pip compiles the source against the
#      installed torch (15-45 minutes on 2 cores, once).
# A copy that is installed but does not import (built for another torch) is replaced.
# workshop.sh and postBuild call this and carry on when it fails: without torch-sparse
# the series still runs and the notebooks skip their SparseTensor cells.
#
#   tools/install_sparse.sh PYTHON                    install into PYTHON's environment
#   tools/install_sparse.sh --print-index-url PYTHON  print the PyG index for PYTHON's torch
#
# Environment variables:
#   LIGHTGCN_SKIP_SPARSE=1     install nothing
#   LIGHTGCN_PYG_WHEELS=0      do not try PyG's wheel index (pip's cache, else compile)
#   LIGHTGCN_PYG_INDEX=URL     try this index page or folder instead (a mirror, an offline copy)
#   LIGHTGCN_LATEST=1          (set by workshop.sh) keep builds for the newest torch in their
#                              own pip cache, so they never replace the pinned torch's builds
#   MAX_JOBS=N                 parallel compile jobs (default: 2)
#
# Exit status: 0 when torch_scatter and torch_sparse import afterwards (or
# LIGHTGCN_SKIP_SPARSE is set), 3 when they could not be installed (a warning says so),
# 2 for a usage error.
set -euo pipefail

usage() {  # the comment block at the top of this file
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

print_only=0
if [ "${1:-}" = "--print-index-url" ]; then print_only=1; shift; fi
if [ $# -ne 1 ] || [ "${1:0:1}" = "-" ]; then usage >&2; exit 2; fi
PY="$1"
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # the repository root, where requirements-sparse.txt is
REQ="requirements-sparse.txt"

if [ -t 1 ]; then B=$'\033[1m' Y=$'\033[1;33m' N=$'\033[0m'; else B='' Y='' N=''; fi
say()  { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
warn() { printf '%sWARNING: %s%s\n' "$Y" "$*" "$N" >&2; }

pip_install() { "$PY" -m pip install --progress-bar off "$@"; }

sparse_ok() {  # both import (an ABI mismatch with the installed torch fails here too)
  "$PY" -c 'import torch_scatter, torch_sparse' >/dev/null 2>&1
}

uninstall_sparse() {  # prints pip's "Successfully uninstalled ..." lines, if any
  "$PY" -m pip uninstall --yes torch-scatter torch-sparse 2>&1 | grep 'Successfully uninstalled' || true
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
  local url out key
  if [ -n "${LIGHTGCN_PYG_INDEX:-}" ]; then
    url="$LIGHTGCN_PYG_INDEX"
  elif ! url="$(pyg_index_url 2>&1)"; then
    echo "    No PyG wheel index for this torch: $url"
    return 1
  fi
  echo "    Trying PyG's prebuilt wheels: $url"
  # Short timeout and one retry: an unreachable index must not hold up the fallback.
  if out="$(pip_install --only-binary :all: --timeout 15 --retries 1 --find-links "$url" -r "$REQ" 2>&1)"; then
    if sparse_ok; then
      if grep -q '^Successfully installed' <<<"$out"; then
        grep '^Successfully installed' <<<"$out" | sed 's/^/    /'
        echo "    torch-sparse OK (PyG's prebuilt wheels, nothing compiled)"
      else
        echo "    torch-sparse OK (already installed)"
      fi
      return 0
    fi
    echo "    PyG's wheels installed but do not import with this torch; removing them"
    uninstall_sparse | sed 's/^ */      /'
  else
    echo "    No usable prebuilt wheels there (none for this torch/Python, or the index is unreachable). pip said:"
    key="${url%/}"; key="${key##*/}"   # pip's lines about the index name its last part
    grep -F -e "$key" -e 'ERROR' <<<"$out" | grep -v '^Looking in links' | tail -n 4 | cut -c 1-220 \
      | sed 's/^ */      /' || true
  fi
  return 1
}

install_with_pip() {  # pip's usual route: pip's wheel cache, else compile; 0 when they import
  echo "    Installing with pip as usual: a wheel compiled on an earlier set-up comes from pip's"
  echo "    cache (seconds); otherwise pip compiles them: 15-45 minutes on 2 cores, once."
  export MAX_JOBS="${MAX_JOBS:-2}"
  pip_install --no-build-isolation -r "$REQ" || return 1
  sparse_ok && return 0
  # Installed but not importable: pip's cached wheel was compiled against another torch
  # (the cache does not know which torch a wheel was built for). Drop it from the cache
  # and compile against this torch; the new wheel takes its place in the cache.
  say "The cached torch-sparse was built for another torch: compiling it again (15-45 minutes)"
  "$PY" -m pip cache remove torch_scatter >/dev/null 2>&1 || true
  "$PY" -m pip cache remove torch_sparse >/dev/null 2>&1 || true
  pip_install --no-build-isolation --no-deps --force-reinstall -r "$REQ" || return 1
  sparse_ok
}

if [ "$print_only" = 1 ]; then
  pyg_index_url
  exit
fi

if [ "${LIGHTGCN_SKIP_SPARSE:-0}" != "0" ]; then
  warn "LIGHTGCN_SKIP_SPARSE is set: not installing torch-sparse/torch-scatter (notebooks skip SparseTensor cells)."
  exit 0
fi

say "Installing torch-scatter and torch-sparse ($REQ)"
if [ "${LIGHTGCN_LATEST:-0}" != "0" ]; then
  export PIP_CACHE_DIR="${LIGHTGCN_LATEST_PIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lightgcn-latest-pip}"
  echo "    LIGHTGCN_LATEST: builds for the newest torch are cached apart, in $PIP_CACHE_DIR"
fi
if ! sparse_ok; then
  # A copy that does not import would count as "already installed" for pip: remove it.
  uninstall_sparse | sed 's/^ */    removed a copy that does not import: /'
fi

if try_prebuilt; then
  exit 0
fi
if install_with_pip; then
  echo "    torch-sparse OK"
  exit 0
fi
warn "torch-sparse/torch-scatter could not be installed or imported. Everything else works without them:
         lightgcn_helpers uses torch.sparse, and notebooks skip the torch_sparse.SparseTensor cells.
         To retry later: LIGHTGCN_FORCE_SETUP=1 ./workshop.sh setup"
exit 3
