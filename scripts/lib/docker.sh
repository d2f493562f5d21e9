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
