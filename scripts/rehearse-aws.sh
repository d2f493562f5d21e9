#!/usr/bin/env bash
# The workshop on AWS, rehearsed without AWS (scripts/rehearse/rehearse.py):
# deploy/hq.yaml and deploy/interstella.yaml created in moto, their resources
# checked, then (with BIN_DIR) the platform run as the stacks say, all on
# 127.0.0.1. Ends with "N passed, N failed"; exits non-zero on a failure.
#
#   BIN_DIR=target/debug scripts/rehearse-aws.sh
#
# BIN_DIR        directory holding the built hq, monolith, iridium and
#                magnesite (cargo build -p hq -p monolith -p iridium -p magnesite);
#                unset: the stacks only (part 1)
# REHEARSE_VENV  a venv with moto[server] 5, boto3 and PyYAML; default: the
#                venv of $MOTO_SERVER if set, else /tmp/interstella-rehearse-venv
#                (made on first use from PyPI)
# Part 2 needs haproxy (apt-get install haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${REHEARSE_VENV:-}" ] && [ -n "${MOTO_SERVER:-}" ]; then
  REHEARSE_VENV=$(dirname "$(dirname "$MOTO_SERVER")")
fi
VENV=${REHEARSE_VENV:-/tmp/interstella-rehearse-venv}
if ! "$VENV/bin/python" -c 'import moto.server, boto3, yaml' 2>/dev/null; then
  echo "==> installing moto[server], boto3 and PyYAML (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]>=5,<6" boto3 pyyaml
fi
exec "$VENV/bin/python" scripts/rehearse/rehearse.py
