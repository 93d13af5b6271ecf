#!/usr/bin/env bash
# nftables and iptables (with iproute2's ip netns) let the metadata-block test
# load SMEK's node rules into a network namespace pair and send packets
# through them, next to an iptables ACCEPT as kube-router inserts it.
set -euo pipefail
if command -v nft >/dev/null && command -v iptables >/dev/null && command -v ip >/dev/null; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nftables iptables iproute2 >/dev/null
