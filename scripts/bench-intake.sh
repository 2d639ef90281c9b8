#!/usr/bin/env bash
# Intake throughput on loopback: agentic (release build, SQLite, durable
# group commit) against a bare axum handler measured in the same run.
#
#   scripts/bench-intake.sh [duration-seconds] [connections]
#
# Posts a real-shaped ~20 KB pull_request payload, correctly signed, each
# request with its own X-GitHub-Delivery, using wrk (installed from Debian if
# missing). Prints accepted deliveries/s, p50/p99 latency, peak RSS, the
# ratio to the baseline, and checks that every accepted delivery and its job
# are in the store afterwards. Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNECTIONS="${2:-32}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agentic/target}"
export AWS_EC2_METADATA_DISABLED=true

if ! command -v wrk >/dev/null; then
    echo "installing wrk from Debian…"
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

echo "building release binaries (the first build takes a while)…"
cargo build --release --locked --bin agentic --example bare_axum

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
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
wait_http() { for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "server did not start: $1" >&2; exit 1; }

# run_wrk NAME URL PID → prints and records figures
run_wrk() {
    local name="$1" url="$2" pid="$3" out="$WORK/$1.wrk"
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url" >"$out"
    local total non2xx rps p50 p99 rss
    total=$(awk '/requests in/ {print $1}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out"); non2xx=${non2xx:-0}
    p50=$(awk '$1=="50%" {print $2}' "$out"); p99=$(awk '$1=="99%" {print $2}' "$out")
    local secs; secs=$(awk '/requests in/ {gsub(",","",$4); print $4}' "$out")
    rps=$(python3 -c "import re,sys; s='$secs'; v=float(re.sub('[a-z]+$','',s)); u=re.sub('^[0-9.]+','',s); v=v*60 if u=='m' else v/1000 if u=='ms' else v; print(round(($total-$non2xx)/v))")
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    echo "$name: requests=$total non2xx=$non2xx ok/s=$rps p50=$p50 p99=$p99 peak_rss=$((rss/1024))MiB"
    eval "${name}_RPS=$rps; ${name}_OK=$((total-non2xx))"
}

BASE_PORT=$(free_port)
"$CARGO_TARGET_DIR/release/examples/bare_axum" "127.0.0.1:$BASE_PORT" & PIDS+=($!)
BASE_PID=$!
AG_PORT=$(free_port)
AGENTIC_LISTEN="127.0.0.1:$AG_PORT" AGENTIC_DATABASE_URL="sqlite://$WORK/agentic.db" \
AGENTIC_WEBHOOK_SECRET="$SECRET" AGENTIC_APP_CREDENTIALS_PATH="$WORK/app.json" \
AGENTIC_GITHUB_API_URL="http://127.0.0.1:9" RUST_LOG="${RUST_LOG:-warn}" \
    "$CARGO_TARGET_DIR/release/agentic" serve & PIDS+=($!)
AG_PID=$!
wait_http "http://127.0.0.1:$AG_PORT/healthz"

echo "== $DURATION s, $CONNECTIONS connections, 1 wrk thread, 2 cores shared"
run_wrk baseline "http://127.0.0.1:$BASE_PORT/api/github/webhooks" "$BASE_PID"
run_wrk agentic "http://127.0.0.1:$AG_PORT/api/github/webhooks" "$AG_PID"
python3 -c "print(f'ratio agentic/baseline: {$agentic_RPS/$baseline_RPS:.1%}')"

# Nothing lost: stop agentic cleanly, then count what the store holds.
kill -TERM "$AG_PID"; wait "$AG_PID" || true
python3 - "$WORK/agentic.db" "$agentic_OK" <<'PY'
import sqlite3, sys
db, ok = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
d = db.execute("select count(*) from deliveries").fetchone()[0]
j = db.execute("select count(*) from jobs").fetchone()[0]
states = dict(db.execute("select state, count(*) from jobs group by state").fetchall())
print(f"store: deliveries={d} jobs={j} (answered 2xx while wrk counted: {ok}); jobs by state {states}")
# wrk stops counting at the deadline while its last requests are still being
# answered, so the store may hold a few more than wrk counted, never fewer.
sys.exit(0 if d >= ok and j == d else "LOST DELIVERIES OR JOBS")
PY
