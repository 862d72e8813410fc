#!/usr/bin/env bash
# A real, local, single-node Apache Kafka broker (KRaft mode, no ZooKeeper, no Docker) for
# development, tests and CI. The broker's jars come from Maven Central through Maven and
# live in the git-ignored .cache/kafka/libs; each port gets its own state directory
# (.cache/kafka/broker-<port>: server.properties, data, logs, pid file).
#
#   bash scripts/kafka.sh fetch     download the jars (once; reused while the stamp matches)
#   bash scripts/kafka.sh start     start the broker unless ours already answers; prints host:port
#   bash scripts/kafka.sh stop      SIGTERM (clean shutdown), SIGKILL after 30 s
#   bash scripts/kafka.sh status    running or not; exit 0 if running, 3 if not
#   bash scripts/kafka.sh restart   stop, then start
#   bash scripts/kafka.sh reset     stop, then delete the broker's data (jars are kept)
#
# Environment: TEXTSTREAM_KAFKA_PORT (default 9092) is the broker port; the controller
# listens on the next port. Everything listens on 127.0.0.1 only. Progress goes to stderr;
# `start` and `status` print only the bootstrap address on stdout, so callers can capture it.
set -euo pipefail
cd "$(dirname "$0")/.."

KAFKA_VERSION=3.9.1
ARTIFACTS="org.apache.kafka:kafka_2.13:${KAFKA_VERSION} org.slf4j:slf4j-reload4j:1.7.36 ch.qos.reload4j:reload4j:1.2.25"
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

CACHE="$PWD/.cache/kafka"
LIBS="$CACHE/libs"
STAMP="$LIBS/.textstream-artifacts"
PORT="${TEXTSTREAM_KAFKA_PORT:-9092}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65534)); then
  echo "kafka: TEXTSTREAM_KAFKA_PORT must be a port number (1-65534), got '$PORT'" >&2
  exit 2
fi
CONTROLLER_PORT=$((PORT + 1))
BOOTSTRAP="127.0.0.1:$PORT"
STATE="$CACHE/broker-$PORT"
PID_FILE="$STATE/kafka.pid"
SERVER_LOG="$STATE/logs/server.log"
START_TIMEOUT_S=90
STOP_TIMEOUT_S=30

log() { echo "kafka: $*" >&2; }
# shellcheck source=scripts/service-lib.sh
source scripts/service-lib.sh

# The pid of the broker this script started on $PORT, if that process is still alive.
# Checks the command line too, so a recycled pid is never mistaken for the broker.
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $STATE/server.properties" || return 1
  echo "$pid"
}

cmd_fetch() {
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$ARTIFACTS" ]]; then return 0; fi
  local started work
  started="$(now_ms)"
  log "fetching Kafka $KAFKA_VERSION and its runtime dependencies with Maven"
  work="$CACHE/fetch"
  rm -rf "$work" "$LIBS.tmp"
  mkdir -p "$work"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
    echo '  <modelVersion>4.0.0</modelVersion>'
    echo '  <groupId>textstream.local</groupId><artifactId>kafka-broker-libs</artifactId><version>1</version>'
    echo '  <packaging>pom</packaging>'
    echo '  <dependencies>'
    local coordinate group artifact version
    for coordinate in $ARTIFACTS; do
      IFS=: read -r group artifact version <<<"$coordinate"
      echo "    <dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>"
    done
    echo '  </dependencies>'
    echo '</project>'
  } >"$work/pom.xml"
  # Batch mode, no transfer progress: CI logs stay readable. Output only shown on failure.
  if ! mvn -B -q --no-transfer-progress -f "$work/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >"$work/mvn.log" 2>&1; then
    tail -n 40 "$work/mvn.log" >&2
    log "Maven could not fetch the broker (full log: $work/mvn.log)"
    exit 1
  fi
  # Swap in whole: a half-copied libs directory must never look complete.
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  echo "$ARTIFACTS" >"$STAMP"
  log "fetched $(ls "$LIBS" | grep -c '\.jar$') jars ($(du -sh "$LIBS" | cut -f1)) in $(elapsed "$started") s"
}

write_config() {
  mkdir -p "$STATE/data" "$STATE/logs"
  cat >"$STATE/server.properties" <<EOF
# Written by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$STATE/data

# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
default.replication.factor=1
min.insync.replicas=1
num.partitions=1

# Tests create their topics explicitly (auto-create races under KRaft) and start
# consuming at once; a short minimum session lets failover tests use short timeouts.
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Small and short-lived: this broker holds test and development data only. Topics that
# need messages above 1 MiB raise max.message.bytes per topic; segments fit 32 MiB.
log.segment.bytes=33554432
log.retention.hours=24
log.retention.bytes=268435456
log.retention.check.interval.ms=60000
log.segment.delete.delay.ms=1000
log.index.size.max.bytes=1048576
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  cat >"$STATE/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$SERVER_LOG
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
  # Command-line tools (the storage formatter) log warnings to stderr only.
  cat >"$STATE/tools-log4j.properties" <<EOF
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

java_tool() {
  java -Xmx256m -cp "$LIBS/*" -Dlog4j.configuration="file:$STATE/tools-log4j.properties" "$@"
}

cmd_start() {
  lock
  if pid="$(broker_pid)"; then
    if port_open "$PORT"; then
      log "broker already running (pid $pid) on $BOOTSTRAP"
      echo "$BOOTSTRAP"
      return 0
    fi
    log "broker pid $pid is alive but not answering on $BOOTSTRAP; restarting it"
    stop_locked
  fi
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      log "port $p is in use by another process (not a broker this script started);" \
        "stop it or set TEXTSTREAM_KAFKA_PORT"
      exit 1
    fi
  done
  cmd_fetch
  local started
  started="$(now_ms)"
  write_config
  if [[ ! -f "$STATE/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java_tool kafka.tools.StorageTool random-uuid)"
    java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE/server.properties" >&2
  fi
  # The readiness check reads the log, so the previous run's log must not be in the way.
  [[ -f "$SERVER_LOG" ]] && mv -f "$SERVER_LOG" "$SERVER_LOG.previous"
  rm -f "$PID_FILE"
  # setsid: a broker outlives the shell that started it, and Ctrl-C in that shell's
  # terminal (e.g. on `npm test`) does not reach it. bash writes its own pid, then execs
  # Java, so the pid file names the broker itself.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dkafka.logs.dir="$STATE/logs" \
    -Dlog4j.configuration="file:$STATE/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$STATE/server.properties" \
    </dev/null >"$STATE/logs/stdout.log" 2>&1 9>&- &
  local deadline=$(($(date +%s) + START_TIMEOUT_S))
  while true; do
    local pid=''
    [[ -s "$PID_FILE" ]] && pid="$(cat "$PID_FILE")"
    if grep -q 'Kafka Server started' "$SERVER_LOG" 2>/dev/null && port_open "$PORT"; then
      log "broker started (pid $pid) on $BOOTSTRAP in $(elapsed "$started") s; logs: $STATE/logs"
      echo "$BOOTSTRAP"
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      start_failed "the broker exited during startup"
    fi
    if (($(date +%s) >= deadline)); then
      [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      start_failed "the broker was not ready within $START_TIMEOUT_S s"
    fi
    sleep 0.25
  done
}

start_failed() {
  log "$1; last lines of the logs:"
  tail -n 40 "$SERVER_LOG" >&2 2>/dev/null || true
  tail -n 20 "$STATE/logs/stdout.log" >&2 2>/dev/null || true
  exit 1
}

stop_locked() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    log "no broker running on port $PORT"
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= STOP_TIMEOUT_S * 4)); then
      log "no clean shutdown after $STOP_TIMEOUT_S s; killing pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_stop() {
  lock
  stop_locked
}

cmd_status() {
  local pid
  if pid="$(broker_pid)" && port_open "$PORT"; then
    log "running (pid $pid) on $BOOTSTRAP"
    echo "$BOOTSTRAP"
    return 0
  fi
  log "not running on port $PORT"
  return 3
}

cmd_reset() {
  lock
  stop_locked
  rm -rf "$STATE"
  log "deleted $STATE"
}

case "${1:-}" in
  fetch) lock && cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart)
    cmd_stop
    exec 9>&-
    cmd_start
    ;;
  reset) cmd_reset ;;
  *)
    echo "usage: bash scripts/kafka.sh fetch|start|stop|status|restart|reset   (port: TEXTSTREAM_KAFKA_PORT, default 9092)" >&2
    exit 2
    ;;
esac
