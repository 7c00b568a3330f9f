#!/usr/bin/env bash
# scripts/test.sh: what `make test` and CI run.
#
# On a fresh Debian 12 machine it
#   1. installs the test peers and oracles that are missing (when root),
#   2. runs go vet,
#   3. starts a private PostgreSQL server on a free loopback port with its data
#      directory in a fresh temporary directory,
#   4. runs the tests with BILDRUM_TEST_POSTGRES pointing at that server and
#      BILDRUM_REQUIRE_EXTERNAL=1, so that a missing program fails a test
#      instead of skipping it,
#   5. stops the server and removes the directory, whatever happened,
# and exits with the status of the tests.
#
# Environment:
#   TEST_PACKAGES  packages to vet and test (default ./...)
#   GOTESTFLAGS    more flags for go test, split on spaces (e.g. "-run TestX -v")
set -euo pipefail

cd "$(dirname "$0")/.."

TEST_PACKAGES=${TEST_PACKAGES:-./...}
GOTESTFLAGS=${GOTESTFLAGS:-}

log() { printf 'test.sh: %s\n' "$*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# --- 1. Test peers and oracles ---------------------------------------------
#
# Each Debian package is checked by something it installs. A package is only
# installed when that is missing, so a machine that has everything does not
# need the network.

newest_pg_bin() {
	# /usr/lib/postgresql/<major>/bin with the highest major version.
	local d v best='' best_v=0
	for d in /usr/lib/postgresql/*/bin; do
		v=${d#/usr/lib/postgresql/}
		v=${v%/bin}
		if [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$best_v" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			best=$d best_v=$v
		fi
	done
	[ -n "$best" ] && printf '%s\n' "$best"
}

# have_program also looks in /usr/sbin, which is not in an ordinary user's
# PATH on Debian but is where Orthanc lives.
have_program() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

have_package() {
	case "$1" in
	postgresql) newest_pg_bin >/dev/null ;;
	chromium) have_program chromium ;;
	dcmtk) have_program dcmdump ;;
	orthanc) have_program Orthanc ;;
	orthanc-dicomweb) compgen -G '/usr/share/orthanc/plugins/libOrthancDicomWeb.so*' >/dev/null ||
		compgen -G '/usr/lib/orthanc/libOrthancDicomWeb.so*' >/dev/null ;;
	dicom3tools) have_program dciodvfy ;;
	# Debian's pydicom is for Debian's python, not a python3 earlier in PATH.
	python3-pydicom) [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pydicom' >/dev/null 2>&1 ;;
	libgdcm-tools) have_program gdcmconv ;;
	sqlite3) have_program sqlite3 ;;
	npm) have_program npm ;;
	*) return 1 ;;
	esac
}

install_missing() {
	local missing=() pkg
	for pkg in postgresql chromium dcmtk orthanc orthanc-dicomweb dicom3tools python3-pydicom libgdcm-tools npm sqlite3; do
		have_package "$pkg" || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	if ! is_root; then
		log "missing (not root, so not installing): ${missing[*]}"
		log "tests that need them will fail under BILDRUM_REQUIRE_EXTERNAL=1; install with:"
		log "  sudo apt-get install --no-install-recommends ${missing[*]}"
		return 0
	fi

	log "installing ${missing[*]}"
	# apt and dpkg print pages of progress; keep it in a file and show it
	# only when something fails.
	local aptlog
	aptlog=$(mktemp)
	if ! { apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		log "apt-get failed"
		exit 1
	fi
	rm -f "$aptlog"
}

install_missing

# npm packages of tests: each folder with a package-lock.json gets exactly
# the locked versions, once (npm ci), when node_modules is missing. Browser
# tests load dicomweb-client from dicomweb/testdata/js; the s3:// tests of
# the archive start s3rver, an S3-compatible server, from
# archive/testdata/s3rver.
install_npm() {
	local dir
	for dir in dicomweb/testdata/js archive/testdata/s3rver; do
		[ -f "$dir/package-lock.json" ] || continue
		[ -d "$dir/node_modules" ] && continue
		if ! command -v npm >/dev/null 2>&1; then
			log "npm is missing, so $dir/node_modules is not installed; tests that need it fail"
			continue
		fi
		log "installing the npm packages of $dir"
		if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2; then
			log "npm ci in $dir failed"
			exit 1
		fi
	done
}

install_npm

command -v go >/dev/null || { log "go is not in PATH"; exit 1; }

# The C2SP witness the transparency log's witness test runs against. It is
# installed at its exact version, apart from our go.mod: torchwood's module
# graph names sigsum.org/sigsum-go, which the module proxy here does not
# serve (tlog/witness_test.go). The binary is kept per version in the Go
# cache directory, so only the first run fetches and builds it.
LITEWITNESS_VERSION=v0.9.0
install_litewitness() {
	local dir
	dir="$(go env GOCACHE)/bildrum-tools/litewitness-$LITEWITNESS_VERSION"
	if [ ! -x "$dir/litewitness" ]; then
		log "installing filippo.io/torchwood/cmd/litewitness@$LITEWITNESS_VERSION"
		mkdir -p "$dir"
		if ! GOBIN="$dir" go install "filippo.io/torchwood/cmd/litewitness@$LITEWITNESS_VERSION" >&2; then
			log "go install litewitness failed; the witness test will fail"
			return 0
		fi
	fi
	export BILDRUM_LITEWITNESS="$dir/litewitness"
}

install_litewitness

# --- 2. go vet ---------------------------------------------------------------
#
# Before the server starts: a package that does not compile fails here fast.

# shellcheck disable=SC2086 # TEST_PACKAGES may name several packages
go vet $TEST_PACKAGES

# --- 3. A private PostgreSQL server ------------------------------------------

pgtmp=
pg_bin=
pg_started=

# as_pg runs a PostgreSQL program as the owner of the data directory.
# initdb and postgres refuse to run as root, so when we are root (CI) they
# run as the unprivileged `postgres` system user that Debian's postgresql
# package creates. runuser, unlike sudo, needs no configuration and no
# terminal. The cd avoids warnings about a working directory that user
# cannot read.
as_pg() {
	if is_root; then
		(cd "$pgtmp" && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# shellcheck disable=SC2317 # cleanup and stop_tests run from traps
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	# postmaster.pid, not pg_started: a signal during pg_ctl start can
	# leave a server running that the script has not recorded yet.
	if [ -n "$pgtmp" ] && [ -f "$pgtmp/data/postmaster.pid" ]; then
		as_pg "$pg_bin/pg_ctl" stop -D "$pgtmp/data" -m fast -w -t 60 >/dev/null ||
			log "pg_ctl stop failed; server log: $pgtmp/server.log"
	fi
	if [ -n "$pgtmp" ]; then
		rm -rf "$pgtmp"
	fi
	exit "$status"
}

gotest=

# stop_tests interrupts a running go test. go test runs in a session of its
# own (see below), so a signal sent to this script alone, as CI sends TERM at
# a timeout, reaches it only through here. On SIGINT the go command stops its
# test binaries and prints what it has.
# shellcheck disable=SC2317
stop_tests() {
	if [ -n "$gotest" ] && kill -0 "$gotest" 2>/dev/null; then
		kill -INT -- "-$gotest" 2>/dev/null || true
		wait "$gotest" 2>/dev/null || true
	fi
}

trap cleanup EXIT
# A signal ends the script through the EXIT trap, with the usual status.
trap 'stop_tests; exit 130' INT
trap 'stop_tests; exit 143' TERM

start_postgres() {
	if ! pg_bin=$(newest_pg_bin); then
		log "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); not starting a server"
		return 0
	fi
	if is_root && ! id postgres >/dev/null 2>&1; then
		log "running as root but there is no postgres user to run PostgreSQL as; not starting a server"
		return 0
	fi

	# When root, the directory must be reachable by the postgres user, so it
	# goes in /tmp even if TMPDIR names a directory private to root.
	local parent=${TMPDIR:-/tmp}
	is_root && parent=/tmp
	pgtmp=$(mktemp -d "$parent/bildrum-pg.XXXXXX")
	mkdir "$pgtmp/socket"
	if is_root; then
		chown -R postgres: "$pgtmp"
	fi

	local t0
	t0=$(date +%s%N)
	# trust: no password in the URL. Anyone on this machine who can reach
	# 127.0.0.1 can use the server while the tests run; it holds only test
	# data and is gone afterwards.
	if ! as_pg "$pg_bin/initdb" -D "$pgtmp/data" -U bildrum --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 --no-sync >"$pgtmp/initdb.log" 2>&1; then
		cat "$pgtmp/initdb.log" >&2
		log "initdb failed"
		exit 1
	fi
	# Durability is worthless for throwaway test data; speed is not.
	# Enough connections for packages tested in parallel, each with a pool.
	cat >>"$pgtmp/data/postgresql.conf" <<-EOF

		# scripts/test.sh
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$pgtmp/socket'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 300
	EOF

	# Try free ports from a random start in 54300-54399. A port can be taken
	# between the check and the start, so a start that fails to bind moves
	# on to the next port.
	local i port
	local first=$((54300 + RANDOM % 100))
	for i in $(seq 0 99); do
		port=$((54300 + (first - 54300 + i) % 100))
		# Something answers: the port is in use.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		# -w: pg_ctl waits until the server accepts connections, and
		# returns an error at once if the server process dies.
		if as_pg "$pg_bin/pg_ctl" start -D "$pgtmp/data" -l "$pgtmp/server.log" \
			-w -t 60 -o "-p $port" >/dev/null 2>&1; then
			pg_started=1
			break
		fi
		if grep -q 'could not bind\|Address already in use' "$pgtmp/server.log" 2>/dev/null; then
			: >"$pgtmp/server.log"
			continue
		fi
		cat "$pgtmp/server.log" >&2 || true
		log "PostgreSQL did not start"
		exit 1
	done
	if [ -z "$pg_started" ]; then
		log "no free port in 54300-54399 for PostgreSQL"
		exit 1
	fi

	# Check the TCP listener the tests use, not only the socket pg_ctl saw.
	for i in $(seq 1 100); do
		if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U bildrum -d postgres; then
			break
		fi
		if [ "$i" -eq 100 ]; then
			cat "$pgtmp/server.log" >&2
			log "PostgreSQL on 127.0.0.1:$port is not ready"
			exit 1
		fi
		sleep 0.1
	done

	export BILDRUM_TEST_POSTGRES="postgres://bildrum@127.0.0.1:$port/postgres?sslmode=disable"
	log "PostgreSQL $(basename "$(dirname "$pg_bin")") on 127.0.0.1:$port, data in $pgtmp, ready in $((($(date +%s%N) - t0) / 1000000)) ms"
}

start_postgres

# --- 4. Tests ----------------------------------------------------------------

export BILDRUM_REQUIRE_EXTERNAL=1

# go test runs in the background, in a new session (setsid; it does not fork
# here, since a background job is no process group leader, so $! is its
# process group), and the script waits for it. Bash runs a trap only when the
# foreground command has ended, but it interrupts `wait` at once: so a
# signal stops the tests and the server promptly, not after 15 minutes.
status=0
# shellcheck disable=SC2086 # both are lists, split on purpose
setsid go test -count=1 -timeout 15m $GOTESTFLAGS $TEST_PACKAGES &
gotest=$!
wait "$gotest" || status=$?
gotest=
exit "$status"
