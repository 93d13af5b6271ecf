#!/usr/bin/env bash
# Installs what the local backend's kubelet nodes need from Debian's
# packages: containerd (1.6 on Debian 12) with runc, the CNI plugins,
# busybox-static (the preloaded busybox and pause images are made of it),
# nftables and iptables (kube-proxy and the CNI bridge's masquerade),
# iproute2 and util-linux (namespaces). Idempotent: installs only what is
# missing. .ci/run calls it and sets SMEK_REQUIRE_NODES=1, so that a
# missing part fails the node tests instead of skipping them; `make run`
# calls it too when run as root.
set -euo pipefail

declare -A need=(
	[/usr/bin/containerd]=containerd
	[/usr/sbin/runc]=runc
	[/usr/lib/cni/bridge]=containernetworking-plugins
	[/bin/busybox]=busybox-static
	[/usr/sbin/nft]=nftables
	[/usr/sbin/iptables]=iptables
	[/usr/sbin/ip]=iproute2
	[/usr/bin/nsenter]=util-linux
)
missing=()
for path in "${!need[@]}"; do
	[ -e "$path" ] || missing+=("${need[$path]}")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "node-deps: $(containerd --version | cut -d' ' -f1-3), $(runc --version | head -1) already installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "node-deps: local clusters get a node that runs pods once these are installed (as root):" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
# The package enables containerd's own service; the nodes run their own
# containerd each and need none on the host.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
	systemctl disable --now containerd >/dev/null 2>&1 || true
fi
echo "node-deps: installed ${missing[*]}"
