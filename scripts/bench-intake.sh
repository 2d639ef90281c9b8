#!/usr/bin/env bash
# Intake throughput on loopback: agentic (release build, durable group
# commit) against a bare axum handler measured in the same run, on each
# store backend.
#
#   scripts/bench-intake.sh [--database sqlite|postgres|replicas|all]
#                           [--prefill] [duration-seconds] [connections]
#
#   sqlite    one replica on a SQLite file (the default)
#   postgres  one replica on a throwaway PostgreSQL
#   replicas  three replicas on one PostgreSQL behind nginx on one port
#   all       the three, in this run
#   --prefill also measure each single-replica backend with a store that
#             already holds a million finished deliveries and a backlog of
#             100,000 queued jobs (the worker drains it during the run;
#             BENCH_QUEUED=0 makes all 1,100,000 finished, to see the size
#             alone)
#
# Posts a real-shaped ~25 KB pull_request payload, correctly signed, each
# request with its own X-GitHub-Delivery, using wrk (and nginx for
# `replicas`; both installed from Debian if missing). Prints accepted
# deliveries/s, p50/p99 latency, peak RSS, the ratio to the baseline, and
# checks that every accepted delivery and its job are in the store
# afterwards. Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
DATABASE=sqlite
PREFILL=0
POSITIONAL=()
while [ $# -gt 0 ]; do
    case "$1" in
        --database) DATABASE="$2"; shift 2 ;;
        --database=*) DATABASE="${1#*=}"; shift ;;
        --prefill) PREFILL=1; shift ;;
        *) POSITIONAL+=("$1"); shift ;;
    esac
done
DURATION="${POSITIONAL[0]:-15}"
# Of the 1,100,000 prefilled jobs, how many are queued (the rest finished).
QUEUED="${BENCH_QUEUED:-100000}"
CONNECTIONS="${POSITIONAL[1]:-32}"
case "$DATABASE" in
    sqlite|postgres|replicas) MODES=("$DATABASE") ;;
    all) MODES=(sqlite postgres replicas) ;;
    *) echo "--database must be sqlite, postgres, replicas or all" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agentic/target}"
export AWS_EC2_METADATA_DISABLED=true

need() { command -v "$1" >/dev/null || { echo "installing $2 from Debian…"; (apt-get update -qq && apt-get install -y -qq "$2") >/dev/null; }; }
need wrk wrk
need sqlite3 sqlite3
[[ " ${MODES[*]} " == *" replicas "* ]] && need nginx nginx

echo "building release binaries (the first build takes a while)…"
# Two builds: an example pulls in the dev-dependencies, and with them the
# test-hooks feature; the binary measured is built as a release is, without.
cargo build --release --locked --bin agentic
cargo build --release --locked --example bare_axum
AGENTIC="$CARGO_TARGET_DIR/release/agentic"

WORK="$(mktemp -d)"
PIDS=()
source scripts/lib/postgres.sh
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_throwaway_postgres
    rm -rf "$WORK"
}
trap cleanup EXIT

SECRET="bench-secret-$(date +%s)"
python3 - "$WORK" "$SECRET" <<'PY'
import hashlib, hmac, json, sys
work, secret = sys.argv[1], sys.argv[2]
body = json.dumps(json.load(open("fixtures/pull_request.opened.json")), separators=(",", ":")).encode()
open(f"{work}/body.json", "wb").write(body)
sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
lua = f"""
wrk.method = "POST"
local f = io.open("{work}/body.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "pull_request"
wrk.headers["X-Hub-Signature-256"] = "{sig}"
local counter = 0
local prefix = ""
function setup(thread) thread:set("prefix", tostring(math.random(1, 1e9))) end
function init(args) prefix = prefix .. tostring(math.random(1, 1e9)) end
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. "-" .. counter
  return wrk.format()
end
"""
open(f"{work}/post.lua", "w").write(lua)
print(f"payload: {len(body)} bytes")
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 600); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "server did not start: $1" >&2; exit 1; }
peak_rss_mib() { local sum=0; for pid in "$@"; do sum=$((sum + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status"))); done; echo $((sum / 1024)); }
RESULTS=()

# run_wrk NAME URL PID... → prints and records figures
run_wrk() {
    local name="$1" url="$2"; shift 2
    local out="$WORK/$name.wrk"
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url" >"$out"
    local total non2xx rps p50 p99 secs
    total=$(awk '/requests in/ {print $1}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out"); non2xx=${non2xx:-0}
    p50=$(awk '$1=="50%" {print $2}' "$out"); p99=$(awk '$1=="99%" {print $2}' "$out")
    secs=$(awk '/requests in/ {gsub(",","",$4); print $4}' "$out")
    rps=$(python3 -c "import re; s='$secs'; v=float(re.sub('[a-z]+$','',s)); u=re.sub('^[0-9.]+','',s); v=v*60 if u=='m' else v/1000 if u=='ms' else v; print(round(($total-$non2xx)/v))")
    local rss; rss=$(peak_rss_mib "$@")
    echo "$name: requests=$total non2xx=$non2xx ok/s=$rps p50=$p50 p99=$p99 peak_rss=${rss}MiB"
    RESULTS+=("$name $rps $p50 $p99 $rss")
    LAST_OK=$((total - non2xx))
}

# agentic_serve PORT DATABASE_URL → starts a replica, sets LAST_PID
agentic_serve() {
    AGENTIC_LISTEN="127.0.0.1:$1" AGENTIC_DATABASE_URL="$2" AGENTIC_WEBHOOK_SECRET="$SECRET" \
    AGENTIC_APP_CREDENTIALS_PATH="$WORK/app.json" AGENTIC_GITHUB_API_URL="http://127.0.0.1:9" \
    AGENTIC_MIGRATE=false RUST_LOG="${RUST_LOG:-warn}" "$AGENTIC" serve &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

stop() { for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }

# prefill_sql → SQL that adds 1,000,000 finished deliveries with their jobs
# and 100,000 queued ones (both backends understand it). The jobs carry the
# payload `agentic replay --dry-run` stores for the bench's delivery, so the
# worker runs the queued ones as it would real review jobs.
prefill_sql() {
    local now payload
    now=$(python3 -c 'import time; print(int(time.time()*1000))')
    payload=$(REVIEW_PAYLOAD_SQL)
    cat <<SQL
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 1100000)
INSERT INTO deliveries (id, event, action, installation_id, repo, outcome, reason, received_at)
SELECT 'pre-' || x, 'pull_request', 'opened', 1 + x % 50, 'o/r', 'accepted', NULL, $now - x FROM g;
INSERT INTO jobs (delivery_id, installation_id, kind, subject, payload, state, attempts, run_after,
                  created_at, updated_at, finished_at)
SELECT id, installation_id, 'review', 'o/r#1', $payload,
       CASE WHEN received_at < $now - $QUEUED THEN 'done' ELSE 'queued' END,
       CASE WHEN received_at < $now - $QUEUED THEN 1 ELSE 0 END,
       received_at, received_at, received_at,
       CASE WHEN received_at < $now - $QUEUED THEN received_at ELSE NULL END
FROM deliveries WHERE id LIKE 'pre-%';
SQL
}

# The stored form of a review job's event, as a SQL string literal: taken
# from a scratch replay of the bench's own payload.
REVIEW_PAYLOAD_SQL() {
    local db="$WORK/payload.db"
    if [ ! -f "$WORK/payload.sql" ]; then
        AGENTIC_DATABASE_URL="sqlite://$db" RUST_LOG=off "$AGENTIC" replay "$WORK/body.json" \
            --event pull_request --delivery-id payload >/dev/null
        sqlite3 "$db" "SELECT quote(payload) FROM jobs LIMIT 1" >"$WORK/payload.sql"
    fi
    cat "$WORK/payload.sql"
}

# count_store URL → "deliveries jobs"
count_store() {
    local q="SELECT (SELECT COUNT(*) FROM deliveries WHERE id NOT LIKE 'pre-%'), (SELECT COUNT(*) FROM jobs WHERE delivery_id NOT LIKE 'pre-%')"
    case "$1" in
        sqlite:*) sqlite3 -separator ' ' "${1#sqlite://}" "$q" ;;
        *) psql -qAt -F ' ' "$1" -c "$q" ;;
    esac
}

check_nothing_lost() {
    local name="$1" url="$2" ok="$3" counts d j
    counts=$(count_store "$url"); d=${counts% *}; j=${counts#* }
    echo "  store after $name: deliveries=$d jobs=$j (wrk counted $ok answered 2xx)"
    # wrk stops counting at its deadline while the last requests are still
    # being answered: the store may hold a few more, never fewer.
    if [ "$d" -lt "$ok" ] || [ "$j" -ne "$d" ]; then echo "LOST DELIVERIES OR JOBS in $name" >&2; exit 1; fi
}

new_postgres_db() {
    local name="bench_$1"
    psql -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
    echo "${PG_URL%/postgres}/$name"
}

# bench_single NAME URL PREFILL
bench_single() {
    local name="$1" url="$2" prefill="$3" port
    AGENTIC_DATABASE_URL="$url" "$AGENTIC" migrate >/dev/null
    if [ "$prefill" = 1 ]; then
        echo "  prefilling $name ($((1100000 - QUEUED)) finished deliveries, $QUEUED queued jobs)…"
        case "$url" in
            sqlite:*) prefill_sql | sqlite3 "${url#sqlite://}" ;;
            *) prefill_sql | psql -q "$url" >/dev/null ;;
        esac
    fi
    port=$(free_port)
    agentic_serve "$port" "$url"
    local pid=$LAST_PID
    wait_http "http://127.0.0.1:$port/readyz"
    run_wrk "$name" "http://127.0.0.1:$port/api/github/webhooks" "$pid"
    stop "$pid"
    check_nothing_lost "$name" "$url" "$LAST_OK"
}

bench_replicas() {
    local url; url=$(new_postgres_db replicas)
    AGENTIC_DATABASE_URL="$url" "$AGENTIC" migrate >/dev/null
    local ports=() pids=() lb
    for _ in 1 2 3; do
        local p; p=$(free_port); ports+=("$p")
        agentic_serve "$p" "$url"; pids+=("$LAST_PID")
    done
    for p in "${ports[@]}"; do wait_http "http://127.0.0.1:$p/readyz"; done
    lb=$(free_port)
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream agentic {
        server 127.0.0.1:${ports[0]};
        server 127.0.0.1:${ports[1]};
        server 127.0.0.1:${ports[2]};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$lb;
        client_max_body_size 26m;
        client_body_buffer_size 64k;
        location / {
            proxy_pass http://agentic;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
    local nginx_pid=$!; PIDS+=("$nginx_pid")
    wait_http "http://127.0.0.1:$lb/readyz"
    run_wrk "postgres_3_replicas" "http://127.0.0.1:$lb/api/github/webhooks" "${pids[@]}"
    stop "$nginx_pid" "${pids[@]}"
    check_nothing_lost "postgres_3_replicas" "$url" "$LAST_OK"
}

BASE_PORT=$(free_port)
"$CARGO_TARGET_DIR/release/examples/bare_axum" "127.0.0.1:$BASE_PORT" & PIDS+=($!)
BASE_PID=$!
# The baseline answers POSTs only: wait until its port takes connections.
for _ in $(seq 1 200); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $BASE_PORT), 1)" 2>/dev/null && break; sleep 0.05; done

if [[ " ${MODES[*]} " != " sqlite " ]]; then start_throwaway_postgres; fi

echo "== $DURATION s, $CONNECTIONS connections, 1 wrk thread, 2 cores shared"
run_wrk baseline "http://127.0.0.1:$BASE_PORT/api/github/webhooks" "$BASE_PID"
BASELINE_RPS=$(echo "${RESULTS[0]}" | awk '{print $2}')
for mode in "${MODES[@]}"; do
    case "$mode" in
        sqlite)
            bench_single sqlite_empty "sqlite://$WORK/empty.db" 0
            [ "$PREFILL" = 1 ] && bench_single sqlite_prefilled "sqlite://$WORK/full.db" 1
            ;;
        postgres)
            bench_single postgres_empty "$(new_postgres_db empty)" 0
            [ "$PREFILL" = 1 ] && bench_single postgres_prefilled "$(new_postgres_db full)" 1
            ;;
        replicas) bench_replicas ;;
    esac
done

echo
echo "| run | accepted/s | p50 | p99 | peak RSS | of baseline |"
echo "|---|---|---|---|---|---|"
for r in "${RESULTS[@]}"; do
    set -- $r
    python3 -c "print(f'| $1 | $2 | $3 | $4 | $5 MiB | {$2/$BASELINE_RPS:.1%} |')"
done
