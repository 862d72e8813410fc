#!/usr/bin/env bash
# A real, local Prometheus (and promtool) for development, tests and CI, without Docker and
# without installing a service: the Debian package is downloaded with `apt-get download`
# and unpacked with `dpkg-deb -x` into the git-ignored .cache/prometheus, reused afterwards.
# Each port gets its own state directory (.cache/prometheus/server-<port>: data, log, pid).
#
#   bash scripts/prometheus.sh fetch                 unpack the package (once); prints the bin dir
#   bash scripts/prometheus.sh start <config> [port] start on 127.0.0.1:<port> (default 9090),
#                                                    wait for /-/ready; prints the URL
#   bash scripts/prometheus.sh stop [port]           SIGTERM, SIGKILL after 20 s
#   bash scripts/prometheus.sh status [port]         exit 0 and print the URL if running, 3 if not
#   bash scripts/prometheus.sh promtool [args…]      run promtool (fetching it first)
#   bash scripts/prometheus.sh path                  print the bin dir (prometheus, promtool)
#
# `start` on a port where our server already runs restarts it, so the config is always the
# one given. Progress goes to stderr; stdout carries only what callers capture.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="$PWD/.cache/prometheus"
ROOT="$CACHE/root"
BIN="$ROOT/usr/bin"
START_TIMEOUT_S=60
STOP_TIMEOUT_S=20

log() { echo "prometheus: $*" >&2; }
# shellcheck source=scripts/service-lib.sh
source scripts/service-lib.sh

check_port() {
  if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65535)); then
    log "port must be a number (1-65535), got '$1'"
    exit 2
  fi
}

cmd_fetch() {
  if [[ -x "$BIN/prometheus" && -x "$BIN/promtool" ]]; then return 0; fi
  local started work deb
  started="$(now_ms)"
  work="$CACHE/fetch"
  rm -rf "$work" "$ROOT.tmp"
  mkdir -p "$work"
  # apt-get download writes into the current directory; it needs package lists, which a
  # fresh machine (or a slim image) may not have yet.
  if ! (cd "$work" && apt-get download prometheus >"$work/apt.log" 2>&1); then
    log "apt-get download failed; updating the package lists and retrying"
    if ! apt-get update >>"$work/apt.log" 2>&1 || ! (cd "$work" && apt-get download prometheus >>"$work/apt.log" 2>&1); then
      tail -n 20 "$work/apt.log" >&2
      log "could not download the Debian package 'prometheus' (full log: $work/apt.log)"
      exit 1
    fi
  fi
  deb="$(ls "$work"/prometheus_*.deb | head -n 1)"
  # Only the two binaries are needed; -x unpacks without running maintainer scripts.
  dpkg-deb -x "$deb" "$ROOT.tmp"
  [[ -x "$ROOT.tmp/usr/bin/prometheus" && -x "$ROOT.tmp/usr/bin/promtool" ]] || {
    log "$(basename "$deb") has no usr/bin/prometheus and usr/bin/promtool"
    exit 1
  }
  # Swap in whole: a half-unpacked tree must never look complete.
  rm -rf "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
  rm -rf "$work"
  log "fetched $(basename "$deb") ($("$BIN/prometheus" --version 2>&1 | head -n 1)) in $(elapsed "$started") s"
}

state_dir() { echo "$CACHE/server-$1"; }

# The pid of the server this script started on $1, if it is still alive (checks the
# command line, so a recycled pid is never mistaken for it).
server_pid() {
  local pid_file pid
  pid_file="$(state_dir "$1")/prometheus.pid"
  [[ -f "$pid_file" ]] || return 1
  pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--web.listen-address=127.0.0.1:$1 " || return 1
  echo "$pid"
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/-/ready" 2>/dev/null; }

stop_locked() {
  local port="$1" pid
  if ! pid="$(server_pid "$port")"; then
    rm -f "$(state_dir "$port")/prometheus.pid"
    log "no server running on port $port"
    return 0
  fi
  log "stopping server (pid $pid) on port $port"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= STOP_TIMEOUT_S * 10)); then
      log "no clean shutdown after $STOP_TIMEOUT_S s; killing pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$(state_dir "$port")/prometheus.pid"
  # The data is throwaway; keep the log for a post-mortem.
  rm -rf "$(state_dir "$port")/data"
}

cmd_start() {
  local config="${1:-}" port="${2:-9090}"
  if [[ -z "$config" || ! -f "$config" ]]; then
    log "start needs an existing config file, got '${config}'"
    exit 2
  fi
  check_port "$port"
  config="$(realpath "$config")"
  lock
  cmd_fetch
  "$BIN/promtool" check config --syntax-only "$config" >/dev/null 2>"$CACHE/check.log" || {
    cat "$CACHE/check.log" >&2
    log "invalid config $config"
    exit 2
  }
  stop_locked "$port" 2>/dev/null
  if port_open "$port"; then
    log "port $port is in use by another process (not a server this script started)"
    exit 1
  fi
  local state started
  state="$(state_dir "$port")"
  started="$(now_ms)"
  # Fresh data on every start: this server holds test and development data only.
  rm -rf "$state"
  mkdir -p "$state/data"
  # setsid: the server outlives the shell that started it; the pid file names the
  # server itself because bash execs it. The web console is not needed.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$state/prometheus.pid" \
    "$BIN/prometheus" --config.file="$config" --web.listen-address="127.0.0.1:$port" \
    --storage.tsdb.path="$state/data" --storage.tsdb.retention.time=1d \
    --web.enable-lifecycle --log.level=warn \
    </dev/null >"$state/prometheus.log" 2>&1 9>&- &
  local deadline=$(($(date +%s) + START_TIMEOUT_S)) pid=''
  while true; do
    [[ -s "$state/prometheus.pid" ]] && pid="$(cat "$state/prometheus.pid")"
    if ready "$port"; then
      log "started (pid $pid) on 127.0.0.1:$port in $(elapsed "$started") s; log: $state/prometheus.log"
      echo "http://127.0.0.1:$port"
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$state/prometheus.log" >&2
      log "the server exited during startup"
      exit 1
    fi
    if (($(date +%s) >= deadline)); then
      [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
      tail -n 20 "$state/prometheus.log" >&2
      log "not ready within $START_TIMEOUT_S s"
      exit 1
    fi
    sleep 0.1
  done
}

cmd_status() {
  local port="${1:-9090}" pid
  check_port "$port"
  if pid="$(server_pid "$port")" && ready "$port"; then
    log "running (pid $pid) on 127.0.0.1:$port"
    echo "http://127.0.0.1:$port"
    return 0
  fi
  log "not running on port $port"
  return 3
}

case "${1:-}" in
  fetch) lock && cmd_fetch && echo "$BIN" ;;
  path) lock && cmd_fetch && echo "$BIN" ;;
  start) shift && cmd_start "$@" ;;
  stop)
    check_port "${2:-9090}"
    lock
    stop_locked "${2:-9090}"
    ;;
  status) cmd_status "${2:-9090}" ;;
  promtool)
    shift
    # Fetch under the lock in a subshell, so promtool itself does not hold it.
    (lock && cmd_fetch)
    exec "$BIN/promtool" "$@"
    ;;
  *)
    echo "usage: bash scripts/prometheus.sh fetch | path | start <config.yml> [port] | stop [port] | status [port] | promtool [args…]" >&2
    exit 2
    ;;
esac
