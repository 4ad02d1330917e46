#!/usr/bin/env bash
# Build the e2e toolchain from published Go modules (the Go module proxy, nothing else) into a cache outside
# the repository: the Pulumi CLI, the Kubernetes provider, etcd, kube-apiserver / kube-scheduler /
# kube-controller-manager, Kueue and kwok. Each sub-folder is a tiny module of ours that pins one upstream
# module; nothing upstream is vendored or committed. Cold: tens of minutes on 2 cores; warm: nothing to do.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$(python3 "$here/key.py")"
if [ -f "$dest/COMPLETE" ]; then
  echo "e2e toolchain up to date: $dest/bin"
  exit 0
fi
mkdir -p "$dest/bin" "$dest/work"
bin="$dest/bin"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
start=$SECONDS
step() { echo "== $* ($((SECONDS - start)) s)"; }

# Versions the binaries report (the Python SDK packages in pyproject.toml are pinned to match).
PULUMI_VERSION=v3.274.1
KUBERNETES_PROVIDER_VERSION=4.25.0   # github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-20260115033456-f47bc2d6f199 is tag v4.25.0

step "pulumi CLI $PULUMI_VERSION (pkg/v3 built as a tool of our module: its replace directives do not apply to us)"
(cd "$here/pulumi" && go build -o "$bin/pulumi" \
  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)

step "pulumi-resource-kubernetes $KUBERNETES_PROVIDER_VERSION (our main.go; the schema it embeds comes from the module)"
work="$dest/work/pulumi-resource-kubernetes"
rm -rf "$work" && mkdir -p "$work"
cp "$here/pulumi-resource-kubernetes/go.mod" "$here/pulumi-resource-kubernetes/go.sum" \
   "$here/pulumi-resource-kubernetes/main.go" "$work/"
module_dir="$(cd "$work" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)"
cp "$module_dir/cmd/pulumi-resource-kubernetes/schema.json" "$work/schema-embed.json"
cp "$module_dir/cmd/pulumi-resource-kubernetes/terraform-mapping.json" "$work/terraform-mapping-embed.json"
chmod u+w "$work"/*.json
(cd "$work" && go build -o "$bin/pulumi-resource-kubernetes" \
  -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" .)

step "etcd (go.etcd.io/etcd/server/v3, our main.go)"
(cd "$here/etcd" && go build -o "$bin/etcd" .)

# The version the binaries report (clients such as the Kubernetes provider read it from /version).
kube_version="-X k8s.io/component-base/version.gitVersion=v1.36.3 -X k8s.io/component-base/version.gitMajor=1"
kube_version="$kube_version -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"
for component in kube-apiserver kube-scheduler kube-controller-manager; do
  step "$component (k8s.io/kubernetes v1.36.3, staging modules pinned to v0.36.3)"
  (cd "$here/kube" && go build -o "$bin/$component" -ldflags "$kube_version" "k8s.io/kubernetes/cmd/$component")
done

step "kueue (sigs.k8s.io/kueue: the newest version the proxy serves)"
(cd "$here/kueue" && go build -o "$bin/kueue" sigs.k8s.io/kueue/cmd/kueue)

step "kwok (fake nodes that report Ready and run pods)"
(cd "$here/kwok" && go build -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok)

rm -rf "$dest/work"
echo "built in $((SECONDS - start)) s" > "$dest/COMPLETE"
step "done: $bin"
