# shellcheck shell=bash
# A docker engine for the scripts that build or run the images: sourced, not
# run. Installs Debian's docker.io when dockerd is missing and starts dockerd
# in the background when none answers.
#
#   . scripts/lib/docker.sh
#   docker_engine_up "$WORK/dockerd.log"   # sets DOCKERD_STARTED_PID ('' if one ran)
#   ...
#   docker_engine_down                     # stops only the dockerd started above

DOCKERD_STARTED_PID=''

# docker_engine_up LOGFILE: make `docker info` answer, within 60 s.
docker_engine_up() {
  local log=$1 deadline
  if ! command -v dockerd >/dev/null; then
    echo "apt-get install docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  if docker info >/dev/null 2>&1; then
    echo "dockerd already running"
    return 0
  fi
  dockerd >"$log" 2>&1 &
  DOCKERD_STARTED_PID=$!
  echo "started dockerd (pid $DOCKERD_STARTED_PID, log $log)"
  deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "dockerd did not come up; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# docker_engine_down: stop the dockerd that docker_engine_up started, if any
# (waits up to 20 s for it to exit).
docker_engine_down() {
  [ -n "$DOCKERD_STARTED_PID" ] || return 0
  echo "stopping the dockerd started here (pid $DOCKERD_STARTED_PID)"
  kill "$DOCKERD_STARTED_PID" 2>/dev/null || return 0
  local deadline=$((SECONDS + 20))
  while kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  DOCKERD_STARTED_PID=''
}

# ---------------------------------------------------------------------------
# The service images of docker/Dockerfile, built and checked the same way by
# scripts/container-test.sh (amd64) and scripts/arm64-smoke.sh (arm64), which
# source scripts/lib/checks.sh first (pass, fail: the tally).

# The targets in the Dockerfile's order. They share one build stage that
# compiles all four services, so the first target compiles and the others
# come from the builder's cache.
SERVICE_IMAGES=(iridium magnesite hq monolith)
IMAGE_MAX_BYTES=20000000
declare -A IMAGE_BUILD_SECONDS=()

# image_port SERVICE: the port its image exposes.
image_port() {
  case $1 in
    monolith) echo 5000/tcp ;;
    hq) echo 4000/tcp ;;
    *) echo 80/tcp ;;
  esac
}

# build_service_images LOGDIR TAG_FORMAT [docker build option...]: every
# target built from docker/Dockerfile and the repository, unchanged, as a
# user builds it; tagged printf(TAG_FORMAT, target). Prints the step lines as
# progress and each build's seconds; the last lines of a failed build's log.
build_service_images() {
  local logdir=$1 format=$2 target tag t0
  shift 2
  for target in "${SERVICE_IMAGES[@]}"; do
    # shellcheck disable=SC2059 # the format is the caller's
    tag=$(printf "$format" "$target")
    echo "docker build -f docker/Dockerfile --target $target -t $tag $* ."
    t0=$SECONDS
    if docker build -f docker/Dockerfile --target "$target" -t "$tag" "$@" . 2>&1 |
      tee "$logdir/build-$target.log" | grep --line-buffered -E '^Step [0-9]+/'; then
      IMAGE_BUILD_SECONDS[$target]=$((SECONDS - t0))
      pass "built $tag in ${IMAGE_BUILD_SECONDS[$target]} s"
    else
      IMAGE_BUILD_SECONDS[$target]=-
      fail "docker build --target $target $*; last lines:"
      tail -n 30 "$logdir/build-$target.log"
    fi
  done
}

# check_service_images WORKDIR TAG_FORMAT MACHINE: each image at most 20 MB,
# user 65534:65534, its one port exposed, and its binary a static ELF for
# MACHINE (as `readelf -h` names it: "X86-64", "AArch64") that carries its
# crate list (cargo-auditable), and the third-party notices beside it. A
# static binary is what a `scratch` image can run: there is no dynamic loader
# in it.
check_service_images() {
  local work=$1 format=$2 machine=$3 target tag size user ports container bin
  for target in "${SERVICE_IMAGES[@]}"; do
    # shellcheck disable=SC2059 # the format is the caller's
    tag=$(printf "$format" "$target")
    docker image inspect "$tag" >/dev/null 2>&1 || continue
    size=$(docker image inspect -f '{{.Size}}' "$tag")
    user=$(docker image inspect -f '{{.Config.User}}' "$tag")
    ports=$(docker image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$tag")
    if [ "$size" -le "$IMAGE_MAX_BYTES" ]; then
      pass "image $tag is $((size / 1000)) kB (<= 20 MB)"
    else
      fail "image $tag is $size bytes (> 20 MB)"
    fi
    if [ "$user" = "65534:65534" ] && [ "${ports% }" = "$(image_port "$target")" ]; then
      pass "image $tag runs as $user and exposes ${ports% }"
    else
      fail "image $tag: user '$user', ports '$ports' (want 65534:65534, $(image_port "$target"))"
    fi
    bin=$work/$target.bin
    container=$(docker create "$tag")
    docker cp "$container:/$target" "$bin" >/dev/null
    if docker cp "$container:/usr/share/doc/interstella/THIRD-PARTY-NOTICES.txt" "$work/$target.notices" >/dev/null 2>&1 \
      && cmp -s "$work/$target.notices" THIRD-PARTY-NOTICES.txt; then
      pass "image $tag carries THIRD-PARTY-NOTICES.txt (and LICENSE) in /usr/share/doc/interstella"
    else
      fail "image $tag: no current THIRD-PARTY-NOTICES.txt in /usr/share/doc/interstella"
    fi
    docker rm "$container" >/dev/null
    if readelf -h "$bin" | grep -q "Machine:.*$machine" && ! readelf -lW "$bin" | grep -q 'program interpreter'; then
      pass "image $tag: /$target is a static $machine binary ($(stat -c %s "$bin") bytes)"
    else
      fail "image $tag: /$target is not a static $machine binary: $(readelf -h "$bin" | grep Machine)"
    fi
    if readelf -SW "$bin" | grep -q '\.dep-v0'; then
      pass "image $tag: /$target carries its crate list for image scanners (cargo-auditable's .dep-v0)"
    else
      fail "image $tag: /$target has no .dep-v0 section: scanners cannot see its crates"
    fi
  done
}

# service_image_sizes TAG_FORMAT: one line per image: build seconds, size.
service_image_sizes() {
  local format=$1 target tag size
  printf '%-24s %8s %9s\n' image build_s size_kB
  for target in "${SERVICE_IMAGES[@]}"; do
    # shellcheck disable=SC2059 # the format is the caller's
    tag=$(printf "$format" "$target")
    size=$(docker image inspect -f '{{.Size}}' "$tag" 2>/dev/null || echo 0)
    printf '%-24s %8s %9s\n' "$tag" "${IMAGE_BUILD_SECONDS[$target]:--}" "$((size / 1000))"
  done
}
