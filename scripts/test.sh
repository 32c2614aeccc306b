#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# then checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "error: cargo is not installed (install Rust with rustup first)" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# Integration tests start real member processes on 127.0.N.x; a few test
# threads at a time keep a 2-core machine responsive enough for the
# failure detectors' timings.
cargo test --workspace --locked -- --test-threads="${FERROCAST_TEST_THREADS:-3}"
