#!/bin/sh
# Builds the edge agent bundle: a self-contained directory (and optionally a tarball) holding the
# built `infermesh agent` command, the workspaces it imports and their production dependencies,
# onnxruntime-node with this platform's binaries only, plus install.sh and the systemd unit
# template. Node itself is not included: the installer checks for Node >= 20.19.
#
# Usage: deploy/agent/build-bundle.sh [--out DIR] [--tarball] [--with-wasm] [--no-build]
#   --out DIR     where to put infermesh-agent/ (default <repo>/dist/agent-bundle)
#   --tarball     also write DIR/infermesh-agent-<version>-<platform>-<arch>.tar.gz
#   --with-wasm   include onnxruntime-web (the WASM backend, ~140 MB); native only by default
#   --no-build    do not run `tsc -b` first (the workspaces are built already)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/dist/agent-bundle"
TARBALL=0
WASM=""
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --tarball) TARBALL=1; shift ;;
    --with-wasm) WASM=--with-wasm; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-bundle.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$BUILD" = 1 ]; then (cd "$ROOT" && npx tsc -b); fi
for built in edge-agent/dist/index.js packages/cli/dist/commands/agent.js; do
  [ -f "$ROOT/$built" ] || { echo "build-bundle.sh: $built is missing: build first (npx tsc -b)" >&2; exit 1; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUNDLE="$OUT/infermesh-agent"
STAGING="$OUT/.infermesh-agent.staging.$$"
rm -rf "$STAGING"
mkdir -p "$STAGING"
trap 'rm -rf "$STAGING"' EXIT

node "$HERE/copy-agent-deps.mjs" "$ROOT" "$STAGING" $WASM
cp "$HERE/agent-entry.mjs" "$STAGING/agent.mjs"
cp "$HERE/install.sh" "$STAGING/install.sh"
cp "$HERE/infermesh-agent.service" "$STAGING/infermesh-agent.service"
chmod 0755 "$STAGING/install.sh" "$STAGING/agent.mjs"
VERSION=$(node -p "require('$ROOT/edge-agent/package.json').version")
PLATFORM=$(node -p 'process.platform + "-" + process.arch')
cat > "$STAGING/package.json" <<JSON
{
  "name": "infermesh-agent-bundle",
  "private": true,
  "version": "$VERSION",
  "type": "module",
  "description": "InferMesh edge agent bundle ($PLATFORM); run install.sh --help",
  "engines": { "node": ">=20.19" },
  "infermesh": { "platform": "$PLATFORM", "builtWith": "$(node --version)" }
}
JSON

rm -rf "$BUNDLE"
mv "$STAGING" "$BUNDLE"
echo "agent bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
if [ "$TARBALL" = 1 ]; then
  ARCHIVE="$OUT/infermesh-agent-$VERSION-$PLATFORM.tar.gz"
  tar -czf "$ARCHIVE" -C "$OUT" infermesh-agent
  echo "agent tarball: $ARCHIVE"
fi
