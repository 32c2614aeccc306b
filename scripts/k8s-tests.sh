#!/usr/bin/env bash
# Runs the Kubernetes discovery tests (tests/k8s) against a real
# kube-apiserver and etcd, inside a network namespace of their own: there
# 10.244.0.0/16 (the "pod" addresses the API server accepts in
# EndpointSlices, unlike 127.x) is local, and with no other interface and no
# default route nothing can leave the machine.
#   scripts/k8s-tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(bash scripts/k8s-binaries.sh)
VENV="${FERROCAST_VENV:-${HOME}/.cache/ferrocast/python-hazelcast-5.7.0}"
NS="ferrocast-k8s-$$"
ip netns add "$NS"
trap 'ip netns pids "$NS" 2>/dev/null | xargs -r kill -9; ip netns del "$NS"' EXIT
ip -n "$NS" link set lo up
ip -n "$NS" route add local 10.244.0.0/16 dev lo
FERROCAST_K8S_BIN="$BIN" ip netns exec "$NS" "$VENV/bin/pytest" -q -p no:cacheprovider tests/k8s "$@"
