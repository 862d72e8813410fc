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
#
# TEXTSTREAM_KAFKA_SASL=1 (with its own port, e.g. TEXTSTREAM_KAFKA_PORT=9096) makes a
# broker that only accepts authenticated clients, for testing SASL and TLS settings:
#   PORT      SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
#   PORT + 1  the controller (PLAINTEXT, broker-internal)
#   PORT + 2  SASL_SSL, the same mechanisms over TLS; certificate for 127.0.0.1 and
#             localhost from a throwaway CA: <state>/tls/ca.pem (client cert optional)
# Users (local test credentials, fixed and public; never use them anywhere else):
#   admin / admin-secret, textstream / textstream-secret. SCRAM users are written at
# format time, so a state directory is formatted for one mode; `reset` to switch.
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
SASL="${TEXTSTREAM_KAFKA_SASL:-0}"
if [[ "$SASL" != 0 && "$SASL" != 1 ]]; then
  echo "kafka: TEXTSTREAM_KAFKA_SASL must be 0 or 1, got '$SASL'" >&2
  exit 2
fi
TLS_PORT=$((PORT + 2))
if ((SASL == 1 && TLS_PORT > 65535)); then
  echo "kafka: with TEXTSTREAM_KAFKA_SASL=1 the port must leave room for its TLS listener (PORT + 2 <= 65535)" >&2
  exit 2
fi
# The fixed local test users (see the header), name:password.
SASL_USERS="admin:admin-secret textstream:textstream-secret"
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
  if ((SASL == 1)); then write_sasl_config >>"$STATE/server.properties"; fi
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

# TEXTSTREAM_KAFKA_SASL=1: these lines come last and replace the PLAINTEXT listeners above
# (a later key wins in a .properties file). Brokers authenticate to each other with PLAIN.
write_sasl_config() {
  local plain='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret"'
  local user name password listener
  for user in $SASL_USERS; do
    IFS=: read -r name password <<<"$user"
    plain+=" user_$name=\"$password\""
  done
  cat <<EOF

# SASL mode (TEXTSTREAM_KAFKA_SASL=1): authenticated clients only; local test users.
listeners=SASL_PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_SSL://127.0.0.1:$TLS_PORT
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$TLS_PORT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=PLAIN
ssl.keystore.type=PEM
ssl.keystore.location=$STATE/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$STATE/tls/ca.pem
ssl.client.auth=requested
EOF
  for listener in sasl_plaintext sasl_ssl; do
    echo "listener.name.$listener.plain.sasl.jaas.config=$plain;"
    echo "listener.name.$listener.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    echo "listener.name.$listener.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  done
}

# A throwaway CA, the broker's certificate (127.0.0.1, localhost) and a client certificate
# whose key is encrypted with the passphrase client-key-secret (for mutual TLS), made once
# per state directory. Built aside and renamed, so a half-made set is never used.
make_tls() {
  local dir="$STATE/tls"
  [[ -s "$dir/broker.pem" ]] && return 0
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  if ! (
    cd "$dir.tmp"
    openssl req -x509 -newkey rsa:2048 -noenc -days 3650 -subj /CN=textstream-local-test-ca -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -noenc -subj /CN=127.0.0.1 -keyout broker.key -out broker.csr
    echo 'subjectAltName=IP:127.0.0.1,DNS:localhost' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile broker.ext -out broker.crt
    cat broker.key broker.crt >broker.pem # Kafka's PEM keystore: the PKCS#8 key, then the certificate
    openssl req -newkey rsa:2048 -passout pass:client-key-secret -subj /CN=textstream -keyout client.key -out client.csr
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -out client.crt
  ) >"$STATE/logs/tls.log" 2>&1; then
    cat "$STATE/logs/tls.log" >&2
    log "could not make the TLS certificates with openssl"
    exit 1
  fi
  mv "$dir.tmp" "$dir"
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
  for p in "$PORT" "$CONTROLLER_PORT" $( ((SASL == 0)) || echo "$TLS_PORT"); do
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
  # SCRAM users live in the metadata log, written when the storage is formatted: a state
  # directory formatted for one mode cannot be switched to the other in place.
  local formatted_sasl=0
  [[ -f "$STATE/sasl-mode" ]] && formatted_sasl=1
  if [[ -f "$STATE/data/meta.properties" ]] && ((formatted_sasl != SASL)); then
    log "$STATE was formatted with TEXTSTREAM_KAFKA_SASL=$formatted_sasl; run \`reset\` with the same" \
      "TEXTSTREAM_KAFKA_PORT first (deletes its data), or use another port"
    exit 1
  fi
  if [[ ! -f "$STATE/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java_tool kafka.tools.StorageTool random-uuid)"
    local scram=() user name password mechanism
    if ((SASL == 1)); then
      for user in $SASL_USERS; do
        IFS=: read -r name password <<<"$user"
        for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do scram+=(--add-scram "$mechanism=[name=$name,password=$password]"); done
      done
    fi
    java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE/server.properties" "${scram[@]}" >&2
    if ((SASL == 1)); then touch "$STATE/sasl-mode"; fi
  fi
  if ((SASL == 1)); then make_tls; fi
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
