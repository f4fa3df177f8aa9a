#!/usr/bin/env bash
# pgtest.sh CMD…: runs CMD with TEST_DATABASE_URL pointing at a throwaway PostgreSQL
# server (a cluster in a temporary folder, on a free loopback port), then stops the server
# and removes the folder. The store's tests create a database of their own on it for each
# test. Without PostgreSQL (and no way to install it) CMD runs without TEST_DATABASE_URL:
# the PostgreSQL tests then skip, or fail under CI=true.
#
#   bash store/pgtest.sh go test -race -count=1 ./store/
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: bash store/pgtest.sh CMD [ARGS…]" >&2
	exit 2
fi

# without_postgres WHY CMD…: says why, then runs CMD as it is.
without_postgres() {
	echo "pgtest.sh: $1; running without TEST_DATABASE_URL (the PostgreSQL tests skip, or fail with CI=true)" >&2
	shift
	exec "$@"
}

find_initdb() { { ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null || true; } | sort -V | tail -n 1; }

initdb=$(find_initdb)
if [ -z "$initdb" ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		without_postgres "no PostgreSQL (/usr/lib/postgresql/*/bin/initdb), and installing it needs root and apt-get" "$@"
	fi
	echo "pgtest.sh: installing Debian's postgresql" >&2
	# Keep the package's own cluster from starting: the tests use theirs (a policy-rc.d that
	# refuses every start, only while installing, and only when there is none already).
	policy=/usr/sbin/policy-rc.d
	own_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
	fi
	install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
	if ! install; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
		install || true
	fi
	if [ -n "$own_policy" ]; then rm -f "$policy"; fi
	initdb=$(find_initdb)
	if [ -z "$initdb" ]; then
		without_postgres "apt-get install postgresql did not provide initdb" "$@"
	fi
fi
bin=$(dirname "$initdb")

# initdb and the server refuse to run as root: as root, run them as postgres.
as_owner() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		without_postgres "running as root and there is no postgres user to run the server as" "$@"
	fi
	as_owner() { runuser -u postgres -- "$@"; }
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pgtest.XXXXXX")
chmod 700 "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
data="$dir/data"
stop() {
	as_owner "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT

as_owner "$initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
	cat "$dir/initdb.log" >&2
	echo "pgtest.sh: initdb failed" >&2
	exit 1
}

# A free loopback port: a random one nothing answers on (bash's /dev/tcp), tried again if
# the server cannot have it after all.
started=""
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
	if as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 -o \
		"-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null 2>&1; then
		started=1
		break
	fi
done
if [ -z "$started" ]; then
	cat "$dir/server.log" >&2 || true
	echo "pgtest.sh: the PostgreSQL server did not start" >&2
	exit 1
fi

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "pgtest.sh: $("$bin/postgres" --version) on 127.0.0.1:$port" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
