#!/usr/bin/env bash
# Set up a fresh Debian machine for ese: system packages (as root), then a virtual environment.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng libespeak-ng1
              flite libflite1  # flite: the proxy split's synthesiser (docs/synth-corpus.md)
              libsndfile1 python3-venv yosys iverilog verilator graphviz
              chromium)  # chromium: tests open report.html headless (tests/chromium_check.py)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages; run this as root, then re-run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: ese needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_install() {  # quiet unless it fails; then show pip's log and stop
  local log; log=$(mktemp)
  if ! "$VENV/bin/python" -m pip install "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"; echo "setup: pip install $* failed" >&2; exit 1
  fi
  rm -f "$log"
}
pip_install --upgrade pip
# The CPU build of torch 2.13 (a plain 'torch' requirement could pull a multi-GB CUDA build).
"$VENV/bin/python" -c 'import torch' 2>/dev/null || pip_install torch==2.13.0
pip_install -e '.[test,distributed]'  # distributed: Ray, for the --backend ray tests
"$VENV/bin/python" -c 'import ese, torch; print(f"setup: ese {ese.__version__}, torch {torch.__version__} ready")'
