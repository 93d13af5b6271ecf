#!/usr/bin/env bash
# Installs Debian's chromium for the status page's browser test
# (internal/statuspage TestStatusPageInChromium). Idempotent: does nothing
# when chromium is already there. .ci/run calls it before the tests and sets
# SMEK_REQUIRE_CHROMIUM=1 so that a missing browser fails instead of skipping.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	echo "statuspage-deps: $(chromium --version 2>/dev/null || echo chromium) already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core gives the page's text a font even on a minimal image.
$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
echo "statuspage-deps: installed $(chromium --version)"
