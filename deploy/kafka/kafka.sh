#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft: broker and controller in one JVM) for tests, from the
# jars of the version pinned in pom.xml beside this script (Maven Central; Java 17+ and python3).
#
#   kafka.sh fetch          download the jars once into $KAFKA_CACHE_DIR (idempotent)
#   kafka.sh libs           print the jar folder; exit 1 if fetch has not been run
#   kafka.sh start DIR      configure (first time: free ports, random cluster id, storage formatted
#                           in DIR), start in the background, wait until it serves requests, and
#                           write DIR/broker.env (pid=..., bootstrap=127.0.0.1:PORT), also printed
#   kafka.sh stop DIR       SIGTERM, then SIGKILL after $KAFKA_STOP_TIMEOUT seconds (default 30)
#   kafka.sh kill DIR       SIGKILL (a broker crash)
#   kafka.sh restart DIR    stop, then start on the same ports and data
#
# KAFKA_CACHE_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/cascade-monitor/kafka-<version>;
# KAFKA_START_TIMEOUT (seconds, default 90) bounds the wait; KAFKA_HEAP_OPTS (default -Xmx512m).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")
CACHE=${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade-monitor/kafka-$VERSION}
LIBS=$CACHE/libs
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
PROBE=(python3 "$HERE/probe.py")

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  [ -f "$LIBS/.complete" ] && return
  rm -rf "$LIBS.part" && mkdir -p "$CACHE"
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIBS.part" \
    >"$CACHE/mvn.log" 2>&1 || die "maven failed; the end of $CACHE/mvn.log:
$(tail -n 30 "$CACHE/mvn.log")"
  touch "$LIBS.part/.complete"
  rm -rf "$LIBS" && mv "$LIBS.part" "$LIBS"
}

libs() {
  [ -f "$LIBS/.complete" ] || die "Apache Kafka $VERSION is not fetched into $CACHE: run $0 fetch"
  echo "$LIBS"
}

pid_of() { sed -n 's/^pid=//p' "$1/broker.env" 2>/dev/null || true; }

# Whether PID is this DIR's broker and has not exited (a zombie has exited).
running() {
  local pid=$1 dir=$2 state
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/server.properties" || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

configure() {
  local dir=$1 port cport
  { read -r port; read -r cport; } < <("${PROBE[@]}" ports 2)
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  "$JAVA" -cp "$LIBS/*" -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    kafka.tools.StorageTool format --standalone --cluster-id "$("${PROBE[@]}" cluster-id)" \
    --config "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || die "storage format failed: $(cat "$dir/format.log")"
}

start() {
  local dir pid port from why rc=0
  libs >/dev/null
  mkdir -p "$1" && dir=$(cd "$1" && pwd)
  running "$(pid_of "$dir")" "$dir" && die "a broker is already running in $dir"
  [ -f "$dir/data/meta.properties" ] || configure "$dir"
  port=$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1://p' "$dir/server.properties")
  touch "$dir/broker.log" && from=$(($(wc -l <"$dir/broker.log") + 1))  # this run's first line
  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS holds several JVM options
  nohup "$JAVA" ${KAFKA_HEAP_OPTS:--Xmx512m} -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1 </dev/null &
  pid=$!
  printf 'pid=%s\nbootstrap=127.0.0.1:%s\n' "$pid" "$port" | tee "$dir/broker.env"
  "${PROBE[@]}" wait "127.0.0.1:$port" "$pid" "${KAFKA_START_TIMEOUT:-90}" || rc=$?
  if [ "$rc" != 0 ]; then
    [ "$rc" = 2 ] && why="exited" || why="did not answer within ${KAFKA_START_TIMEOUT:-90}s"
    running "$pid" "$dir" && kill -KILL "$pid"
    die "broker $why; its errors and the end of $dir/broker.log:
$(tail -n "+$from" "$dir/broker.log" | grep -m 5 -E '^\[[^]]*\] (ERROR|FATAL)')
...
$(tail -n 20 "$dir/broker.log")"
  fi
}

# signal DIR SIG TIMEOUT: send SIG to DIR's broker and wait up to TIMEOUT s for it to exit.
signal() {
  local dir pid deadline
  [ -d "$1" ] || die "no broker directory $1"
  dir=$(cd "$1" && pwd) && pid=$(pid_of "$dir")
  running "$pid" "$dir" || return 0
  kill "-$2" "$pid"
  deadline=$((SECONDS + $3))
  while running "$pid" "$dir"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

stop() {
  signal "$1" TERM "${KAFKA_STOP_TIMEOUT:-30}" || signal "$1" KILL 10 \
    || die "broker in $1 did not exit after SIGKILL"
}

kill_() { signal "$1" KILL 10 || die "broker in $1 did not exit after SIGKILL"; }

case "${1:-} ${2:+DIR}" in
  "fetch ") fetch ;;
  "libs ") libs ;;
  "start DIR") start "$2" ;;
  "stop DIR") stop "$2" ;;
  "kill DIR") kill_ "$2" ;;
  "restart DIR") stop "$2" && start "$2" ;;
  *) die "usage: kafka.sh fetch | libs | start DIR | stop DIR | kill DIR | restart DIR" ;;
esac
