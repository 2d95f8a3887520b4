#!/usr/bin/env bash
# Run a command with DATABASE_URL pointing at a throwaway PostgreSQL cluster on a private
# Unix socket (no TCP listener), removed afterwards. Uses the installed server binaries and
# installs Debian's postgresql package when they are missing and we are root.
set -euo pipefail

find_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's postgresql server package"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    BINDIR=$(find_bindir)
  fi
fi
if [ -z "$BINDIR" ]; then
  echo "PostgreSQL server binaries (initdb, pg_ctl) not found and cannot be installed (not root)" >&2
  exit 1
fi

ROOT=$(mktemp -d /tmp/touchstone-pg.XXXXXX)
DATA="$ROOT/data"; SOCK="$ROOT/sock"; mkdir -p "$DATA" "$SOCK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# PostgreSQL refuses to run as root: run the server as the postgres system user then.
AS=()
if [ "$(id -u)" = "0" ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown -R postgres "$ROOT"
  AS=(runuser -u postgres --)
fi

cleanup() {
  "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$ROOT"
}
trap cleanup EXIT

"${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-sync >/dev/null
"${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$ROOT/server.log" -w -t 60 \
  -o "-c listen_addresses='' -k $SOCK -p $PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null

# The database the command uses (the test suite makes its own test_touchstone next to it).
"${AS[@]}" "$BINDIR/createdb" -h "$SOCK" -p "$PORT" -U postgres touchstone

SOCK_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$SOCK")
export DATABASE_URL="postgres://postgres@$SOCK_ENC:$PORT/touchstone"
echo "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') at $SOCK (port $PORT)"
"$@"
