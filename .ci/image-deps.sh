#!/usr/bin/env bash
# Installs what the action image's test (action TestImage) needs: podman,
# which builds and runs the image without a Docker daemon, with runc, the
# runtime Docker on GitHub's runners uses (podman's first choice, crun,
# fails on hosts with hybrid cgroups), and the CA bundle the image carries.
# Idempotent: installs only what is missing. .ci/run calls it and sets
# SMEK_REQUIRE_PODMAN=1, so that a missing podman fails instead of skipping.
set -euo pipefail

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -eq 0 ]; then
	echo "image-deps: $(podman --version), $(runc --version | head -1) already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# No recommends: buildah, slirp4netns and fuse-overlayfs are for rootless
# and overlay setups the test does not use (it runs vfs storage as root).
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "image-deps: installed ${missing[*]}: $(podman --version), $(runc --version | head -1)"
