#!/usr/bin/env bash
# Builds the fused LSTM addon (src/model/native/*.cc: the LSTM, the training step's
# Adam/gradient kernels, the bench's FMA peak loop) into .cache/native/ with
# the machine's g++ and the Node-API headers of the Node that runs it. Nothing is
# downloaded. Rebuilds only when the source, the flags or the compiler changed.
#
# TEXTSTREAM_NATIVE_MARCH (default: native) sets -march; use a portable level such as
# x86-64-v3 when the binary must run on other CPUs than the one building it (images).
# Without a compiler it warns and exits 0: `model.lstm: auto` then uses tfjs' own LSTM.
set -euo pipefail
cd "$(dirname "$0")/.."
NATIVE_DIR=src/model/native
SRC=("$NATIVE_DIR"/*.cc)
OUT_DIR=.cache/native
OUT="$OUT_DIR/fused_lstm.node"
CXX="${CXX:-g++}"
MARCH="${TEXTSTREAM_NATIVE_MARCH:-native}"

if ! command -v "$CXX" > /dev/null; then
  echo "build-native: $CXX not found; the fused LSTM is unavailable (tfjs' LSTM will be used)" >&2
  exit 0
fi
NODE_INCLUDE="$(node -p "require('path').resolve(process.execPath, '../../include/node')")"
if [[ ! -f "$NODE_INCLUDE/node_api.h" ]]; then
  echo "build-native: node_api.h not found in $NODE_INCLUDE; the fused LSTM is unavailable" >&2
  exit 0
fi
# -O3 and -march matter for speed (wide vectors); never -ffast-math: the kernels rely on
# IEEE rounding (see round_nearest) and NaN propagation. -fno-math-errno only drops the
# errno branch after sqrt, which keeps the Adam loop from vectorising; values are unchanged.
FLAGS=(-std=c++20 -O3 -fno-math-errno "-march=$MARCH" -fPIC -shared -pthread -Wall -Wextra -DNODE_GYP_MODULE_NAME=fused_lstm "-I$NODE_INCLUDE")
STAMP="$(
  {
    sha256sum "${SRC[@]}" "$NATIVE_DIR"/*.h
    echo "${FLAGS[*]}"
    "$CXX" --version | head -n 1
    # -march=native targets this CPU: a checkout moved to another CPU rebuilds.
    if [[ "$MARCH" == native ]]; then grep -m 2 -E '^(model name|flags)' /proc/cpuinfo || true; fi
  } | sha256sum | cut -d' ' -f1
)"
if [[ -f "$OUT" && -f "$OUT.stamp" && "$(cat "$OUT.stamp")" == "$STAMP" ]]; then
  exit 0
fi
mkdir -p "$OUT_DIR"
"$CXX" "${FLAGS[@]}" "${SRC[@]}" -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$STAMP" > "$OUT.stamp"
echo "build-native: built $OUT (-march=$MARCH)" >&2
