#!/usr/bin/env bash
# The base images docker/Dockerfile and docker/compose.yaml name, made on this
# machine for a machine that cannot pull from a registry:
#
#   debian:bookworm-slim   Debian bookworm (debootstrap --variant=minbase from
#                          the Debian mirror apt uses here) plus this machine's
#                          extra CA certificates; the proxy image's base.
#   rust:1.99-bookworm     that, plus a C toolchain (gcc, make, ...) as in the
#                          official rust image, and this machine's Rust
#                          toolchain under /usr/local/rustup + /usr/local/cargo
#                          (rustc, cargo, std, clippy, rustfmt; no docs, no
#                          extra targets, so `rustup target add` really
#                          downloads, as with the official image).
#
# `scratch` needs nothing: both builders treat it as the empty image.
#
# The extra CA certificates (/usr/local/share/ca-certificates/*.crt, e.g. a
# TLS-intercepting proxy's) are trusted inside both images, so apt, rustup and
# cargo reach their servers from a `docker build` as they do from the host.
#
# Idempotent: an image that exists is kept (BASE_IMAGES_REBUILD=1 remakes
# them). Starts dockerd if none answers and leaves it running for the builds
# that follow. Needs root (debootstrap, chroot).
#
# Settings: RUST_VERSION (default 1.99, as in docker/Dockerfile),
# DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (default: the first deb.debian.org-
# style URI in /etc/apt/sources.list*, else http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."
# scripts/lib/docker.sh is linted on its own (shellcheck -x follows it here).
# shellcheck source=scripts/lib/docker.sh disable=SC1091
. scripts/lib/docker.sh

RUST_VERSION=${RUST_VERSION:-1.99}
SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_IMAGE=debian:$SUITE-slim
RUST_IMAGE=rust:$RUST_VERSION-$SUITE
HOST_TRIPLE=x86_64-unknown-linux-gnu
# Rust components the image keeps (the official image's minimal profile plus
# clippy and rustfmt).
KEEP_COMPONENTS=(rustc cargo "rust-std" clippy-preview rustfmt-preview)
# What the official image's buildpack-deps base offers a Rust build: a C
# compiler and linker for build scripts (-sys crates), make, pkg-config, git.
BUILD_PACKAGES=(gcc libc6-dev make pkg-config git curl xz-utils file patch)

WORK=$(mktemp -d /var/tmp/interstella-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n==> %s\n' "$*"; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
# rootfs_run CMD...: run a command inside the root file system being made.
rootfs_run() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$(grep -rhoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    grep -oE 'https?://[^ ]+' | grep -v security | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# host_toolchain: the sysroot of an installed host toolchain whose rustc is
# RUST_VERSION (1.99 matches 1.99.x).
host_toolchain() {
  local tc sysroot version
  command -v rustup >/dev/null || return 1
  for tc in $(rustup toolchain list | awk '{print $1}'); do
    case "$tc" in *"$HOST_TRIPLE") ;; *) continue ;; esac
    version=$(rustup run "$tc" rustc --version 2>/dev/null | awk '{print $2}') || continue
    if [ "$version" = "$RUST_VERSION" ] || [[ $version == "$RUST_VERSION".* ]]; then
      sysroot=$(rustup run "$tc" rustc --print sysroot)
      echo "$version $sysroot"
      return 0
    fi
  done
  return 1
}

# strip_components DIR: remove the components not in KEEP_COMPONENTS from the
# toolchain copied to DIR, files and records both, so rustup sees a toolchain
# that never had them.
strip_components() {
  local dir=$1 comp keep k path kept=()
  while read -r comp; do
    keep=''
    for k in "${KEEP_COMPONENTS[@]}"; do
      if [ "$comp" = "$k-$HOST_TRIPLE" ]; then keep=1; fi
    done
    if [ -n "$keep" ]; then
      kept+=("$comp")
      continue
    fi
    echo "  leaving out $comp"
    while IFS=: read -r _ path; do
      rm -rf "${dir:?}/$path"
    done <"$dir/lib/rustlib/manifest-$comp"
    rm -f "$dir/lib/rustlib/manifest-$comp"
  done <"$dir/lib/rustlib/components"
  printf '%s\n' "${kept[@]}" >"$dir/lib/rustlib/components"
  # rustup's own record of the installed components (`rustup target list`).
  {
    echo 'config_version = "1"'
    for comp in "${kept[@]}"; do
      printf '\n[[components]]\npkg = "%s"\ntarget = "%s"\nis_extension = false\n' \
        "${comp%-"$HOST_TRIPLE"}" "$HOST_TRIPLE"
    done
  } >"$dir/lib/rustlib/multirust-config.toml"
}

# import ROOTFS IMAGE [--change ...]: the directory as a one-layer image.
import() {
  local dir=$1 image=$2
  shift 2
  echo "docker import $image ($(du -sh "$dir" | cut -f1))"
  tar --numeric-owner -C "$dir" -c . | docker import "$@" - "$image" >/dev/null
}

step "docker engine"
# Left running for the image builds that follow, so its log is not in $WORK.
docker_engine_up /var/tmp/interstella-dockerd.log

if [ -n "${BASE_IMAGES_REBUILD:-}" ]; then
  docker rmi "$RUST_IMAGE" "$DEBIAN_IMAGE" >/dev/null 2>&1 || true
fi
if have_image "$DEBIAN_IMAGE" && have_image "$RUST_IMAGE"; then
  echo "$DEBIAN_IMAGE and $RUST_IMAGE present: nothing to do"
  exit 0
fi

# Checked before the long steps.
read -r TOOLCHAIN_VERSION TOOLCHAIN_DIR < <(host_toolchain || true) || true
if [ -z "${TOOLCHAIN_DIR:-}" ]; then
  echo "no host Rust toolchain with rustc $RUST_VERSION (rustup toolchain install $RUST_VERSION)" >&2
  exit 1
fi
CA_FILES=(/usr/local/share/ca-certificates/*.crt)
[ -e "${CA_FILES[0]}" ] || CA_FILES=()

ROOTFS=$WORK/rootfs
if have_image "$DEBIAN_IMAGE"; then
  step "Debian $SUITE root file system (from $DEBIAN_IMAGE)"
  mkdir "$ROOTFS"
  container=$(docker create "$DEBIAN_IMAGE")
  docker export "$container" | tar --numeric-owner -C "$ROOTFS" -x
  docker rm "$container" >/dev/null
else
  step "Debian $SUITE root file system (debootstrap)"
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  MIRROR=$(debian_mirror)
  SECURITY_MIRROR=${MIRROR%/debian*}/debian-security
  t0=$SECONDS
  echo "debootstrap --variant=minbase $SUITE from $MIRROR"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 20 "$WORK/debootstrap.log" >&2
    exit 1
  }
  cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  echo "  ${#CA_FILES[@]} extra CA certificate(s) trusted: ${CA_FILES[*]:-none}"
  if [ "${#CA_FILES[@]}" -gt 0 ]; then
    cp "${CA_FILES[@]}" "$ROOTFS/usr/local/share/ca-certificates/"
  fi
  # (Its stderr only warns that the bundle itself holds many certificates.)
  rootfs_run update-ca-certificates 2>/dev/null | grep -v '^Updating' || true
  rm -rf "${ROOTFS:?}"/var/cache/apt/archives/*.deb "${ROOTFS:?}"/var/lib/apt/lists/* "${ROOTFS:?}"/var/log/*.log
  echo "  took $((SECONDS - t0)) s"
  import "$ROOTFS" "$DEBIAN_IMAGE" --change 'CMD ["bash"]'
fi

if ! have_image "$RUST_IMAGE"; then
  step "$RUST_IMAGE: build packages and the host's Rust $TOOLCHAIN_VERSION"
  t0=$SECONDS
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  echo "apt-get install ${BUILD_PACKAGES[*]}"
  # (apt's stderr: warnings about the missing /dev/pts of a bare chroot.)
  rootfs_run apt-get update -qq 2>"$WORK/apt.log"
  rootfs_run apt-get install -y -qq --no-install-recommends "${BUILD_PACKAGES[@]}" >>"$WORK/apt.log" 2>&1 || {
    tail -n 20 "$WORK/apt.log" >&2
    exit 1
  }
  rootfs_run apt-get clean
  rm -rf "${ROOTFS:?}"/var/lib/apt/lists/* "${ROOTFS:?}"/var/log/*.log
  : >"$ROOTFS/etc/resolv.conf"

  # The layout of the official image: RUSTUP_HOME=/usr/local/rustup,
  # CARGO_HOME=/usr/local/cargo, rustup's proxies in /usr/local/cargo/bin.
  TC_NAME=$TOOLCHAIN_VERSION-$HOST_TRIPLE
  RUSTUP_DIR=$ROOTFS/usr/local/rustup
  CARGO_DIR=$ROOTFS/usr/local/cargo
  mkdir -p "$RUSTUP_DIR/toolchains/$TC_NAME" "$CARGO_DIR/bin"
  echo "copying $TOOLCHAIN_DIR as toolchain $TC_NAME"
  cp -a "$TOOLCHAIN_DIR/." "$RUSTUP_DIR/toolchains/$TC_NAME/"
  strip_components "$RUSTUP_DIR/toolchains/$TC_NAME"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$TC_NAME" >"$RUSTUP_DIR/settings.toml"
  cp "$(readlink -f "$(command -v rustup)")" "$CARGO_DIR/bin/rustup"
  for proxy in cargo rustc rustdoc cargo-clippy clippy-driver cargo-fmt rustfmt rust-gdb rust-lldb; do
    ln -s rustup "$CARGO_DIR/bin/$proxy"
  done
  chmod -R a+w "$RUSTUP_DIR" "$CARGO_DIR"
  echo "  took $((SECONDS - t0)) s"
  import "$ROOTFS" "$RUST_IMAGE" \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$TOOLCHAIN_VERSION" \
    --change 'CMD ["bash"]'
fi

step "checking the images"
docker run --rm "$DEBIAN_IMAGE" cat /etc/debian_version
docker run --rm "$RUST_IMAGE" sh -c 'cargo --version && rustc --version && rustup target list --installed && cc --version | head -n 1'
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^($DEBIAN_IMAGE|$RUST_IMAGE) "
