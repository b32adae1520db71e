#!/usr/bin/env bash
# Build the local control plane's binaries from the pinned Go modules under build/.
#
# Binaries go to a cache outside the repository, keyed by each module's go.mod and go.sum and
# by the Go version, so a rerun with nothing changed finishes in about a second. Prints the
# directory that holds the binaries on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${KUBECRYPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubecrypt}
bin_dir=$cache_root/bin
# The Go line that Kubernetes v1.36 pins in its .go-version file. A build with a newer Go
# release served an OpenAPI document that helm could not read.
required_go_line=go1.26

export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
go_version=$(go env GOVERSION)
case "$go_version" in
  "$required_go_line" | "$required_go_line".*) ;;
  *)
    echo "build.sh: Go $go_version found, but Kubernetes v1.36 is built with the $required_go_line line." >&2
    echo "build.sh: install Go $required_go_line.x and put it first on PATH." >&2
    exit 1
    ;;
esac

mkdir -p "$bin_dir"

# Build the commands of one module unless the stamp shows this exact module was built already.
build_module() {
  local name=$1 ldflags=$2
  shift 2
  local dir=$here/build/$name
  local stamp_file=$bin_dir/.$name.stamp
  local stamp
  stamp=$(cat "$dir/go.mod" "$dir/go.sum" <(echo "$go_version $ldflags $*") | sha256sum | cut -c1-16)
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    echo "build.sh: $name is up to date" >&2
    return
  fi
  echo "build.sh: building $name ($*)" >&2
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin_dir/" "$@")
  echo "$stamp" > "$stamp_file"
  echo "build.sh: built $name in $((SECONDS - start)) s" >&2
}

kube_version=v1.36.3
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$kube_version"
kube_ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=36"
kube_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
kube_ldflags+=" -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"

build_module kubernetes "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  go.etcd.io/etcd/server/v3
# go build names the etcd command after its module path, which ends in server/v3.
if [ -f "$bin_dir/server" ]; then
  mv "$bin_dir/server" "$bin_dir/etcd"
fi
if [ -d "$here/build/kwok" ]; then
  build_module kwok "" sigs.k8s.io/kwok/cmd/kwok
  # kwok runs no stage unless its configuration lists some. Use the stages that the pinned
  # kwok release ships, read from the module cache rather than copied into this repository.
  kwok_source=$(cd "$here/build/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  stages=$kwok_source/kustomize/stage
  # Write a new file and rename it, so that a control plane starting meanwhile never reads a
  # partial file, and keep the old file when a stage cannot be read.
  stage_names="node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready
    pod/fast/pod-complete pod/fast/pod-delete"
  for stage in $stage_names; do
    if [ ! -f "$stages/$stage.yaml" ]; then
      echo "build.sh: kwok stage $stages/$stage.yaml not found; is the Go module cache" \
        "(go env GOMODCACHE) the one build.sh used before?" >&2
      exit 1
    fi
  done
  staged=$(mktemp "$bin_dir/kwok-stages.XXXXXX")
  for stage in $stage_names; do
    echo "---"
    cat "$stages/$stage.yaml"
  done > "$staged"
  if cmp -s "$staged" "$bin_dir/kwok-stages.yaml"; then
    rm -f "$staged"
  else
    chmod 0644 "$staged"
    mv "$staged" "$bin_dir/kwok-stages.yaml"
  fi
fi
if [ -d "$here/build/helm" ]; then
  # helm template assumes the Kubernetes version set here (1.20 when unset), and charts that
  # require a newer one fail to render; helm's own release build sets it the same way.
  helm_ldflags="-X helm.sh/helm/v3/internal/version.version=v3.21.4"
  for package in pkg/chartutil pkg/lint/rules; do
    helm_ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMajor=1"
    helm_ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMinor=36"
  done
  build_module helm "$helm_ldflags" helm.sh/helm/v3/cmd/helm
fi

echo "$bin_dir"
