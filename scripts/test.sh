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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
