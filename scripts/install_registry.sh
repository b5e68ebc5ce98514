#!/usr/bin/env bash
# Install the CNCF distribution registry (Debian package docker-registry, 2.8.x) that the platform twin
# runs as its real OCI registry (tests/twin/platform/registry.py). A system package, not a PyPI wheel.
# Idempotent: does nothing when `docker-registry` is already on PATH.
# Usage: scripts/install_registry.sh
set -euo pipefail

if command -v docker-registry >/dev/null 2>&1; then
  echo "docker-registry already installed: $(docker-registry --version 2>/dev/null | head -1)"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo -n"
else
  echo "docker-registry is missing and this user cannot install packages: apt-get install -y docker-registry" >&2
  exit 1
fi
command -v apt-get >/dev/null || { echo "apt-get not found: install the docker-registry package (distribution 2.8) by hand" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's systemd unit does not start here (no systemd); the twin starts the binary itself.
$SUDO apt-get install -y -qq --no-install-recommends docker-registry
echo "installed $(docker-registry --version | head -1)"
