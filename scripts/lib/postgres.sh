# A throwaway PostgreSQL cluster for tests and benchmarks, sourced by
# scripts/test.sh and scripts/bench-intake.sh.
#
#   start_throwaway_postgres   # sets PG_URL (postgres://agentic@127.0.0.1:PORT/postgres)
#   stop_throwaway_postgres    # stops it and removes its files (call from an EXIT trap)
#
# Debian's `postgresql` package is installed if missing. initdb refuses to
# run as root, so as root the cluster belongs to the `postgres` user. It
# listens on a free loopback port only; fsync is off (nothing in it is kept).

PG_DIR=""
PG_BIN=""
PG_USER="$(id -un)"

pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

start_throwaway_postgres() {
    pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
    PG_BIN="$(pg_bin)"
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        echo "== installing PostgreSQL from Debian's packages (first run only)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN="$(pg_bin)"
    fi
    if [ "$(id -u)" = 0 ]; then
        PG_USER=postgres
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    fi
    PG_DIR="$(mktemp -d)"
    chown "$PG_USER" "$PG_DIR"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U agentic --auth=trust -E UTF8 >/dev/null
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c max_connections=400" \
        start >/dev/null
    PG_URL="postgres://agentic@127.0.0.1:$port/postgres"
    echo "== PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

stop_throwaway_postgres() {
    if [ -n "$PG_DIR" ]; then
        pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
        PG_DIR=""
    fi
}
