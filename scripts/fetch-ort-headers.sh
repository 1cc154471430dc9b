#!/usr/bin/env bash
# ONNX Runtime's C and C++ API headers, for building runtime/cpp against the libonnxruntime.so
# that the onnxruntime PyPI wheel ships (the wheel has no headers).
#
# Source: the npm package com.github.asus4.onnxruntime (ONNX Runtime for Unity); its iOS
# framework folders hold the headers of ONNX Runtime's C/C++ API (ORT_API_VERSION 29). Only the
# header files are kept; the 150 MB package is deleted after extraction. The CMake build checks
# that the headers' API version is no newer than the library's.
#
#   scripts/fetch-ort-headers.sh DEST     # writes DEST/onnxruntime_c_api.h, ... (idempotent)
set -euo pipefail

PACKAGE="com.github.asus4.onnxruntime@0.4.9"
FRAMEWORK="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
DEST="${1:?usage: fetch-ort-headers.sh DEST}"

if [ -f "$DEST/onnxruntime_cxx_api.h" ] && [ -f "$DEST/onnxruntime_c_api.h" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  echo "npm is needed once to fetch ONNX Runtime's headers; installing it with apt-get" >&2
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq npm >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar xzf "$work"/*.tgz -C "$work" --wildcards "$FRAMEWORK/*.h"
mkdir -p "$DEST.partial"
cp "$work/$FRAMEWORK"/*.h "$DEST.partial/"
rm -rf "$DEST" && mv "$DEST.partial" "$DEST"  # complete or absent, never half there
echo "ONNX Runtime headers ($PACKAGE, $(grep -m1 '#define ORT_API_VERSION' "$DEST/onnxruntime_c_api.h")) in $DEST" >&2
