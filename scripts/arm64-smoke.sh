#!/usr/bin/env bash
# The arm64 (Graviton) images: built from docker/Dockerfile by cross-compiling
# (the compiler runs natively here; only its output is aarch64), then run
# under QEMU user emulation on this machine:
#   1. scripts/base-images.sh makes the base images unless present;
#   2. `docker build -f docker/Dockerfile --build-arg TARGETARCH=arm64
#      --target T .` for every service, unchanged (the classic builder; with
#      BuildKit `--platform linux/arm64` sets TARGETARCH), tagged `T:arm64`;
#   3. each image: at most 20 MB, user 65534:65534, its port exposed, its
#      binary a static AArch64 executable (scripts/lib/docker.sh, the checks
#      scripts/container-test.sh runs on the amd64 images);
#   4. the four arm64 binaries, taken out of the images, run under
#      qemu-aarch64-static (Debian's qemu-user-static): HQ as the fulfillment
#      API, the monolith, iridium and magnesite. Each answers its health
#      check; one bundle order to the monolith and one order to each
#      microservice (which calls the monolith's /fulfill/) are fulfilled in
#      HQ's ledger; jemalloc reports its 64 KiB page (.cargo/config.toml);
#      SIGTERM ends each with exit code 0. (HQ is started again if it aborts
#      before listening, at most twice: see start_hq.)
# Prints 'N passed, N failed'; exits non-zero on any failure. Leaves the
# images and the dockerd it may start; stops the processes it started.
#
# Settings: ARM_PORT_BASE (default 16000; uses BASE..BASE+3), ARM_TIMEOUT
# (whole run, seconds, default 3600).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${_ARM_BOUNDED:-}" ]; then
  exec env _ARM_BOUNDED=1 timeout --foreground -k 15 "${ARM_TIMEOUT:-3600}" "$0" "$@"
fi
# scripts/lib/*.sh are linted on their own (shellcheck -x follows them here).
# shellcheck source=scripts/lib/checks.sh disable=SC1091
. scripts/lib/checks.sh
# shellcheck source=scripts/lib/docker.sh disable=SC1091
. scripts/lib/docker.sh

BASE=${ARM_PORT_BASE:-16000}
P_HQ=$BASE P_MONO=$((BASE + 1)) P_IRI=$((BASE + 2)) P_MAG=$((BASE + 3))
API_KEY="arm-key-$$"
ADMIN_TOKEN="arm-admin-token-$$"
HOOK_SECRET="arm-glue-hook-secret-$$"
export DOCKER_BUILDKIT=0
WORK=$(mktemp -d /tmp/interstella-arm64.XXXXXX)
declare -A PIDS=()


cleanup() {
  local rc=$? svc
  set +e
  for svc in "${!PIDS[@]}"; do
    kill "${PIDS[$svc]}" 2>/dev/null
    wait "${PIDS[$svc]}" 2>/dev/null
    if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
      echo "--- last lines of $svc"
      tail -n 10 "$WORK/$svc.log"
    fi
  done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# start SERVICE VAR=VALUE...: the arm64 binary under QEMU, with that
# environment and stats of jemalloc printed at exit.
start() {
  local svc=$1
  shift
  env "$@" MALLOC_CONF=stats_print:true \
    qemu-aarch64-static "$WORK/$svc.bin" >"$WORK/$svc.log" 2>&1 &
  PIDS[$svc]=$!
  echo "qemu-aarch64-static $svc (pid ${PIDS[$svc]})"
}

# start_hq VAR=VALUE...: HQ, as `start` does, made again if it aborts before
# it listens, at most twice. Its first start makes its signing key, the first
# draw here on aws-lc's random generator, whose CPU-jitter seeding runs a
# timing health test first. Under QEMU's emulated counter that test fails in
# about one start in ten (5 of 40 with QEMU's default CPU, 4 of 80 as
# neoverse-n1) and aws-lc aborts; real hardware times natively. A binary
# that aborts every time still fails, and each retry is said.
start_hq() {
  local attempt code
  for attempt in 1 2 3; do
    start hq "$@"
    wait_for "hq to listen or stop" 60 hq_listens_or_stopped || return 0
    kill -0 "${PIDS[hq]}" 2>/dev/null && return 0
    code=0
    wait "${PIDS[hq]}" || code=$?
    [ "$code" = 134 ] && [ "$attempt" -lt 3 ] || return 0
    echo "hq (arm64, QEMU) aborted before listening (start $attempt of 3; under QEMU most likely aws-lc's" \
      "jitter-entropy test: see start_hq), starting it again; its log:"
    tail -n 3 "$WORK/hq.log"
  done
}

hq_listens_or_stopped() {
  curl -fsS "http://127.0.0.1:$P_HQ/topics" || ! kill -0 "${PIDS[hq]}"
}

# The ledger's totals for the key: fulfillments iridium magnesite.
totals() {
  curl -fsS -H "x-api-key: $API_KEY" "http://127.0.0.1:$P_HQ/receiving/" |
    python3 -c 'import json, sys; t = json.load(sys.stdin); print(t["fulfillments"], t["iridium"], t["magnesite"])'
}

# ledger_at WANT_TOTALS: whether HQ's ledger is at WANT_TOTALS now (read
# again at each poll of wait_for).
ledger_at() {
  [ "$(totals)" = "$1" ]
}

# order DESCRIPTION URL BODY WANT_TOTALS: a 200 "fulfilled" answer, and
# HQ's ledger at WANT_TOTALS afterwards.
order() {
  local what=$1 url=$2 body=$3 want=$4 answer
  answer=$(curl -sS --max-time 30 -H "Content-Type: application/json" -X POST -d "$body" "$url" 2>&1) || true
  if [[ $answer == *"Your order has been fulfilled"* ]] && wait_for "HQ's ledger" 10 ledger_at "$want"; then
    pass "$what: fulfilled, HQ's ledger at $want (fulfillments iridium magnesite)"
  else
    fail "$what: '$answer', HQ's ledger at '$(totals)' (want $want)"
  fi
}

step "installing what is missing (Debian packages)"
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v readelf >/dev/null || need+=(binutils)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  echo "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
qemu-aarch64-static --version | head -n 1

step "base images (scripts/base-images.sh)"
scripts/base-images.sh

step "docker build -f docker/Dockerfile --build-arg TARGETARCH=arm64, every target"
build_service_images "$WORK" '%s:arm64' --build-arg TARGETARCH=arm64

step "checking the images"
check_service_images "$WORK" '%s:arm64' AArch64

step "the arm64 binaries under QEMU user emulation"
if [ "$FAILED" -gt 0 ]; then
  echo "skipped: the images are not all there"
else
  start_hq HQ_LISTEN="127.0.0.1:$P_HQ" HQ_DATA_DIR="$WORK/hq-data" HQ_API_KEYS="$API_KEY" \
    HQ_ADMIN_TOKEN="$ADMIN_TOKEN" HQ_DRAIN_SECS=5
  start monolith PORT="$P_MONO" INTERSTELLA_API_KEY="$API_KEY" GLUE_HOOK_SECRET="$HOOK_SECRET" \
    INTERSTELLA_API_ENDPOINT="http://127.0.0.1:$P_HQ/receiving/"
  start iridium PORT="$P_IRI" monolithUrl="http://127.0.0.1:$P_MONO" GLUE_HOOK_SECRET="$HOOK_SECRET"
  start magnesite PORT="$P_MAG" monolithUrl="http://127.0.0.1:$P_MONO" GLUE_HOOK_SECRET="$HOOK_SECRET"

  t0=$(now_ms)
  for check in "hq http://127.0.0.1:$P_HQ/topics" "monolith http://127.0.0.1:$P_MONO/" \
    "iridium http://127.0.0.1:$P_IRI/iridium/" "magnesite http://127.0.0.1:$P_MAG/magnesite/"; do
    read -r svc url <<<"$check"
    if wait_for "$svc" 60 curl -fsS "$url"; then
      pass "$svc (arm64, QEMU) answers GET /${url#http://127.0.0.1:*/} ($(($(now_ms) - t0)) ms after start)"
    else
      fail "$svc (arm64, QEMU) does not answer GET $url"
    fi
  done

  if [ "$FAILED" -eq 0 ]; then
    order "the workshop's bundle order to the arm64 monolith" "http://127.0.0.1:$P_MONO/order/" \
      '{"Message":{"bundle":"1"}}' "1 1 1"
    order "an order to the arm64 iridium (-> monolith /fulfill/ -> HQ)" "http://127.0.0.1:$P_IRI/iridium/" \
      '{"Message":{"iridium":"2"}}' "2 3 1"
    order "an order to the arm64 magnesite (-> monolith /fulfill/ -> HQ)" "http://127.0.0.1:$P_MAG/magnesite/" \
      '{"Message":{"magnesite":"3"}}' "3 3 4"
  fi

  step "SIGTERM: graceful exit, and jemalloc's page size"
  for svc in iridium magnesite monolith hq; do
    kill -TERM "${PIDS[$svc]}"
    code=0
    wait "${PIDS[$svc]}" || code=$?
    unset "PIDS[$svc]"
    if [ "$code" = 0 ]; then
      pass "$svc (arm64) exits 0 on SIGTERM"
    else
      fail "$svc (arm64) exit code $code on SIGTERM: $(tail -n 3 "$WORK/$svc.log")"
    fi
    # jemalloc's statistics at exit (MALLOC_CONF=stats_print:true: jemalloc is
    # built unprefixed, so it reads the unprefixed variable).
    page=$(grep -m 1 -oE 'Page size: [0-9]+' "$WORK/$svc.log" || true)
    if [ "$page" = "Page size: 65536" ]; then
      pass "$svc (arm64): jemalloc $page (runs on 4, 16 and 64 KiB page kernels)"
    else
      fail "$svc (arm64): jemalloc '${page:-no statistics}', want 'Page size: 65536'"
    fi
  done
fi

step "summary"
service_image_sizes '%s:arm64'
printf '\n%s passed, %s failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
