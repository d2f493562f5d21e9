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
# REHEARSE_VENV  the venv for moto[server], boto3 and PyYAML, at the versions
#                scripts/requirements/aws-emulator.txt pins (installed there
#                when missing or when the file changed); default: the venv of
#                $MOTO_SERVER if set, else /tmp/interstella-rehearse-venv
# Part 2 needs haproxy (apt-get install haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${REHEARSE_VENV:-}" ] && [ -n "${MOTO_SERVER:-}" ]; then
  REHEARSE_VENV=$(dirname "$(dirname "$MOTO_SERVER")")
fi
VENV=${REHEARSE_VENV:-/tmp/interstella-rehearse-venv}
# shellcheck source=scripts/lib/venv.sh
. scripts/lib/venv.sh
venv_with "$VENV" scripts/requirements/aws-emulator.txt
exec "$VENV/bin/python" scripts/rehearse/rehearse.py
