#!/usr/bin/env bash
# The GPU check from a fresh checkout: set up .venv (tools/bootstrap.sh, the README's setup; a
# no-op when it is up to date), then run tools/gpu_check.py with this script's arguments under
# it. On Linux the pinned torch wheel is a CUDA build; a machine with an NVIDIA driver needs
# nothing else. `bash tools/gpu_check.sh --help` lists the parts and the options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
bash tools/bootstrap.sh
setup_s=$(( $(date +%s) - start ))
exec "${CSGR_VENV:-$root/.venv}/bin/python" tools/gpu_check.py \
  --via "bash tools/gpu_check.sh" --setup-s "$setup_s" "$@"
