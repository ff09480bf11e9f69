#!/usr/bin/env bash
# The page's "label in this browser" mode: vendors ONNX Runtime Web (from the npm registry, this pinned version, its
# checksum checked) and converts BlazeFace to ONNX, into realtime/serve/static/vendor/ (git-ignored, shipped in the
# wheel when built). Needs npm and the project's .venv (bash scripts/setup.sh). Safe to re-run: fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.31.1
INTEGRITY="sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
VENDOR=realtime/serve/static/vendor
FILES=(ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
mkdir -p "$VENDOR"
if [ "$(cat "$VENDOR/VERSION" 2>/dev/null)" != "$VERSION" ]; then
  command -v npm >/dev/null || { echo "error: npm is needed to fetch onnxruntime-web (install Node.js)" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null)
  got="sha512-$(openssl dgst -sha512 -binary "$work/onnxruntime-web-$VERSION.tgz" | base64 -w0)"
  [ "$got" = "$INTEGRITY" ] || { echo "error: onnxruntime-web $VERSION does not match its pinned checksum" >&2; exit 1; }
  tar xzf "$work/onnxruntime-web-$VERSION.tgz" -C "$work"
  for file in "${FILES[@]}"; do cp "$work/package/dist/$file" "$VENDOR/"; done
  echo "$VERSION" > "$VENDOR/VERSION"
fi
[ -f "$VENDOR/blazeface.onnx" ] || .venv/bin/python -m realtime.serve.detector_onnx "$VENDOR/blazeface.onnx"
echo "browser mode ready: onnxruntime-web $VERSION and blazeface.onnx in $VENDOR"
