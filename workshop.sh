#!/usr/bin/env bash
# LightGCN from scratch: one command to set everything up, then work or test.
#
#   ./workshop.sh lab            set up, then open the notebooks in JupyterLab
#   ./workshop.sh test [ARGS]    set up, then run the whole test suite
#                                (unit tests + nbval over every notebook); ARGS go to pytest
#   ./workshop.sh setup          only set up
#   ./workshop.sh sparse         set up, then compile torch-scatter + torch-sparse for
#                                notebook 03's SparseTensor cells (about 12 minutes on an
#                                idle 2-core machine, up to 75 on a busy one; pip caches them)
#   ./workshop.sh sparse --background
#                                the same compile behind the lab, at the lowest priority
#                                (nice 19, one job), logged to .venv/sparse-build.log
#
# Set-up creates ./.venv (with python3, or $PYTHON), installs the pinned packages of
# requirements.txt (torch first) and lightgcn_helpers (editable), all from prebuilt wheels:
# 1-3 minutes, nothing is compiled. The optional torch-scatter/torch-sparse
# (requirements-sparse.txt, tools/install_sparse.sh) come in only when a prebuilt wheel
# exists for the installed torch: PyG's wheel index, LIGHTGCN_PYG_INDEX, or wheels that an
# earlier './workshop.sh sparse' left in pip's cache. Otherwise one line says so and names
# the command that adds them; every other cell runs without them. Set-up is skipped when
# nothing changed.
#
# Environment variables:
#   PYTHON=python3.11          interpreter used to create .venv (default: python3)
#   LIGHTGCN_SKIP_SPARSE=1     do not install torch-sparse/torch-scatter, not even prebuilt
#   LIGHTGCN_PYG_WHEELS=0      do not try PyG's prebuilt wheels (data.pyg.org) for them
#   LIGHTGCN_PYG_INDEX=URL     try this wheel index page or folder of wheels instead of PyG's
#   LIGHTGCN_LATEST=1          the newest torch, torch-geometric and pandas instead of their
#                              pins (everything else stays pinned): CI's weekly check
#   LIGHTGCN_FORCE_SETUP=1     reinstall even if nothing changed
#   MAX_JOBS=N                 parallel compile jobs for 'sparse' (default: 2; background: 1)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$(pwd)"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
STAMP="$VENV/.lightgcn-setup"
SETUP_VERSION=1   # bump to force every existing .venv through set-up again

if [ -t 1 ]; then B=$'\033[1m' Y=$'\033[1;33m' R=$'\033[1;31m' N=$'\033[0m'; else B='' Y='' R='' N=''; fi
say()  { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
warn() { printf '%sWARNING: %s%s\n' "$Y" "$*" "$N" >&2; }
die()  { printf '%sERROR: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

usage() {  # the comment block at the top of this file
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

check_python() {  # $1: interpreter; dies with a readable message unless it is >= 3.10
  local py="$1"
  command -v "$py" >/dev/null 2>&1 \
    || die "'$py' not found. Install Python 3.10-3.12 (python.org, your package manager or conda), or run: PYTHON=/path/to/python3 ./workshop.sh ..."
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$("$py" -V 2>&1) is too old: the series needs Python >= 3.10. Run: PYTHON=/path/to/python3.11 ./workshop.sh ..."
}

latest() { [ "${LIGHTGCN_LATEST:-0}" != "0" ]; }

setup_hash() {  # fingerprint of everything that decides what gets installed
  local mode="v$SETUP_VERSION sparse=${LIGHTGCN_SKIP_SPARSE:-0}"
  if latest; then mode="$mode latest"; fi
  "$VPY" - "$mode" requirements.txt requirements-sparse.txt pyproject.toml <<'PY'
import hashlib, sys
h = hashlib.sha256(sys.argv[1].encode() + sys.version.encode())
for name in sys.argv[2:]:
    with open(name, "rb") as fh:
        h.update(fh.read())
print(h.hexdigest())
PY
}

pip_install() { "$VPY" -m pip install --progress-bar off "$@"; }

# The command that adds torch-sparse, as the skip line of tools/install_sparse.sh names it.
export LIGHTGCN_SPARSE_CMD="./workshop.sh sparse"

install_sparse() {  # optional and prebuilt only: a missing wheel prints one line, never fails
  bash "$ROOT/tools/install_sparse.sh" "$VPY" || true
}

sparse_reminder() {  # one line when torch-sparse is not installed (cheap: nothing is imported)
  [ "${LIGHTGCN_SKIP_SPARSE:-0}" = "0" ] || return 0
  local code='import importlib.util as u, sys; sys.exit(u.find_spec("torch_sparse") is None)'
  if ! "$VPY" -c "$code" 2>/dev/null; then
    say "torch-sparse is not installed: notebook 03's SparseTensor cells (and 04's SparseTensor" \
      "row, 08's mini-batch section) skip; add it with: ./workshop.sh sparse"
  fi
}

BUILD_LOG="$VENV/sparse-build.log"
BUILD_PID="$VENV/sparse-build.pid"

sparse_build() {  # $1: "--background" or empty; compile torch-scatter + torch-sparse on request
  if [ -f "$BUILD_PID" ] && kill -0 "$(cat "$BUILD_PID")" 2>/dev/null; then
    say "A torch-sparse build is already running (PID $(cat "$BUILD_PID")): tail -f $BUILD_LOG"
    return 0
  fi
  if [ "${1:-}" != "--background" ]; then
    bash "$ROOT/tools/install_sparse.sh" --build "$VPY"
    return
  fi
  # Lowest CPU priority and one compile job: the notebooks' training cells keep the CPU,
  # the compile takes what they leave (longer while training runs, so start it early).
  local nice=()
  if command -v nice >/dev/null 2>&1; then nice=(nice -n 19); fi
  MAX_JOBS=1 nohup ${nice[@]+"${nice[@]}"} bash "$ROOT/tools/install_sparse.sh" --build "$VPY" \
    > "$BUILD_LOG" 2>&1 < /dev/null &
  echo $! > "$BUILD_PID"
  say "Compiling torch-scatter + torch-sparse in the background (PID $!, nice 19, one job)."
  echo "    Progress: tail -f $BUILD_LOG  (it ends with 'torch-sparse OK' when done)."
  echo "    Then restart the notebook's kernel (Kernel -> Restart Kernel) to use SparseTensor."
}

install_packages() {  # requirements.txt, torch first
  # torch first and on its own: torch-sparse compiles against it, and pinning it here
  # keeps any later requirement from pulling a different (e.g. CUDA) build.
  # Under LIGHTGCN_LATEST (CI's weekly check) torch, torch-geometric and pandas come in
  # their newest releases and every other package stays pinned.
  if latest; then
    say "LIGHTGCN_LATEST is set: installing the newest torch, torch-geometric and pandas (not their pins)"
    pip_install --upgrade torch
    grep -v -E '^(torch|torch-geometric|pandas)==' requirements.txt > "$VENV/requirements-latest.txt"
    pip_install -r "$VENV/requirements-latest.txt"
    pip_install --upgrade torch torch-geometric pandas
    "$VPY" -c 'from importlib.metadata import version
print("    newest releases:", ", ".join(f"{p} {version(p)}" for p in ("torch", "torch-geometric", "pandas")))'
    return 0
  fi
  local torch_pin
  torch_pin="$(grep -E '^torch==' requirements.txt | head -n 1 | tr -d '[:space:]')"
  [ -n "$torch_pin" ] || die "requirements.txt has no 'torch==' pin"
  say "Installing $torch_pin"
  pip_install "$torch_pin"
  say "Installing requirements.txt"
  pip_install -r requirements.txt
}

lab_settings() {  # the room's JupyterLab settings (tools/lab-overrides.json: no news toast,
  # widget state saved with the notebook), through JupyterLab's own settings mechanism for
  # this environment (.venv/share/jupyter/lab/settings/overrides.d/), not your home folder
  local dir="$VENV/share/jupyter/lab/settings/overrides.d"
  mkdir -p "$dir" && cp "$ROOT/tools/lab-overrides.json" "$dir/lightgcn-workshop.json"
}

setup() {
  local t0 want
  t0=$(date +%s)
  if [ ! -x "$VPY" ]; then
    local py="${PYTHON:-python3}"
    check_python "$py"
    say "Creating the virtual environment .venv with $("$py" -V 2>&1)"
    "$py" -m venv "$VENV" \
      || die "could not create .venv. On Debian/Ubuntu install the venv module first: sudo apt install python3-venv"
  fi
  check_python "$VPY"

  want="$(setup_hash)"
  # LIGHTGCN_LATEST always installs: new releases appear without any file here changing.
  if [ "${LIGHTGCN_FORCE_SETUP:-0}" = "0" ] && ! latest && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "Environment .venv is up to date"
    sparse_reminder
    return 0
  fi

  say "Installing packages into .venv from prebuilt wheels (first time: 1-3 minutes, no compile)"
  pip_install --upgrade pip "setuptools>=64" wheel
  install_packages
  install_sparse
  say "Installing lightgcn_helpers (editable)"
  pip_install --quiet --no-deps --no-build-isolation -e .
  "$VPY" -c 'import lightgcn_helpers, torch, torch_geometric' \
    || die "the environment is broken: 'import lightgcn_helpers, torch, torch_geometric' failed. Delete .venv and run again."

  echo "$want" > "$STAMP"
  say "Set-up finished in $(( $(date +%s) - t0 )) s"
}

cmd="${1:-help}"
[ $# -gt 0 ] && shift
case "$cmd" in
  lab)
    setup
    lab_settings
    say "Opening JupyterLab on notebooks/ (stop it with Ctrl+C)"
    exec "$VENV/bin/jupyter" lab --notebook-dir="$ROOT/notebooks" ${1+"$@"}
    ;;
  test)
    setup
    say "Running the test suite: unit tests + nbval over every notebook"
    export LIGHTGCN_QUIET="${LIGHTGCN_QUIET:-1}"   # no progress bars, as in CI
    # PyTorch's OpenMP threads spin while they wait; on a shared or busy CPU (CI runners)
    # that slows small tensor operations by orders of magnitude. Passive waiting costs
    # little on a quiet machine and changes no result.
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
    t0=$(date +%s)
    status=0
    "$VPY" -m pytest ${1+"$@"} || status=$?
    say "Tests finished in $(( $(date +%s) - t0 )) s (exit code $status)"
    exit "$status"
    ;;
  setup)
    setup
    ;;
  sparse)
    setup
    sparse_build ${1+"$@"}
    ;;
  help|-h|--help)
    usage
    ;;
  *)
    usage >&2
    die "unknown command '$cmd' (use: lab, test, setup or sparse)"
    ;;
esac
