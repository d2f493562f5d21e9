#!/usr/bin/env bash
# Dependency audit: cargo-deny's checks (deny.toml) on the whole workspace,
# then what the shipped binaries may link.
#
# 1. cargo-deny licenses, bans, sources: always, offline from Cargo.lock.
# 2. cargo-deny advisories: needs the RustSec database, which cargo-deny
#    clones from GitHub. Where GitHub cannot be reached (this project's build
#    machine reaches crates.io only) the check cannot run; it says so in a
#    WARNING line rather than pass silently, and CHECK_ADVISORIES=require
#    makes that a failure. A clone of the database reachable from there (a
#    mirror, or a directory) is used when git is told to fetch it instead:
#    `git config --global url.<mirror>.insteadOf
#    https://github.com/RustSec/advisory-db` (cargo-deny clones with git,
#    spelling the URL so). Step 3 still keeps the one advisory we know of
#    (RUSTSEC-2023-0071, rsa, no fixed release) out of every shipped binary.
# 3. The shipped binaries (monolith, iridium, magnesite, hq and the launcher
#    `interstella`), built the way the images build them: one HTTPS and
#    crypto stack (rustls 0.23 on aws-lc-rs, hyper 1), no ring, no RustCrypto
#    RSA or SHA-1, no OpenSSL, and the AWS SDK only where AWS is called: the
#    monolith (reads SSM) and HQ (publishes to SNS on AWS); never in the
#    microservices.
# 4. The workspace's rust-version is at least what every locked crate asks
#    for, so the claim stays true when Cargo.lock moves, and the README's
#    set-up names it ("<rust-version> or newer").
# 5. rust-toolchain.toml (what CI builds and lints with) is the Rust
#    docker/Dockerfile ships (its RUST_VERSION), and no older than the
#    workspace's rust-version.
#
# 6. THIRD-PARTY-NOTICES.txt (shipped in every image) is what
#    scripts/notices.sh renders now: the notices of exactly what the images
#    link.
#
# Installs cargo-deny and cargo-about (pinned) with `cargo install --locked`
# if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/checks.sh
. scripts/lib/checks.sh

DENY_VERSION=0.20.2
ABOUT_VERSION=0.9.3
SHIPPED=(monolith iridium magnesite hq interstella)

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]; then
  echo "==> cargo install --locked cargo-deny $DENY_VERSION"
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
fi
# cargo-about's binary needs its `cli` feature (without it, install builds
# the library and installs nothing).
if [ "$(cargo about --version 2>/dev/null)" != "cargo-about $ABOUT_VERSION" ]; then
  echo "==> cargo install --locked --features cli cargo-about $ABOUT_VERSION"
  cargo install --locked --quiet --features cli cargo-about --version "$ABOUT_VERSION"
fi

echo "==> cargo deny check licenses bans sources"
cargo deny --locked check licenses bans sources

echo "==> cargo deny check advisories"
if cargo deny --locked fetch db; then
  cargo deny --locked check advisories
elif [ "${CHECK_ADVISORIES:-}" = require ]; then
  echo "the RustSec advisory database could not be fetched" >&2
  exit 1
else
  echo "WARNING: advisories NOT checked: the RustSec advisory database (GitHub) could not be fetched;" \
    "with a mirror, git config --global url.<mirror>.insteadOf https://github.com/RustSec/advisory-db" >&2
fi

# shipped_tree TARGET PACKAGE...: every crate the packages link (normal
# dependencies) for TARGET (`all`: any target), one "name vX.Y.Z" per line.
shipped_tree() {
  local target=$1 packages=()
  shift
  for package in "$@"; do
    packages+=(-p "$package")
  done
  cargo tree --locked -e normal --target "$target" --prefix none --format '{p}' "${packages[@]}" |
    sed 's/ (.*//' | sort -u
}

FAILED=0
# refuse PATTERN WHY CRATES: fails if a line of CRATES matches PATTERN.
refuse() {
  local found
  found=$(grep -E "$1" <<<"$3" || true)
  if [ -n "$found" ]; then
    echo "FAIL: $2:" >&2
    while IFS= read -r line; do echo "  $line" >&2; done <<<"$found"
    FAILED=1
  fi
}

echo "==> what the shipped binaries link (${SHIPPED[*]})"
all=$(shipped_tree all "${SHIPPED[@]}")
# Guard against an empty tree passing every check below.
grep -qE '^aws-lc-rs v1\.' <<<"$all" || { echo "FAIL: no aws-lc-rs in the shipped tree?" >&2; exit 1; }
refuse '^(ring|openssl|openssl-sys) v' "a second crypto library" "$all"
refuse '^(rsa|sha1) v' "RustCrypto RSA / SHA-1 (RUSTSEC-2023-0071); SNS signatures go through aws-lc-rs" "$all"
refuse '^(hyper v0\.|h2 v0\.[0-3]\.|http v0\.|rustls v0\.(1|2[0-2])\.|hyper-rustls v0\.2[0-6]\.)' \
  "a legacy HTTPS stack (hyper 0.14, rustls 0.21)" "$all"
microservices=$(shipped_tree all iridium magnesite)
refuse '^aws-(config|sdk-)' "the AWS SDK in a microservice" "$microservices"
images=$(shipped_tree x86_64-unknown-linux-musl "${SHIPPED[@]}")
echo "$(wc -l <<<"$all") crates in the shipped binaries for any target, $(wc -l <<<"$images") for the images' (musl)"

echo "==> THIRD-PARTY-NOTICES.txt against what the images link"
# scripts/notices.sh reads the crates' sources offline: fetch them first.
cargo fetch --locked --quiet
notices=$(mktemp)
if ! scripts/notices.sh "$notices"; then
  echo "FAIL: scripts/notices.sh could not render the notices" >&2
  FAILED=1
elif ! cmp -s "$notices" THIRD-PARTY-NOTICES.txt; then
  echo "FAIL: THIRD-PARTY-NOTICES.txt is stale (the images' crates or the notices' template changed):" >&2
  diff -u THIRD-PARTY-NOTICES.txt "$notices" | head -n 40 >&2 || true
  echo "  regenerate it with scripts/notices.sh and commit it" >&2
  FAILED=1
else
  echo "THIRD-PARTY-NOTICES.txt is up to date"
fi
rm -f "$notices"

echo "==> the workspace's rust-version against every locked crate's"
cargo metadata --locked --format-version 1 | python3 -c '
import json, sys
packages = json.load(sys.stdin)["packages"]
version = lambda text: tuple(int(part) for part in text.split("."))
ours = {p["rust_version"] for p in packages if p["source"] is None}
if len(ours) != 1 or None in ours:
    sys.exit("FAIL: the workspace members should share one rust-version, found {}".format(ours))
ours = ours.pop()
above = sorted("{} v{} asks for {}".format(p["name"], p["version"], p["rust_version"])
               for p in packages
               if p["source"] is not None and p["rust_version"]
               and version(p["rust_version"]) > version(ours))
if above:
    sys.exit("FAIL: rust-version {} is older than locked crates ask for:\n  {}".format(ours, "\n  ".join(above)))
print("rust-version {}: every locked crate builds with it".format(ours))
if "{} or newer".format(ours) not in open("README.md").read():
    sys.exit("FAIL: the README does not say \"{} or newer\"".format(ours))
' || FAILED=1

echo "==> rust-toolchain.toml against docker/Dockerfile's RUST_VERSION and the rust-version"
pinned=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
shipped=$(sed -n 's/^ARG RUST_VERSION=//p' docker/Dockerfile)
wanted=$(workspace_rust_version)
# A channel without its patch (rustup's "1.99") is that minor's newest.
[[ $pinned =~ ^[0-9]+\.[0-9]+$ ]] && newest=$pinned.999 || newest=$pinned
if [ -z "$pinned" ] || [ -z "$shipped" ] || [[ $pinned != "$shipped" && $pinned != "$shipped".* ]]; then
  echo "FAIL: rust-toolchain.toml's channel ($pinned) is not docker/Dockerfile's RUST_VERSION ($shipped)" >&2
  FAILED=1
elif [ -z "$wanted" ] || [ "$(printf '%s\n%s\n' "$wanted" "$newest" | sort -V | head -n 1)" != "$wanted" ]; then
  echo "FAIL: rust-toolchain.toml's channel ($pinned) is older than the workspace's rust-version ($wanted)" >&2
  FAILED=1
else
  echo "CI's Rust $pinned is the images' ($shipped), and no older than the rust-version ($wanted)"
fi

exit "$FAILED"
