#!/usr/bin/env bash
# Writes THIRD-PARTY-NOTICES.txt (or the file named by $1): the license
# notices of what the service images ship, rendered by cargo-about (pinned in
# scripts/check-deps.sh) from about.toml and about.hbs. Offline: the crates
# must be in cargo's cache (`cargo fetch --locked` puts them there).
#
# cargo-about reads one package's graph or the whole workspace's, and has no
# `-p`: the workspace would add the launcher's, bench's and testkit's crates
# (rsa, sha1, procfs, crossterm, ...), which no image has. So it reads a
# package made here, outside the workspace, that depends on the four services
# (SERVICE_IMAGES) with their default features: the graph and features of the images'
# `cargo build -p monolith -p iridium -p magnesite -p hq`. It resolves with a
# copy of Cargo.lock, and must not move a version in it (checked below).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-THIRD-PARTY-NOTICES.txt}
# shellcheck source=scripts/lib/docker.sh disable=SC1091
. scripts/lib/docker.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/Cargo.toml" <<TOML
[workspace]

[package]
name = "interstella-images"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
path = "lib.rs"

[dependencies]
TOML
# The images' crates, as the images are listed once (a crate left out here
# would ship without its dependencies' notices).
for image in "${SERVICE_IMAGES[@]}"; do
  echo "$image = { path = \"$root/crates/$image\" }" >>"$tmp/Cargo.toml"
done
touch "$tmp/lib.rs"
cp Cargo.lock "$tmp/Cargo.lock"

CARGO_TERM_COLOR=never cargo about generate --offline --fail \
  --config about.toml --manifest-path "$tmp/Cargo.toml" \
  --output-file "$tmp/notices.txt" about.hbs

python3 - "$root/Cargo.lock" "$tmp/Cargo.lock" <<'PY'
import sys, tomllib
locked = lambda path: {(p["name"], p["version"]) for p in tomllib.load(open(path, "rb"))["package"]}
moved = sorted(locked(sys.argv[2]) - locked(sys.argv[1]) - {("interstella-images", "0.0.0")})
if moved:
    sys.exit("notices: resolved away from Cargo.lock: " + ", ".join(n + " " + v for n, v in moved))
PY
mv "$tmp/notices.txt" "$out"
