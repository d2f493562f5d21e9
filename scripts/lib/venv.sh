# shellcheck shell=bash
# Sourced by the scripts that need a Python tool from PyPI.

# venv_with DIR REQUIREMENTS: makes the venv DIR hold what REQUIREMENTS pins (by
# version and hash), installing when DIR is new or the file changed since it
# last installed it (a copy of the file in DIR records what it installed).
venv_with() {
  local dir=$1 requirements=$2
  if [ -x "$dir/bin/python" ] && cmp -s "$requirements" "$dir/installed-requirements.txt"; then
    return
  fi
  echo "==> installing $requirements (PyPI, pinned) into $dir"
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  # Every file's hash is in REQUIREMENTS: anything else PyPI (or a mirror)
  # serves under those names is refused.
  "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$requirements"
  cp "$requirements" "$dir/installed-requirements.txt"
}
