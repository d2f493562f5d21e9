#!/usr/bin/env bash
# The published docker/Dockerfile and docker/compose.yaml, built and run as a
# user would, on a machine that cannot pull images:
#   1. scripts/base-images.sh makes the base images they name (Debian
#      bookworm, rust:1.95-bookworm) unless present;
#   2. `docker build -f docker/Dockerfile --target T .` for every target,
#      unchanged, with the classic builder (no BuildKit, no buildx), each
#      image tagged `T` and `interstella/T:local` (the name compose uses);
#      prints build time and size;
#   3. checks each image: at most 20 MB, user 65534:65534, its port exposed,
#      the binary runs (`--help` exits 0);
#   4. `compose -f docker/compose.yaml up -d --build` (compose v2 if the
#      docker CLI has it, else Debian's docker-compose v1.29), then the
#      workshop's curl through the proxy answers "Your order has been
#      fulfilled", then `down -v`.
# Prints 'N passed, N failed'; exits non-zero on any failure. Leaves the
# images (scripts/container-test.sh runs them) and the dockerd it may start.
#
# Settings: IB_PROXY_PORT (default 18080) and IB_HQ_PORT (18090), the compose
# stack's host ports; IB_COMPOSE=0 skips step 4; IB_TIMEOUT (whole run,
# seconds, default 3600).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${_IB_BOUNDED:-}" ]; then
  exec env _IB_BOUNDED=1 timeout --foreground -k 15 "${IB_TIMEOUT:-3600}" "$0" "$@"
fi
# scripts/lib/docker.sh is linted on its own (shellcheck -x follows it here).
# shellcheck source=scripts/lib/docker.sh disable=SC1091
. scripts/lib/docker.sh

# In the Dockerfile's order: with the classic builder each target then
# compiles one more service and takes the rest from the cache.
TARGETS=(iridium magnesite hq monolith)
MAX_IMAGE_BYTES=20000000
PROXY_PORT=${IB_PROXY_PORT:-18080}
HQ_PORT=${IB_HQ_PORT:-18090}
# The classic builder: what this machine has, and what the Dockerfiles must
# keep working with (no BuildKit-only syntax).
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
# Its own project, so a developer's `interstella` stack is left alone.
export COMPOSE_PROJECT_NAME=interstella-imagetest
WORK=$(mktemp -d /tmp/interstella-ib.XXXXXX)
COMPOSE=()
PASSED=0 FAILED=0

step() { printf '\n==> %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL: %s\n' "$*"; }

cleanup() {
  local rc=$?
  set +e
  if [ "${#COMPOSE[@]}" -gt 0 ]; then
    step "compose down -v"
    if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
      "${COMPOSE[@]}" logs --tail 15 2>&1
    fi
    "${COMPOSE[@]}" down -v --remove-orphans 2>&1 | tail -n 3
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

step "base images (scripts/base-images.sh)"
scripts/base-images.sh

step "docker build -f docker/Dockerfile, every target (classic builder)"
declare -A BUILD_SECONDS
for target in "${TARGETS[@]}"; do
  echo "docker build -f docker/Dockerfile --target $target -t $target -t interstella/$target:local ."
  t0=$SECONDS
  # The step lines show progress; the whole output goes to a log shown on failure.
  if docker build -f docker/Dockerfile --target "$target" -t "$target" -t "interstella/$target:local" . 2>&1 |
    tee "$WORK/build-$target.log" | grep --line-buffered -E '^Step [0-9]+/'; then
    BUILD_SECONDS[$target]=$((SECONDS - t0))
    pass "built $target in ${BUILD_SECONDS[$target]} s"
  else
    BUILD_SECONDS[$target]=-
    fail "docker build --target $target; last lines:"
    tail -n 30 "$WORK/build-$target.log"
  fi
done

step "checking the images"
for target in "${TARGETS[@]}"; do
  docker image inspect "$target" >/dev/null 2>&1 || continue
  size=$(docker image inspect -f '{{.Size}}' "$target")
  user=$(docker image inspect -f '{{.Config.User}}' "$target")
  ports=$(docker image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$target")
  case $target in
    monolith) want_port=5000/tcp ;;
    hq) want_port=4000/tcp ;;
    *) want_port=80/tcp ;;
  esac
  if [ "$size" -le "$MAX_IMAGE_BYTES" ]; then
    pass "image $target is $((size / 1000)) kB (<= 20 MB)"
  else
    fail "image $target is $size bytes (> 20 MB)"
  fi
  if [ "$user" = "65534:65534" ] && [ "${ports% }" = "$want_port" ]; then
    pass "image $target runs as $user and exposes $want_port"
  else
    fail "image $target: user '$user', ports '$ports' (want 65534:65534, $want_port)"
  fi
  if docker run --rm "$target" --help >"$WORK/help.out" 2>&1; then
    pass "docker run --rm $target --help: exit 0 ($(head -n 1 "$WORK/help.out"))"
  else
    fail "docker run --rm $target --help: $(head -n 3 "$WORK/help.out")"
  fi
done

if [ "${IB_COMPOSE:-1}" != 0 ]; then
  step "docker/compose.yaml: up --build, the workshop's curl through the proxy, down -v"
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose -f docker/compose.yaml)
  else
    command -v docker-compose >/dev/null || {
      echo "apt-get install docker-compose"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    }
    COMPOSE=(docker-compose -f docker/compose.yaml)
  fi
  echo "$("${COMPOSE[@]}" version | head -n 1); project $COMPOSE_PROJECT_NAME, proxy on 127.0.0.1:$PROXY_PORT, HQ on 127.0.0.1:$HQ_PORT"
  INTERSTELLA_API_KEY=ib-key-$$
  export PROXY_PORT HQ_PORT INTERSTELLA_API_KEY
  t0=$SECONDS
  if "${COMPOSE[@]}" up -d --build >"$WORK/compose-up.log" 2>&1; then
    pass "compose up -d --build ($((SECONDS - t0)) s)"
  else
    fail "compose up -d --build; last lines:"
    tail -n 30 "$WORK/compose-up.log"
  fi
  # The services start in any order and the proxy marks a target healthy after
  # two checks 5 s apart, so poll with a deadline.
  order() {
    curl -sS --max-time 10 -H "Content-Type: application/json" -X POST \
      -d '{"Message":{"bundle":"1"}}' "http://127.0.0.1:$PROXY_PORT/order/" >"$WORK/order.out" 2>&1 &&
      grep -q "Your order has been fulfilled" "$WORK/order.out"
  }
  t0=$SECONDS
  until order; do
    if [ $((SECONDS - t0)) -ge 120 ]; then break; fi
    sleep 1
  done
  if order; then
    pass "the workshop's curl through the proxy: '$(head -c 80 "$WORK/order.out")' ($((SECONDS - t0)) s after up)"
  else
    fail "the workshop's curl through the proxy: '$(head -c 200 "$WORK/order.out")'"
  fi
  # A 200 is only a 200 if HQ's ledger counted it, under the stack's key.
  if curl -fsS --max-time 10 -H "x-api-key: $INTERSTELLA_API_KEY" \
    "http://127.0.0.1:$HQ_PORT/receiving/" >"$WORK/totals.out" 2>&1 &&
    python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["fulfillments"] >= 1 else 1)' <"$WORK/totals.out"; then
    pass "HQ's ledger counted the fulfillment under the stack's key: $(head -c 160 "$WORK/totals.out")"
  else
    fail "HQ's ledger (GET /receiving/): $(head -c 200 "$WORK/totals.out")"
  fi
fi

step "summary"
printf '%-10s %10s %10s\n' image build_s size_kB
for target in "${TARGETS[@]}"; do
  size=$(docker image inspect -f '{{.Size}}' "$target" 2>/dev/null || echo 0)
  printf '%-10s %10s %10s\n' "$target" "${BUILD_SECONDS[$target]:--}" "$((size / 1000))"
done
printf '\n%s passed, %s failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
