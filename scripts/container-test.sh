#!/usr/bin/env bash
# The published images and the local "ALB", tested for real on this machine.
#
# Installs what it needs from Debian (docker.io, haproxy, docker-compose, ...),
# starts dockerd if none runs, makes the base images docker/Dockerfile names
# (scripts/base-images.sh: this machine cannot pull), builds every target of
# docker/Dockerfile unchanged with `docker build`, as a user does (the
# classic builder), runs the real HQ (crates/hq), the monolith and both
# microservices as containers with published ports, puts HAProxy on the host
# in front of the services with docker/proxy/haproxy.cfg (the compose stack's
# ALB config, unchanged), and checks:
#   - image size, user, exposed port, a static binary (scripts/lib/docker.sh);
#   - `compose -f docker/compose.yaml up --build` (compose v2 if the docker
#     CLI has it, else Debian's docker-compose v1.29): the workshop's curl
#     through the compose stack's proxy is fulfilled in HQ's ledger;
#   - the workshop's Lab 1 curl against `docker run -p ...:5000 monolith`;
#   - the ALB path rules and health-check paths through the proxy;
#   - Lab 4's loop: proxy -> iridium -> internal proxy -> monolith /fulfill/
#     -> HQ, and /fulfill* refused (403) on the public listener;
#   - HQ's feed through the proxy like SNS through the ALB: HQ subscribes the
#     proxy's URLs at start (HQ_SUBSCRIBE), the services confirm through the
#     proxy, and published orders are fulfilled in HQ's ledger, reconciled
#     with nothing lost or counted twice; a new HQ container finds the ledger
#     on the volume;
#   - HTTPS from inside a scratch image (CA bundle + SSL_CERT_FILE; a host
#     HAProxy terminates TLS in front of HQ), and that an unknown CA is refused;
#   - the strangling step by configuration (STRANGLED=iridium);
#   - a missing configuration exits non-zero with one line;
#   - `docker stop`: exit code 0, well under a second (PID 1 handles SIGTERM).
# All traffic stays on this machine: host -> containers through ports
# published on 127.0.0.1, containers -> host through the docker bridge
# gateway (host.docker.internal). Prints 'N passed, N failed' and the build
# time and size of each image; exits non-zero on any failure. Cleans up the
# containers and the processes it started.
#
# Settings: CT_PORT_BASE (default 15000; uses BASE..BASE+2, +50, +80, +81,
# +90, +443, and +180, +190 for the compose stack), CT_COMPOSE=0 skips the compose
# stack, CT_TIMEOUT (whole run, seconds, default 4800: a cold image build is
# most of it). The images it builds are kept (tagged monolith, iridium,
# magnesite, hq; compose's interstella/<service>:local).
#
# Reads as its `main` at the bottom: one function per stage, in order.
set -euo pipefail
cd "$(dirname "$0")/.."

# The whole run is bounded: re-run under timeout(1) once.
if [ -z "${_CT_BOUNDED:-}" ]; then
  exec env _CT_BOUNDED=1 timeout --foreground -k 15 "${CT_TIMEOUT:-4800}" "$0" "$@"
fi
# scripts/lib/*.sh are linted on their own (shellcheck -x follows them here).
# shellcheck source=scripts/lib/checks.sh disable=SC1091
. scripts/lib/checks.sh
# shellcheck source=scripts/lib/docker.sh disable=SC1091
. scripts/lib/docker.sh

BASE=${CT_PORT_BASE:-15000}
# The monolith, then a port per microservice after it (as the launcher
# does); the rest well clear of them.
P_MONO=$BASE P_IRI=$((BASE + 1)) P_MAG=$((BASE + 2)) P_MONO_TLS=$((BASE + 50))
P_PROXY=$((BASE + 80)) P_PROXY_INTERNAL=$((BASE + 81)) P_HQ=$((BASE + 90)) P_HQ_TLS=$((BASE + 443))
P_COMPOSE_PROXY=$((BASE + 180)) P_COMPOSE_HQ=$((BASE + 190))
PREFIX=ist-ct
API_KEY="ct-key-$$"
ADMIN_TOKEN="ct-admin-token-$$" # HQ's admin credential: publishing needs it
HOOK_SECRET="ct-glue-hook-secret-$$" # the monolith's /fulfill/ takes only callers with it
WORK=$(mktemp -d /tmp/interstella-ct.XXXXXX)
# The classic builder: what this machine has (no buildx), and what the
# Dockerfiles must keep working with. Compose's own project name, so that a
# developer's `interstella` stack is left alone.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 COMPOSE_PROJECT_NAME=interstella-ct
WORKSHOP_ORDER='{"Message":{"bundle":"1"}}'

TLS_PID='' PROXY_PID=''
CONTAINERS=()
COMPOSE=()        # the compose command, once the compose stack is up
HQ_VOLUME=$PREFIX-hq-data
# Set by the stages, used by the later ones.
GW=''             # the docker bridge gateway (host.docker.internal)
PROXY_URL=''      # the proxy as the containers reach it
HQ_STARTED_MS=''  # when HQ's container was started
MONO_ENV=()       # docker run -e arguments of the monolith
RES_ENV=()        # docker run -e arguments of iridium and magnesite
CODE='' BODY=''   # the last `http` answer

# ---------------------------------------------------------------------------
# Helpers

cleanup() {
  local rc=$?
  set +e
  step "cleaning up"
  if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
    for c in "${CONTAINERS[@]}"; do
      echo "--- last log lines of $c"
      docker logs --tail 15 "$c" 2>&1
    done
    echo "--- proxy log"; tail -n 15 "$WORK/proxy.log" 2>/dev/null
    echo "--- TLS proxy log"; tail -n 15 "$WORK/tls-proxy.log" 2>/dev/null
  fi
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  docker volume rm "$HQ_VOLUME" >/dev/null 2>&1
  for pid in $TLS_PID $PROXY_PID; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [ "${#COMPOSE[@]}" -gt 0 ]; then
    if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then "${COMPOSE[@]}" logs --tail 15 2>&1; fi
    "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1
  fi
  docker_engine_down
  rm -rf "$WORK"
  exit "$rc"
}

# run_container NAME IMAGE [docker run args...]: starts $PREFIX-NAME, detached,
# with host.docker.internal, and remembers it for the clean-up.
run_container() {
  local name=$PREFIX-$1 image=$2
  shift 2
  docker run -d --name "$name" --add-host=host.docker.internal:host-gateway "$@" "$image" >/dev/null
  CONTAINERS+=("$name")
  echo "docker run $name from $image"
}

# http METHOD URL [BODY]: sets CODE and BODY.
http() {
  local args=(-sS -o "$WORK/body" -w '%{http_code}' --max-time 20 -X "$1" "$2")
  [ $# -ge 3 ] && args+=(-H "Content-Type: application/json" -d "$3")
  [ -n "${HTTP_AUTH:-}" ] && args+=(-H "$HTTP_AUTH")
  CODE=$(curl "${args[@]}" 2>"$WORK/curl.err") || CODE=000
  BODY=$(cat "$WORK/body" 2>/dev/null || true)
}
expect() { # DESCRIPTION WANT_CODE [WANT_TEXT]
  if [ "$CODE" = "$2" ] && { [ -z "${3:-}" ] || [[ $BODY == *"$3"* ]]; }; then
    pass "$1 -> $CODE"
  else
    fail "$1 -> $CODE '$BODY' (want $2 ${3:-})"
  fi
}
# HQ's totals for the test's key (GET /receiving/ with x-api-key).
totals() { curl -fsS -H "x-api-key: $API_KEY" "http://127.0.0.1:$P_HQ/receiving/"; }
# forget: remember the totals; received compares later totals with them.
forget() { totals >"$WORK/totals.before"; }
# received DESCRIPTION FULFILLMENTS IRIDIUM MAGNESITE: HQ's ledger counted
# exactly that much for the key since `forget`.
received() {
  local deadline=$(($(now_ms) + 5000)) delta
  while :; do
    delta=$(totals | python3 -c '
import json, sys
before = json.load(open(sys.argv[1])); now = json.load(sys.stdin)
print(*(now[k] - before[k] for k in ("fulfillments", "iridium", "magnesite")))' "$WORK/totals.before" 2>/dev/null || true)
    if [ "$delta" = "$2 $3 $4" ]; then
      pass "$1 (HQ ledger: +$2 fulfillment(s), +$3 iridium, +$4 magnesite)"
      return
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      fail "$1: HQ ledger counted '$delta' (fulfillments iridium magnesite), want '$2 $3 $4'"
      return
    fi
    sleep 0.1
  done
}
# confirmed N: HQ's GET /topics lists exactly N subscriptions, all confirmed.
confirmed() {
  curl -fsS "http://127.0.0.1:$P_HQ/topics" | python3 -c '
import json, sys
states = [s["state"] for t in json.load(sys.stdin)["topics"] for s in t["subscriptions"]]
sys.exit(0 if states == ["confirmed"] * int(sys.argv[1]) else 1)' "$1"
}
# reconciled: HQ's reconciliation shows 3 published, 3 fulfilled, nothing
# lost, duplicated or pending.
reconciled() {
  curl -fsS "http://127.0.0.1:$P_HQ/reconciliation" | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if (r["published"], r["fulfilled"], r["lost"], r["duplicated"], r["pending"]) == (3, 3, 0, 0, 0) else 1)'
}
# compose_order_fulfilled: the workshop's curl through the compose stack's
# proxy is answered "fulfilled".
compose_order_fulfilled() {
  curl -sS --max-time 10 -H "Content-Type: application/json" -X POST -d "$WORKSHOP_ORDER" \
    "http://127.0.0.1:$P_COMPOSE_PROXY/order/" | grep -q "Your order has been fulfilled"
}
publish() { # TOPIC ORDER: HQ publishes on its feed, signs and delivers like SNS
  HTTP_AUTH="Authorization: Bearer $ADMIN_TOKEN" http POST "http://127.0.0.1:$P_HQ/topics/$1/publish" "$2"
}

# ---------------------------------------------------------------------------
# Stages, in the order `main` runs them

install_packages() {
  step "installing what is missing (Debian packages)"
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v curl >/dev/null || need+=(curl)
  command -v python3 >/dev/null || need+=(python3)
  command -v openssl >/dev/null || need+=(openssl)
  command -v readelf >/dev/null || need+=(binutils)
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || need+=(docker-compose)
  [ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "all present"
  fi
}

# start_dockerd: a dockerd (ours if none runs, stopped again at the end), GW,
# and no leftovers of an earlier run.
start_dockerd() {
  step "starting dockerd unless one runs"
  docker_engine_up "$WORK/dockerd.log"
  GW=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
  if [ -z "$GW" ]; then
    GW=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
  fi
  echo "docker bridge gateway (host.docker.internal): $GW"

  local name
  for name in "${SERVICE_IMAGES[@]}" monolith-tls monolith-badca monolith-noconfig; do
    docker rm -f "$PREFIX-$name" >/dev/null 2>&1 || true
  done
  docker volume rm "$HQ_VOLUME" >/dev/null 2>&1 || true
}

build_images() {
  step "base images (scripts/base-images.sh)"
  scripts/base-images.sh
  step "docker build -f docker/Dockerfile, every target (classic builder)"
  build_service_images "$WORK" '%s'
}

check_images() {
  step "checking the images"
  check_service_images "$WORK" '%s' X86-64
}

# compose_stack: `up --build` (the images come from the builds above, through
# the builder's cache), the workshop's curl through the stack's proxy counted
# in HQ's ledger under the stack's key, then `down -v`.
compose_stack() {
  if [ "${CT_COMPOSE:-1}" = 0 ]; then return; fi
  step "docker/compose.yaml: up --build, the workshop's curl through its proxy, down -v"
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose -f docker/compose.yaml)
  else
    COMPOSE=(docker-compose -f docker/compose.yaml)
  fi
  echo "$("${COMPOSE[@]}" version | head -n 1); project $COMPOSE_PROJECT_NAME, proxy on 127.0.0.1:$P_COMPOSE_PROXY, HQ on 127.0.0.1:$P_COMPOSE_HQ"
  local t0 key=ct-compose-key-$$
  t0=$SECONDS
  if PROXY_PORT=$P_COMPOSE_PROXY HQ_PORT=$P_COMPOSE_HQ INTERSTELLA_API_KEY=$key \
    "${COMPOSE[@]}" up -d --build >"$WORK/compose-up.log" 2>&1; then
    pass "compose up -d --build ($((SECONDS - t0)) s)"
  else
    fail "compose up -d --build; last lines: $(tail -n 20 "$WORK/compose-up.log")"
    return
  fi
  # The proxy marks a target healthy after two checks 5 s apart.
  t0=$SECONDS
  wait_for "the workshop's curl through the compose stack" 120 compose_order_fulfilled || true
  http POST "http://127.0.0.1:$P_COMPOSE_PROXY/order/" "$WORKSHOP_ORDER"
  expect "the workshop's curl through the compose stack's proxy ($((SECONDS - t0)) s after up)" 200 "Your order has been fulfilled"
  # A 200 is only a 200 if HQ's ledger counted it, under the stack's key.
  local counted
  counted=$(curl -fsS --max-time 10 -H "x-api-key: $key" "http://127.0.0.1:$P_COMPOSE_HQ/receiving/" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["fulfillments"])' 2>&1) || true
  if [ "$counted" -ge 1 ] 2>/dev/null; then
    pass "the compose stack's HQ counted $counted fulfillment(s) under the stack's key"
  else
    fail "the compose stack's HQ ledger (GET /receiving/): $counted"
  fi
  "${COMPOSE[@]}" down -v --remove-orphans 2>&1 | tail -n 2
  COMPOSE=()
}

make_tls_material() {
  step "TLS material for the HTTPS check (a test CA, a certificate for host.docker.internal)"
  mkdir -p "$WORK/tls"
  (
    cd "$WORK/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Interstella test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=host.docker.internal" \
      -keyout hq.key -out hq.csr 2>/dev/null
    printf 'subjectAltName=DNS:host.docker.internal\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
    openssl x509 -req -in hq.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile ext -out hq.crt 2>/dev/null
    cat hq.crt hq.key >hq.pem
    cat /etc/ssl/certs/ca-certificates.crt ca.crt >bundle.crt
  )
}

# run_hq: HQ's container, its ledger and key in the volume $HQ_VOLUME at /data.
run_hq() {
  run_container hq hq -p "127.0.0.1:$P_HQ:4000" -p "$GW:$P_HQ:4000" -v "$HQ_VOLUME:/data" \
    -e "HQ_PUBLIC_URL=http://host.docker.internal:$P_HQ/" -e "HQ_API_KEYS=$API_KEY" -e "HQ_ADMIN_TOKEN=$ADMIN_TOKEN" \
    -e "HQ_SUBSCRIBE=orders=$PROXY_URL/order/,iridium=$PROXY_URL/iridium/,magnesite=$PROXY_URL/magnesite/" \
    -e HQ_SUBSCRIBE_EVERY_MS=500 -e HQ_RETRIES=5 -e HQ_RETRY_MIN_DELAY_MS=200 \
    -e HQ_RETRY_MAX_DELAY_MS=2000 -e HQ_BACKOFF=exponential -e HQ_DRAIN_SECS=5
}

run_containers() {
  step "running the containers (ports published on 127.0.0.1)"
  # HQ first, as compose may start it: it subscribes the proxy's URLs at once
  # and keeps sending the confirmations until the services behind the proxy
  # are up and confirm. Published on the bridge gateway too, so the services
  # reach it (SubscribeURL, SigningCertURL, /receiving/) at host.docker.internal.
  PROXY_URL=http://host.docker.internal:$P_PROXY
  HQ_STARTED_MS=$(now_ms)
  run_hq
  MONO_ENV=(-e "INTERSTELLA_API_KEY=$API_KEY" -e "GLUE_HOOK_SECRET=$HOOK_SECRET"
    -e "INTERSTELLA_API_ENDPOINT=http://host.docker.internal:$P_HQ/receiving/"
    -e "AWS_ENDPOINT_URL_SNS=http://host.docker.internal:$P_HQ/")
  RES_ENV=(-e "monolithUrl=http://host.docker.internal:$P_PROXY_INTERNAL" -e "GLUE_HOOK_SECRET=$HOOK_SECRET"
    -e "AWS_ENDPOINT_URL_SNS=http://host.docker.internal:$P_HQ/")
  run_container monolith monolith -p "127.0.0.1:$P_MONO:5000" "${MONO_ENV[@]}"
  run_container iridium iridium -p "127.0.0.1:$P_IRI:80" "${RES_ENV[@]}"
  run_container magnesite magnesite -p "127.0.0.1:$P_MAG:80" "${RES_ENV[@]}"
}

start_proxy() {
  step "starting HAProxy on the host with docker/proxy/haproxy.cfg"
  LISTEN="127.0.0.1:$P_PROXY,$GW:$P_PROXY" INTERNAL_LISTEN="127.0.0.1:$P_PROXY_INTERNAL,$GW:$P_PROXY_INTERNAL" \
    MONOLITH_ADDR="127.0.0.1:$P_MONO" IRIDIUM_ADDR="127.0.0.1:$P_IRI" MAGNESITE_ADDR="127.0.0.1:$P_MAG" \
    haproxy -db -f docker/proxy/haproxy.cfg >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
}

wait_until_ready() {
  step "waiting for HQ and the services (health paths, direct and through the proxy)"
  local t0
  t0=$(now_ms)
  # The first start makes HQ's signing key in the (empty) volume.
  wait_for "HQ" 60 curl -fsS "http://127.0.0.1:$P_HQ/topics"
  local user data
  user=$(docker inspect -f '{{.Config.User}}' "$PREFIX-hq")
  data=$(docker volume inspect -f '{{.Mountpoint}}' "$HQ_VOLUME")
  if [ "${user%%:*}" = 65534 ] && [ "$(stat -c %u "$data/hq-ledger.sqlite3")" = 65534 ] &&
    [ -s "$data/sns-signing-key.pem" ]; then
    pass "HQ answers as user $user, its ledger and signing key in the volume at /data ($(($(now_ms) - HQ_STARTED_MS)) ms after docker run)"
  else
    fail "HQ's user ($user) or its files in the volume: $(find "$data" -maxdepth 1 -printf '%f (uid %U) ' 2>&1)"
  fi
  wait_for "monolith" 30 curl -fsS "http://127.0.0.1:$P_MONO/"
  wait_for "iridium" 30 curl -fsS "http://127.0.0.1:$P_IRI/iridium/"
  wait_for "magnesite" 30 curl -fsS "http://127.0.0.1:$P_MAG/magnesite/"
  wait_for "proxy" 30 curl -fsS "http://127.0.0.1:$P_PROXY/"
  echo "all ready $(($(now_ms) - t0)) ms after start"
}

lab1_workshop_curl() {
  step "Lab 1: the workshop's curl against docker run -p 127.0.0.1:$P_MONO:5000 monolith"
  forget
  echo "curl -H \"Content-Type: application/json\" -X POST -d '$WORKSHOP_ORDER' http://127.0.0.1:$P_MONO/order/"
  http POST "http://127.0.0.1:$P_MONO/order/" "$WORKSHOP_ORDER"
  expect "POST /order/ (workshop curl)" 200 "Your order has been fulfilled"
  received "HQ received the bundle with the API key" 1 1 1
}

alb_routing() {
  step "Lab 3/4: the ALB's health-check paths and path rules, through the proxy"
  local path
  for path in / /iridium/ /magnesite/ /iridium /magnesite; do
    http GET "http://127.0.0.1:$P_PROXY$path"
    expect "GET $path through the proxy" 200
  done
  forget
  http POST "http://127.0.0.1:$P_PROXY/order/" "$WORKSHOP_ORDER"
  expect "POST /order/ through the proxy (default rule -> monolith)" 200 "Your order has been fulfilled"
  received "HQ received the bundle" 1 1 1
  forget
  http POST "http://127.0.0.1:$P_PROXY/iridium/" '{"Message":{"iridium":"1"}}'
  expect "POST /iridium/ through the proxy (rule /iridium* -> iridium)" 200 "Your order has been fulfilled"
  received "iridium -> proxy -> internal proxy -> monolith /fulfill/ -> HQ" 1 1 0
  forget
  http POST "http://127.0.0.1:$P_PROXY/magnesite/" '{"Message":{"magnesite":"2"}}'
  expect "POST /magnesite/ through the proxy (rule /magnesite* -> magnesite)" 200 "Your order has been fulfilled"
  received "magnesite -> proxy -> internal proxy -> monolith /fulfill/ -> HQ" 1 0 2
  forget
  http POST "http://127.0.0.1:$P_PROXY/fulfill/" '{"iridium": 1000000}'
  expect "POST /fulfill/ on the public listener (refused, as by the ALB's first rule)" 403 "The glue hook is internal"
  http POST "http://127.0.0.1:$P_PROXY_INTERNAL/fulfill/" '{"iridium": 1000000}'
  expect "POST /fulfill/ on the internal listener without the glue hook's secret" 401
  http POST "http://127.0.0.1:$P_PROXY_INTERNAL/order/" '{"Message":{"bundle":"1"}}'
  expect "POST /order/ on the internal listener (only /fulfill* is served there)" 404
  received "nothing fulfilled by an anonymous /fulfill/" 0 0 0
  http GET "http://127.0.0.1:$P_PROXY/iridiumX"
  http GET "http://127.0.0.1:$P_PROXY/Iridium/"
  expect "GET /Iridium/ (rules are case-sensitive: monolith, unknown path)" 404
  if wait_for "proxy log" 5 grep -q 'iridium/iridium .*"GET /iridiumX ' "$WORK/proxy.log" &&
    wait_for "proxy log" 5 grep -q 'monolith/monolith .*"GET /Iridium/ ' "$WORK/proxy.log"; then
    pass "/iridiumX went to iridium and /Iridium/ to the monolith, paths unchanged (proxy log)"
  else
    fail "routing of /iridiumX and /Iridium/ (proxy log: $(tail -n 3 "$WORK/proxy.log"))"
  fi
}

hq_feed_through_proxy() {
  step "HQ's feed through the proxy, like SNS through the ALB"
  if wait_for "the three start-up subscriptions to be confirmed" 60 confirmed 3; then
    pass "HQ subscribed $PROXY_URL/{order,iridium,magnesite}/ at start; the services confirmed through the proxy"
  else
    fail "start-up subscriptions not confirmed: $(curl -sS "http://127.0.0.1:$P_HQ/topics")"
  fi
  forget
  publish orders '{"bundle": 1}'
  expect "HQ publishes a bundle on orders (one confirmed subscriber)" 201 '"subscribers":1'
  received "orders -> proxy -> monolith /order/ -> HQ (signed, verified against HQ's certificate)" 1 1 1
  forget
  publish iridium '{"iridium": 3}'
  expect "HQ publishes on iridium" 201 '"subscribers":1'
  received "iridium topic -> proxy -> iridium -> proxy -> monolith /fulfill/ -> HQ" 1 3 0
  forget
  publish magnesite '{"magnesite": 2}'
  expect "HQ publishes on magnesite" 201 '"subscribers":1'
  received "magnesite topic -> proxy -> magnesite -> proxy -> monolith /fulfill/ -> HQ" 1 0 2
  # HAProxy logs a transaction once it has ended, which may be after HQ's
  # ledger has the order: wait for each line.
  if wait_for "the proxy's log of the delivery to the monolith" 5 grep -q 'monolith/monolith .*"POST /order/ ' "$WORK/proxy.log" &&
    wait_for "the proxy's log of the delivery to iridium" 5 grep -q 'iridium/iridium .*"POST /iridium/ ' "$WORK/proxy.log" &&
    wait_for "the proxy's log of the delivery to magnesite" 5 grep -q 'magnesite/magnesite .*"POST /magnesite/ ' "$WORK/proxy.log"; then
    pass "HQ's deliveries went through the proxy to all three services (proxy log)"
  else
    fail "HQ's deliveries missing from the proxy log: $(tail -n 5 "$WORK/proxy.log")"
  fi
  if wait_for "reconciliation" 10 reconciled; then
    pass "HQ reconciliation: 3 published, 3 fulfilled, nothing lost, nothing counted twice"
  else
    fail "reconciliation: $(curl -sS "http://127.0.0.1:$P_HQ/reconciliation")"
  fi
}

hq_ledger_survives_restart() {
  step "HQ's ledger and subscriptions in a new HQ container on the same volume"
  totals >"$WORK/totals.kept"
  # A new container, not a restart: a restarted container keeps its own
  # file system, so only a new one shows that the volume holds the ledger.
  docker stop -t 10 "$PREFIX-hq" >/dev/null
  docker rm "$PREFIX-hq" >/dev/null
  run_hq
  wait_for "HQ after restart" 30 curl -fsS "http://127.0.0.1:$P_HQ/topics"
  if [ "$(totals)" = "$(cat "$WORK/totals.kept")" ]; then
    pass "the ledger survives HQ's container (volume at /data): $(cat "$WORK/totals.kept")"
  else
    fail "ledger in the new container: $(totals) (before: $(cat "$WORK/totals.kept"))"
  fi
  if wait_for "resubscription after the restart" 30 confirmed 3; then
    pass "after the restart HQ subscribed the proxy's URLs again and they confirmed"
  else
    fail "subscriptions after the restart: $(curl -sS "http://127.0.0.1:$P_HQ/topics")"
  fi
}

start_tls_proxy() {
  step "a TLS-terminating HAProxy on the host in front of HQ"
  cat >"$WORK/tls/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend hq_tls
    bind $GW:$P_HQ_TLS ssl crt $WORK/tls/hq.pem
    default_backend hq
backend hq
    server hq 127.0.0.1:$P_HQ
EOF
  haproxy -db -f "$WORK/tls/haproxy.cfg" >"$WORK/tls-proxy.log" 2>&1 &
  TLS_PID=$!
  wait_for "TLS proxy" 20 curl -fsS --cacert "$WORK/tls/ca.crt" \
    --resolve "host.docker.internal:$P_HQ_TLS:$GW" "https://host.docker.internal:$P_HQ_TLS/topics"
}

https_with_the_shipped_bundle() {
  step "HTTPS from inside the scratch image"
  run_container monolith-tls monolith -p "127.0.0.1:$P_MONO_TLS:5000" "${MONO_ENV[@]}" \
    -e "INTERSTELLA_API_ENDPOINT=https://host.docker.internal:$P_HQ_TLS/receiving/" \
    -v "$WORK/tls/bundle.crt:/etc/ssl/certs/ca-certificates.crt:ro"
  wait_for "monolith-tls" 30 curl -fsS "http://127.0.0.1:$P_MONO_TLS/"
  forget
  http POST "http://127.0.0.1:$P_MONO_TLS/order/" "$WORKSHOP_ORDER"
  expect "order fulfilled over HTTPS (CA bundle at SSL_CERT_FILE)" 200 "Your order has been fulfilled"
  received "HQ received it over TLS" 1 1 1
  docker rm -f "$PREFIX-monolith-tls" >/dev/null
}

https_refuses_an_unknown_ca() {
  step "HTTPS to a server whose CA is not in the shipped bundle"
  run_container monolith-badca monolith -p "127.0.0.1:$P_MONO_TLS:5000" "${MONO_ENV[@]}" \
    -e "INTERSTELLA_API_ENDPOINT=https://host.docker.internal:$P_HQ_TLS/receiving/"
  wait_for "monolith-badca" 30 curl -fsS "http://127.0.0.1:$P_MONO_TLS/"
  forget
  http POST "http://127.0.0.1:$P_MONO_TLS/order/" "$WORKSHOP_ORDER"
  if [[ $CODE == 50[23] && $BODY == *"NOT been fulfilled"* ]]; then
    pass "a certificate from an unknown CA is refused (shipped bundle only) -> $CODE"
  else
    fail "unknown CA: $CODE '$BODY' (want 502 or 503, NOT been fulfilled)"
  fi
  received "nothing reached HQ over the untrusted connection" 0 0 0
  docker rm -f "$PREFIX-monolith-badca" >/dev/null
}

missing_configuration() {
  step "a missing configuration: exit non-zero with one line"
  local rc=0
  docker run --name "$PREFIX-monolith-noconfig" -e AWS_REGION=us-east-2 \
    -e AWS_ACCESS_KEY_ID=none -e AWS_SECRET_ACCESS_KEY=none -e AWS_MAX_ATTEMPTS=1 \
    -e "AWS_ENDPOINT_URL=http://127.0.0.1:9" -e AWS_EC2_METADATA_DISABLED=true \
    monolith >"$WORK/noconfig.out" 2>"$WORK/noconfig.err" || rc=$?
  CONTAINERS+=("$PREFIX-monolith-noconfig")
  if [ "$rc" -ne 0 ] && [ "$(wc -l <"$WORK/noconfig.err")" -eq 1 ]; then
    pass "no key, no endpoint, no SSM: exit $rc, '$(cat "$WORK/noconfig.err")'"
  else
    fail "missing configuration: exit $rc, stderr: $(cat "$WORK/noconfig.err")"
  fi
}

strangling_iridium() {
  step "Lab 4: strangling iridium by configuration (STRANGLED=iridium)"
  local t0
  t0=$(now_ms)
  docker stop -t 10 "$PREFIX-monolith" >/dev/null
  docker rm "$PREFIX-monolith" >/dev/null
  run_container monolith monolith -p "127.0.0.1:$P_MONO:5000" "${MONO_ENV[@]}" -e STRANGLED=iridium
  wait_for "strangled monolith" 30 curl -fsS "http://127.0.0.1:$P_PROXY/"
  echo "monolith replaced in $(($(now_ms) - t0)) ms"
  forget
  http POST "http://127.0.0.1:$P_PROXY/order/" "$WORKSHOP_ORDER"
  expect "bundle through the proxy after strangling" 200 "Your order has been fulfilled"
  received "the monolith no longer gathers iridium" 1 0 1
}

docker_stop_is_graceful() {
  step "docker stop: SIGTERM to PID 1, graceful exit"
  local svc t0 ms code
  for svc in "${SERVICE_IMAGES[@]}"; do
    t0=$(now_ms)
    docker stop -t 10 "$PREFIX-$svc" >/dev/null
    ms=$(($(now_ms) - t0))
    code=$(docker inspect -f '{{.State.ExitCode}}' "$PREFIX-$svc")
    # Exit 0 within -t 10 is SIGTERM handled (SIGKILL would be 137); an idle
    # service must not sit out a drain deadline either (HQ's is the
    # shortest here, HQ_DRAIN_SECS=5).
    if [ "$code" = 0 ] && [ "$ms" -lt 5000 ]; then
      pass "docker stop $svc: exit 0 in $ms ms"
    else
      fail "docker stop $svc: exit $code in $ms ms (want 0, before a drain deadline: 5 s)"
    fi
  done
}

# ---------------------------------------------------------------------------

main() {
  trap cleanup EXIT
  trap 'exit 143' TERM INT

  install_packages
  start_dockerd
  build_images
  check_images
  compose_stack
  make_tls_material
  run_containers
  start_proxy
  wait_until_ready
  lab1_workshop_curl
  alb_routing
  hq_feed_through_proxy
  hq_ledger_survives_restart
  start_tls_proxy
  https_with_the_shipped_bundle
  https_refuses_an_unknown_ca
  missing_configuration
  strangling_iridium
  docker_stop_is_graceful

  step "summary"
  service_image_sizes '%s'
  printf '\n%s passed, %s failed\n' "$PASSED" "$FAILED"
  [ "$FAILED" -eq 0 ]
}

main "$@"
