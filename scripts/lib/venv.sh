# shellcheck shell=bash disable=SC2034  # VENV_PY is read by the scripts that source this file
# Sourced by scripts/check-k8s and scripts/check-nix: makes sure the private Python venv with the
# pinned tools of scripts/lib/ci-requirements.txt exists, and sets $VENV_PY to its interpreter.
#
# The venv lives outside the repository, under ${XDG_CACHE_HOME:-$HOME/.cache}/journeyman-ci/, and is
# rebuilt when the requirements file changes (a stamp holds its checksum). Only PyPI is contacted.

ci_venv() {
  local here req cache venv stamp want
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  req="$here/ci-requirements.txt"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/journeyman-ci"
  venv="$cache/venv"
  stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$req" | cut -d' ' -f1)"

  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    VENV_PY="$venv/bin/python"
    return 0
  fi

  if ! command -v python3 >/dev/null 2>&1; then
    echo "error: python3 is not installed; install it (Debian: apt-get install python3 python3-venv)" >&2
    return 1
  fi
  echo "-- creating the Python venv $venv (tools pinned in scripts/lib/ci-requirements.txt)"
  rm -rf "$venv"
  mkdir -p "$cache"
  if ! python3 -m venv "$venv"; then
    echo "error: python3 cannot create a venv; on Debian: apt-get install python3-venv" >&2
    return 1
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$req"
  echo "$want" >"$stamp"
  VENV_PY="$venv/bin/python"
}
