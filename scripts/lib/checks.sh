# shellcheck shell=bash
# What the test scripts share: steps, a tally of passed and failed checks,
# and polling with a deadline. Sourced, not run.
#
#   . scripts/lib/checks.sh
#   step "building"; pass "it built"; fail "it did not"
#   wait_for "HQ" 30 curl -fsS http://127.0.0.1:4000/topics
#   printf '%s passed, %s failed\n' "$PASSED" "$FAILED"

PASSED=0 FAILED=0

step() { printf '\n==> %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL: %s\n' "$*"; }
now_ms() { date +%s%3N; }

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 limit=$2 deadline
  shift 2
  deadline=$(($(now_ms) + limit * 1000))
  until "$@" >/dev/null 2>&1; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      echo "timed out after ${limit}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# ensure_toolchain: install the Rust that rust-toolchain.toml pins (with
# its components and targets) when rustup runs cargo and lacks it. rustup
# installs it on first use only where automatic installs are on: not in
# rustup 1.28.0, nor with RUSTUP_AUTO_INSTALL=0, and then the first cargo
# command fails with "toolchain '1.99.1-…' is not installed". A toolchain
# picked another way (`cargo +stable`, RUSTUP_TOOLCHAIN) is left as it is.
ensure_toolchain() {
  command -v rustup >/dev/null 2>&1 || return 0
  rustup show active-toolchain >/dev/null 2>&1 && return 0
  echo "==> rustup toolchain install (the Rust rust-toolchain.toml pins; this rustup does not install it on first use)"
  rustup toolchain install
}

# workspace_rust_version: the rust-version Cargo.toml states (the first
# written, the workspace's), for the checks that hold toolchains to it.
workspace_rust_version() {
  sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1
}

# warn_if_short_of_space DIR GB WHAT: a WARNING line when the file system
# holding DIR (or its nearest existing parent) has less than GB gigabytes
# free. A build that runs out of space fails late and obscurely (the linker
# dies of a bus error, or cargo cannot write its dep-graph), so say so first.
warn_if_short_of_space() {
  local dir=$1 need=$2 what=$3 free
  while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
  free=$(df -Pk "$dir" | awk 'NR == 2 { print int($4 / 1048576) }')
  if [ "$free" -lt "$need" ]; then
    echo "WARNING: $what takes about $need GB of disk; $free GB are free under $dir." \
      "A build that runs out fails late, with 'No space left on device' or a linker's bus error." >&2
  fi
}
