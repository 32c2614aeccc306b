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

# The real Hazelcast Python client for the interop tests, in a virtualenv
# cached by version.
HZ_PY_VERSION=5.7.0
VENV="${HOME}/.cache/ferrocast/python-hazelcast-${HZ_PY_VERSION}"
if [ ! -x "$VENV/bin/pytest" ] || ! "$VENV/bin/python" -c "import hazelcast" 2>/dev/null; then
    echo "== installing hazelcast-python-client ${HZ_PY_VERSION} and pytest into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "hazelcast-python-client==${HZ_PY_VERSION}" pytest
fi

# Debian packages for the Kubernetes/DNS and container tests: dnsmasq (a
# real DNS server on loopback), podman and runc (the image and containers),
# openssl (the test CA), iproute2 (the network namespace), util-linux
# (unshare), binutils (readelf checks the static binary).
missing=()
for pkg in dnsmasq podman runc openssl iproute2 util-linux binutils; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
# kube-apiserver, kubectl and etcd, built from source once (cached by version).
echo "== Kubernetes binaries"
bash scripts/k8s-binaries.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# Integration tests start real member processes on 127.0.N.x; a few test
# threads at a time keep a 2-core machine responsive enough for the
# failure detectors' timings.
cargo test --workspace --locked -- --test-threads="${FERROCAST_TEST_THREADS:-3}" --skip chaos_
echo "== fault injection (prints writes acknowledged, lost, longest stall per scenario)"
# Same build as above (a -p build would resolve features differently and
# recompile); the filter selects the chaos scenarios.
cargo test --workspace --locked -- chaos_ --nocapture --test-threads="${FERROCAST_TEST_THREADS:-3}"

echo "== interop: hazelcast-python-client ${HZ_PY_VERSION}"
cargo build --locked -p ferrocast-server -p ferrocast-client --examples --bins
FERROCAST_BIN="$PWD/target/debug/ferrocast" "$VENV/bin/pytest" -q -p no:cacheprovider tests/interop

echo "== Kubernetes API and DNS discovery: real kube-apiserver, etcd and dnsmasq"
FERROCAST_BIN="$PWD/target/debug/ferrocast" bash scripts/k8s-tests.sh

echo "== container image: podman build, three containers"
"$VENV/bin/pytest" -q -s -p no:cacheprovider tests/container
