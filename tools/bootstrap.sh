#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv, git-ignored) with the pinned
# dependencies of requirements.txt, Detectron2 (tools/install_detectron2.py) and `csgr`
# installed editable. A stamp of the inputs makes a second run a no-op when nothing changed.
#
# Environment:
#   PYTHON                  interpreter to build the venv from (default: python3)
#   CSGR_VENV               venv location (default: <repo>/.venv)
#   CSGR_DETECTRON2_SOURCE  Detectron2 checkout or pip requirement to install (optional)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CSGR_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

stamp_of_inputs() {
  { cat "$root/requirements.txt" "$root/setup.py" "$root/tools/install_detectron2.py"
    echo "source=${CSGR_DETECTRON2_SOURCE:-}"; "$python" --version; } | sha256sum | cut -d' ' -f1
}
want="$(stamp_of_inputs)"
if [ -f "$venv/.csgr-stamp" ] && [ "$(cat "$venv/.csgr-stamp")" = "$want" ]; then
  exit 0
fi

echo "[bootstrap] setting up $venv (takes a few minutes the first time)" >&2
if [ ! -x "$venv/bin/python" ]; then
  venv_flags=()
  # A Detectron2 the base interpreter already has (a user's own CUDA build) stays visible.
  if "$python" -c "import detectron2" >/dev/null 2>&1; then
    echo "[bootstrap] $python already imports detectron2: the venv will see its site-packages" >&2
    venv_flags+=(--system-site-packages)
  fi
  "$python" -m venv "${venv_flags[@]}" "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q -r "$root/requirements.txt"
"$venv/bin/python" "$root/tools/install_detectron2.py"
"${pip[@]}" install -q --no-deps --no-build-isolation -e "$root"
echo "$want" > "$venv/.csgr-stamp"
echo "[bootstrap] ready: $venv" >&2
