# shellcheck shell=bash
# Sourced by the scripts that need a Python tool from PyPI.

# venv_with DIR REQUIREMENTS: makes the venv DIR hold what REQUIREMENTS pins (by
# version and hash), installing when DIR is new or the file changed since it
# last installed it (a copy of the file in DIR records what it installed).
venv_with() {
  local dir=$1 requirements=$2
  if [ -x "$dir/bin/pip" ] && cmp -s "$requirements" "$dir/installed-requirements.txt"; then
    return
  fi
  echo "==> installing $requirements (PyPI, pinned) into $dir"
  # No pip: DIR is new, or half made by a venv that failed (Debian's python3
  # without python3-venv leaves bin/python and no pip): made anew.
  [ -x "$dir/bin/pip" ] || python3 -m venv --clear "$dir"
  # Every file's hash is in REQUIREMENTS: anything else PyPI (or a mirror)
  # serves under those names is refused.
  "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$requirements"
  cp "$requirements" "$dir/installed-requirements.txt"
}
