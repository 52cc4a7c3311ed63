#!/usr/bin/env bash
# s3-local.sh — a real S3-compatible server on 127.0.0.1 for deid's tests:
# the Versity S3 Gateway (versitygw, Apache-2.0) on its POSIX backend.
#
#   scripts/s3-local.sh start    fetch the gateway (once), start it on a fresh
#                                state directory in the background and wait
#                                until it serves (with DEID_S3_KEEP=1: restart
#                                it on its data, credentials and port of before)
#   scripts/s3-local.sh stop     stop it and wait until it has exited
#   scripts/s3-local.sh status   say whether it runs (exit 0) or not (exit 1)
#   scripts/s3-local.sh env      print the exports a client needs, for
#                                eval "$(scripts/s3-local.sh env)"
#   scripts/s3-local.sh fetch    only fetch the gateway
#
# The gateway is built from source by `go install` (through the Go module
# proxy) into .cache/bin/versitygw-<version>, once: a cold build takes about
# two minutes of CPU, a second run fetches nothing. It listens on 127.0.0.1
# only. Its state lives in .cache/s3-local/, or in DEID_S3_STATE: each state
# directory is its own server (pid, port, credentials, logs, data, metadata
# sidecar), so a test can run one of its own beside the shared one, on the
# next free port, and stop and restart it without touching the shared one:
#
#   DEID_S3_STATE=/tmp/s3-mine scripts/s3-local.sh start
#   DEID_S3_STATE=/tmp/s3-mine scripts/s3-local.sh stop
#   DEID_S3_STATE=/tmp/s3-mine DEID_S3_KEEP=1 scripts/s3-local.sh start
#
# The root credentials are made up per state directory (a random secret,
# kept in its "credentials" file, mode 0600) and handed to the gateway in
# its environment, never on its command line. `env` prints them as the
# standard AWS variables, which is how deid (through the AWS credential
# chain) and the tests pick them up.
#
# Environment:
#   DEID_S3_VERSION        versitygw version (default v1.8.0)
#   DEID_S3_PORT           port to try first (default 19000); the next free
#                          port is taken when it is busy
#   DEID_S3_START_TIMEOUT  seconds to wait for the gateway (default 30)
#   DEID_S3_STATE          state directory (default .cache/s3-local; a
#                          relative path is relative to the repository)
#   DEID_S3_KEEP           1: start keeps the state directory's data,
#                          credentials and port, as a server restart does (a
#                          fresh one when there is none)
#   DEID_S3_BUCKET         a bucket to create on start (none by default:
#                          clients create the buckets they use)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${DEID_S3_VERSION:-v1.8.0}"
CACHE="$ROOT/.cache"
BIN="$CACHE/bin/versitygw-$VERSION"
STATE="${DEID_S3_STATE:-$CACHE/s3-local}"
[[ "$STATE" == /* ]] || STATE="$ROOT/$STATE"
STATE="${STATE%/}"
PIDFILE="$STATE/versitygw.pid"
PORTFILE="$STATE/port"
CREDFILE="$STATE/credentials"
LOGDIR="$STATE/logs"
MARK="$STATE/.s3-local"
START_TIMEOUT="${DEID_S3_START_TIMEOUT:-30}"

die() { echo "s3-local: $*" >&2; exit 1; }
say() { echo "s3-local: $*" >&2; }

# fetch builds the gateway into $BIN, once.
fetch() {
	if [[ -x "$BIN" ]]; then
		return
	fi
	command -v go >/dev/null || die "go is not installed; it builds versitygw $VERSION"
	say "building versitygw $VERSION with go install into ${BIN#"$ROOT"/} (about two minutes of CPU, once)"
	local tmp="$CACHE/bin/.versitygw-$VERSION.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if ! GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSION" >"$CACHE/s3-fetch.log" 2>&1; then
		tail -n 30 "$CACHE/s3-fetch.log" >&2
		rm -rf "$tmp"
		die "could not build versitygw $VERSION (full output in ${CACHE#"$ROOT"/}/s3-fetch.log)"
	fi
	mv "$tmp/versitygw" "$BIN"
	rm -rf "$tmp"
}

# pid prints the gateway's pid when it is running (and is ours), else fails.
pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local p
	p="$(cat "$PIDFILE")"
	[[ -n "$p" && -d "/proc/$p" ]] || return 1
	# The pid file may be stale and the pid reused: check it is our gateway.
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--sidecar $STATE/sidecar $STATE/data" || return 1
	echo "$p"
}

# alive tells whether process $1 runs (exists and is not a zombie).
alive() {
	local state
	state="$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null)" && [[ -n "$state" && "$state" != Z ]]
}

# listening tells whether something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# serving tells whether an HTTP server answers on 127.0.0.1:$1 (any status:
# an unsigned request is refused, which is an answer).
serving() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		IFS= read -r -t 5 line <&3 && [[ "$line" == HTTP/1.* ]]
	) 2>/dev/null
}

# free_port prints the first port from $1 on that nothing listens on.
free_port() {
	local p="$1"
	while listening "$p"; do
		p=$((p + 1))
		((p < 65000)) || die "no free port found from $1"
	done
	echo "$p"
}

log_tail() {
	if [[ -s "$LOGDIR/server.log" ]]; then
		echo "--- last lines of ${LOGDIR#"$ROOT"/}/server.log ---" >&2
		tail -n 40 "$LOGDIR/server.log" >&2
	fi
}

# check_state refuses a state directory that this script did not write: a
# fresh start deletes it.
check_state() {
	[[ -n "$STATE" && "$STATE" != "$ROOT" && "$STATE" != "$CACHE" && "$STATE" != "${HOME:-}" && "$STATE" != / ]] ||
		die "DEID_S3_STATE=${DEID_S3_STATE:-} cannot be a state directory"
	if [[ -d "$STATE" && -n "$(ls -A "$STATE")" && ! -f "$MARK" ]]; then
		die "$STATE is not empty and holds no server of this script; not deleting it"
	fi
}

# fresh writes a new, empty state directory with new credentials and a port.
fresh() {
	rm -rf "$STATE"
	mkdir -p "$STATE/data" "$STATE/sidecar" "$LOGDIR"
	echo "Written by scripts/s3-local.sh: a versitygw server for tests." >"$MARK"
	(
		umask 077
		printf 'access=%s\nsecret=%s\n' "deid-local" "$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')" >"$CREDFILE"
	)
	free_port "${DEID_S3_PORT:-19000}" >"$PORTFILE"
}

# cred prints the value of key $1 of the credentials file.
cred() { sed -n "s/^$1=//p" "$CREDFILE"; }

start() {
	if p="$(pid)"; then
		say "already running (pid $p) on 127.0.0.1:$(cat "$PORTFILE")"
		return
	fi
	check_state
	fetch
	local port
	if [[ "${DEID_S3_KEEP:-}" == 1 && -f "$MARK" && -s "$PORTFILE" && -s "$CREDFILE" ]]; then
		# A restart: same data, credentials and port.
		port="$(cat "$PORTFILE")"
		listening "$port" && die "cannot restart on 127.0.0.1:$port: the port is taken"
		say "restarting on the state in ${STATE#"$ROOT"/}"
	else
		fresh
		port="$(cat "$PORTFILE")"
	fi
	launch "$port"
	if [[ -n "${DEID_S3_BUCKET:-}" ]]; then
		make_bucket "$port" "$DEID_S3_BUCKET"
	fi
}

# launch starts the gateway of $STATE on port $1 and waits until it serves.
launch() {
	local port="$1"
	# setsid: the gateway outlives the shell (and make) that started it.
	# The credentials go in the environment, not on the command line.
	ROOT_ACCESS_KEY="$(cred access)" ROOT_SECRET_KEY="$(cred secret)" \
		setsid nohup "$BIN" --port "127.0.0.1:$port" --quiet \
		posix --sidecar "$STATE/sidecar" "$STATE/data" \
		>>"$LOGDIR/server.log" 2>&1 </dev/null &
	local p=$!
	echo "$p" >"$PIDFILE"
	local deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		if ! alive "$p"; then
			log_tail
			die "the gateway exited during start-up"
		fi
		if serving "$port"; then
			break
		fi
		if ((SECONDS >= deadline)); then
			log_tail
			stop 2>/dev/null
			die "the gateway did not start within ${START_TIMEOUT}s (DEID_S3_START_TIMEOUT)"
		fi
		sleep 0.1
	done
	say "versitygw $VERSION running (pid $p) on 127.0.0.1:$port; logs in ${LOGDIR#"$ROOT"/}"
}

# make_bucket creates bucket $2 on the gateway on port $1, owned by the root
# user, through the gateway's admin API (an existing bucket is fine).
make_bucket() {
	local port="$1" bucket="$2" out
	if [[ -d "$STATE/data/$bucket" ]]; then
		return
	fi
	if ! out="$(ADMIN_ACCESS_KEY="$(cred access)" ADMIN_SECRET_KEY="$(cred secret)" \
		"$BIN" admin --endpoint-url "http://127.0.0.1:$port" create-bucket --owner "$(cred access)" --bucket "$bucket" 2>&1)"; then
		echo "$out" >&2
		die "could not create bucket $bucket"
	fi
	say "bucket $bucket created"
}

stop() {
	local p
	if ! p="$(pid)"; then
		rm -f "$PIDFILE"
		say "not running"
		return
	fi
	kill -TERM "$p"
	local deadline=$((SECONDS + 15))
	while [[ -d "/proc/$p" ]] && alive "$p"; do
		if ((SECONDS >= deadline)); then
			say "the gateway (pid $p) did not stop within 15s; killing it"
			kill -KILL "$p" 2>/dev/null || true
			deadline=$((SECONDS + 10))
		fi
		sleep 0.05
	done
	rm -f "$PIDFILE"
	say "stopped (pid $p)"
}

status() {
	local p
	if p="$(pid)"; then
		echo "s3-local: running (pid $p) on 127.0.0.1:$(cat "$PORTFILE"), versitygw $VERSION"
		return 0
	fi
	echo "s3-local: not running"
	return 1
}

env_cmd() {
	pid >/dev/null || die "not running; start it with: scripts/s3-local.sh start"
	echo "export AWS_ACCESS_KEY_ID=$(cred access) AWS_SECRET_ACCESS_KEY=$(cred secret) AWS_REGION=us-east-1 DEID_S3_ENDPOINT=http://127.0.0.1:$(cat "$PORTFILE")"
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
