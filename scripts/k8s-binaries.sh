#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from source through the Go module
# proxy and caches them under ~/.cache/ferrocast/k8s-<versions>/bin, for the
# Kubernetes end-to-end tests (tests/k8s). Prints the bin directory.
#
# k8s.io/kubernetes points its k8s.io/* staging modules at local folders
# (replace directives), so `go install pkg@version` refuses it; a throwaway
# module of ours requires it and pins every staging module to the matching
# v0.x release instead. etcd's server module does the same with its siblings.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE="${HOME}/.cache/ferrocast/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
BIN="$CACHE/bin"

if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kubectl" ] && [ -x "$BIN/etcd" ]; then
    echo "$BIN"
    exit 0
fi
# Go comes with the machine (/usr/local/go); a non-login shell may lack it on PATH.
if ! command -v go >/dev/null; then
    export PATH="$PATH:/usr/local/go/bin"
fi
if ! command -v go >/dev/null; then
    echo "error: Go is needed to build kube-apiserver and etcd (https://go.dev/dl/)" >&2
    exit 1
fi
mkdir -p "$BIN"
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

# Writes a go.mod for module $1 requiring $2@$3 with the module's own relative
# replace directives turned into versioned ones ($4 = version for siblings).
pinned_module() {
    local dir=$1 module=$2 version=$3 sibling_version=$4
    mkdir -p "$dir"
    local gomod
    gomod=$(cd "$dir" && go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    {
        echo "module ferrocast.local/k8sbuild"
        echo "go 1.24"
        echo "require $module $version"
        grep -E '^\s*[^ ]+ => \.\.?/' "$gomod" | grep -v FORBIDDEN | while read -r name _ _; do
            echo "replace $name => $name $sibling_version"
        done
    } > "$dir/go.mod"
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== building kube-apiserver and kubectl v${K8S_VERSION} (takes a while once; cached in $BIN)" >&2
pinned_module "$WORK/k8s" k8s.io/kubernetes "v${K8S_VERSION}" "v0.${K8S_VERSION#1.}"
(cd "$WORK/k8s" && go build -trimpath -ldflags="-s -w" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl) >&2

echo "== building etcd v${ETCD_VERSION}" >&2
pinned_module "$WORK/etcd" go.etcd.io/etcd/server/v3 "v${ETCD_VERSION}" "v${ETCD_VERSION}"
(cd "$WORK/etcd" && go build -trimpath -ldflags="-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3) >&2

echo "$BIN"
