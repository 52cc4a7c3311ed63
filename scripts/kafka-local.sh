#!/usr/bin/env bash
# kafka-local.sh — a real Apache Kafka broker on 127.0.0.1 for deid's tests.
#
#   scripts/kafka-local.sh start    fetch the broker (once), format a fresh
#                                   single-node KRaft log dir, start it in the
#                                   background and wait until it serves
#                                   (with DEID_KAFKA_KEEP=1: restart it on its
#                                   state and port of before, see below)
#   scripts/kafka-local.sh stop     stop it and wait until it has exited
#   scripts/kafka-local.sh status   say whether it runs (exit 0) or not (exit 1)
#   scripts/kafka-local.sh env      print "export DEID_KAFKA_BROKERS=127.0.0.1:PORT",
#                                   for eval "$(scripts/kafka-local.sh env)"
#   scripts/kafka-local.sh fetch    only fetch the jars
#
# The broker jars come from Maven Central through Maven (scripts/kafka/pom.xml)
# into .cache/kafka/<version>/libs, with the Maven repository in .cache/m2, so
# nothing outside the repository is needed and a second run fetches nothing.
# The broker is combined broker+controller (KRaft), listens on 127.0.0.1 only,
# never creates topics on its own, and runs with a small heap (the test
# machines have 2 cores). Its state and logs live in .cache/kafka-local/, or
# in DEID_KAFKA_STATE: each state directory is its own broker (pid, port,
# logs, data), so a test can run a second one beside the shared one, on the
# next free port, and stop and restart it without touching the shared one:
#
#   DEID_KAFKA_STATE=.cache/kafka-mine scripts/kafka-local.sh start
#   DEID_KAFKA_STATE=.cache/kafka-mine scripts/kafka-local.sh stop
#   DEID_KAFKA_STATE=.cache/kafka-mine DEID_KAFKA_KEEP=1 scripts/kafka-local.sh start
#
# Environment:
#   DEID_KAFKA_VERSION        Apache Kafka version (default 4.4.0)
#   DEID_KAFKA_PORT           client port to try first (default 19092); the next
#                             free port is taken when it is busy
#   DEID_KAFKA_START_TIMEOUT  seconds to wait for the broker (default 90)
#   DEID_KAFKA_HEAP           JVM heap (default 512m)
#   DEID_KAFKA_STATE          state directory (default .cache/kafka-local; a
#                             relative path is relative to the repository)
#   DEID_KAFKA_KEEP           1: start keeps the state directory's formatted
#                             log dir, topics, records and port, as a broker
#                             restart does (a fresh one when there is none)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${DEID_KAFKA_VERSION:-4.4.0}"
CACHE="$ROOT/.cache"
LIBS="$CACHE/kafka/$VERSION/libs"
STATE="${DEID_KAFKA_STATE:-$CACHE/kafka-local}"
[[ "$STATE" == /* ]] || STATE="$ROOT/$STATE"
STATE="${STATE%/}"
PIDFILE="$STATE/kafka.pid"
PORTFILE="$STATE/port"
LOGDIR="$STATE/logs"
START_TIMEOUT="${DEID_KAFKA_START_TIMEOUT:-90}"
HEAP="${DEID_KAFKA_HEAP:-512m}"

die() { echo "kafka-local: $*" >&2; exit 1; }
say() { echo "kafka-local: $*" >&2; }

# fetch copies the broker's runtime jars into $LIBS, once.
fetch() {
	if [[ -f "$LIBS/.complete" ]]; then
		return
	fi
	command -v mvn >/dev/null || die "mvn is not installed; it fetches the Kafka jars from Maven Central"
	command -v java >/dev/null || die "java is not installed; Kafka $VERSION needs Java 17 or newer"
	say "fetching Apache Kafka $VERSION from Maven Central into ${LIBS#"$ROOT"/}"
	local tmp="$LIBS.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if ! mvn -B -q -f "$ROOT/scripts/kafka/pom.xml" \
		-Dmaven.repo.local="$CACHE/m2" \
		-Dkafka.version="$VERSION" \
		dependency:copy-dependencies -DoutputDirectory="$tmp" >"$CACHE/kafka-fetch.log" 2>&1; then
		tail -n 30 "$CACHE/kafka-fetch.log" >&2
		rm -rf "$tmp"
		die "could not fetch Kafka $VERSION (full Maven output in ${CACHE#"$ROOT"/}/kafka-fetch.log)"
	fi
	rm -rf "$LIBS"
	mv "$tmp" "$LIBS"
	touch "$LIBS/.complete"
}

# pid prints the broker's pid when it is running (and is ours), else fails.
pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local p
	p="$(cat "$PIDFILE")"
	[[ -n "$p" && -d "/proc/$p" ]] || return 1
	# The pid file may be stale and the pid reused: check it is our broker.
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $STATE/server.properties " || return 1
	echo "$p"
}

# alive tells whether process $1 runs (exists and is not a zombie).
alive() {
	local state
	state="$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null)" && [[ -n "$state" && "$state" != Z ]]
}

# listening tells whether something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints the first port from $1 on that nothing listens on, along
# with the port after it (the controller's).
free_port() {
	local p="$1"
	while listening "$p" || listening "$((p + 1))"; do
		p=$((p + 2))
		((p < 65000)) || die "no free port pair found from $1"
	done
	echo "$p"
}

log_tail() {
	local f
	for f in "$LOGDIR/server.log" "$LOGDIR/stdout.log"; do
		if [[ -s "$f" ]]; then
			echo "--- last lines of ${f#"$ROOT"/} ---" >&2
			tail -n 40 "$f" >&2
		fi
	done
}

# check_state refuses a state directory that this script did not write: a
# fresh start deletes it.
check_state() {
	[[ -n "$STATE" && "$STATE" != "$ROOT" && "$STATE" != "$CACHE" && "$STATE" != "${HOME:-}" ]] ||
		die "DEID_KAFKA_STATE=${DEID_KAFKA_STATE:-} cannot be a state directory"
	if [[ -d "$STATE" && -n "$(ls -A "$STATE")" ]] &&
		! grep -qs "^# Written by scripts/kafka-local.sh" "$STATE/server.properties"; then
		die "$STATE is not empty and holds no broker of this script; not deleting it"
	fi
}

# java_opts are the JVM's options, for the storage tool and the broker.
java_opts=()
set_java_opts() {
	java_opts=(-Xms128m "-Xmx$HEAP" -XX:+UseSerialGC -Djava.awt.headless=true
		"-Dkafka.logs.dir=$LOGDIR" "-Dlog4j2.configurationFile=$ROOT/scripts/kafka/log4j2.properties")
}

start() {
	if p="$(pid)"; then
		say "already running (pid $p) on 127.0.0.1:$(cat "$PORTFILE")"
		return
	fi
	check_state
	fetch
	set_java_opts
	local port
	if [[ "${DEID_KAFKA_KEEP:-}" == 1 && -f "$STATE/data/meta.properties" && -s "$PORTFILE" ]]; then
		# A restart: same log dir (topics, records, offsets), same port.
		port="$(cat "$PORTFILE")"
		if listening "$port" || listening "$((port + 1))"; then
			die "cannot restart on 127.0.0.1:$port: the port (or $((port + 1))) is taken"
		fi
		say "restarting on the state in ${STATE#"$ROOT"/}"
	else
		port="$(free_port "${DEID_KAFKA_PORT:-19092}")"
		format "$port"
	fi
	launch "$port"
}

# format writes a fresh state directory for a broker on 127.0.0.1:$1 (and
# its controller on the port after) and formats its KRaft log dir.
format() {
	local port="$1" cport cluster_id
	cport=$((port + 1))
	rm -rf "$STATE"
	mkdir -p "$STATE/data" "$LOGDIR"
	cat >"$STATE/server.properties" <<EOF
# Written by scripts/kafka-local.sh: a single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$STATE/data
# Tests create every topic they use, with the partitions they need.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Groups form at once and tests may use short sessions.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500
# A small machine: few threads.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
	# A KRaft cluster id is 16 random bytes in URL-safe base64. One that
	# starts with '-' would be read by kafka-storage as an option: draw again.
	cluster_id=-
	while [ "${cluster_id#-}" != "$cluster_id" ]; do
		cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
	done
	if ! java "${java_opts[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
		-t "$cluster_id" -c "$STATE/server.properties" >"$LOGDIR/format.log" 2>&1; then
		cat "$LOGDIR/format.log" >&2
		die "formatting the KRaft log dir failed"
	fi
	echo "$port" >"$PORTFILE"
}

# launch starts the broker of $STATE on port $1 and waits until it serves.
launch() {
	local port="$1" logged=0
	# server.log is appended to: only a line written by this start counts.
	if [[ -f "$LOGDIR/server.log" ]]; then
		logged="$(stat -c %s "$LOGDIR/server.log")"
	fi
	# setsid: the broker outlives the shell (and make) that started it.
	setsid nohup java "${java_opts[@]}" -cp "$LIBS/*" kafka.Kafka "$STATE/server.properties" \
		>>"$LOGDIR/stdout.log" 2>&1 </dev/null &
	local p=$!
	echo "$p" >"$PIDFILE"
	local deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		# Not pid: until the child has exec'd java its command line is
		# this script's.
		if ! alive "$p"; then
			log_tail
			die "the broker exited during start-up"
		fi
		if listening "$port" && tail -c "+$((logged + 1))" "$LOGDIR/server.log" 2>/dev/null | grep -q "Kafka Server started"; then
			break
		fi
		if ((SECONDS >= deadline)); then
			log_tail
			stop 2>/dev/null
			die "the broker did not start within ${START_TIMEOUT}s (DEID_KAFKA_START_TIMEOUT)"
		fi
		sleep 0.2
	done
	say "Apache Kafka $VERSION running (pid $p) on 127.0.0.1:$port; logs in ${LOGDIR#"$ROOT"/}"
}

stop() {
	local p
	if ! p="$(pid)"; then
		rm -f "$PIDFILE"
		say "not running"
		return
	fi
	kill -TERM "$p"
	local deadline=$((SECONDS + 30))
	while [[ -d "/proc/$p" ]]; do
		if ((SECONDS >= deadline)); then
			say "the broker (pid $p) did not stop within 30s; killing it"
			kill -KILL "$p" 2>/dev/null || true
			deadline=$((SECONDS + 10))
		fi
		sleep 0.1
	done
	rm -f "$PIDFILE"
	say "stopped (pid $p)"
}

status() {
	local p
	if p="$(pid)"; then
		echo "kafka-local: running (pid $p) on 127.0.0.1:$(cat "$PORTFILE"), Apache Kafka $VERSION"
		return 0
	fi
	echo "kafka-local: not running"
	return 1
}

env_cmd() {
	pid >/dev/null || die "not running; start it with: scripts/kafka-local.sh start"
	echo "export DEID_KAFKA_BROKERS=127.0.0.1:$(cat "$PORTFILE")"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
env) env_cmd ;;
fetch) fetch ;;
*)
	echo "usage: $0 start|stop|status|env|fetch" >&2
	exit 2
	;;
esac
