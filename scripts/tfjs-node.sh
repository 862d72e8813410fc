#!/usr/bin/env bash
# Optional: the native `tensorflow` tfjs backend (@tensorflow/tfjs-node) on a machine that
# cannot reach the host its install script downloads libtensorflow from. Instead of that
# download, the addon is built from source against the TensorFlow C library shipped in the
# `tensorflow-cpu` Python wheel that the project's venv (scripts/python-env.sh, .cache/venv)
# already has installed. Nothing is installed system-wide; everything lands in the
# git-ignored node_modules/ and .cache/tfjs-node/.
#
#   bash scripts/tfjs-node.sh [install] [--project DIR]  install, build (or reuse), verify
#   bash scripts/tfjs-node.sh remove    [--project DIR]  uninstall it from node_modules again
#   bash scripts/tfjs-node.sh status    [--project DIR]  exit 0 if it loads as 'tensorflow', 3 if not
#
# --project DIR works on another checkout/copy (a directory with package.json and
# node_modules) instead of this one; the TensorFlow library still comes from this checkout's
# venv. Set TFJS_NODE_TF_DIR to a .../site-packages/tensorflow directory to use another one.
#
# CAVEATS
# - @tensorflow/tfjs-node is NOT a dependency in package.json: it is installed with
#   `npm install --no-save`, so `npm ci` (and any later `npm install`, which prunes
#   packages that are not in package.json) removes it again. Re-run this script afterwards;
#   the built addon is cached in .cache/tfjs-node, so a re-run takes seconds.
# - While it is installed, backend 'auto' (src/model/backend.ts) picks it instead of wasm,
#   for every test and command run from this checkout. `remove` undoes that.
#
# Route (see DESIGN.md, "Facts gathered"): install the package with its scripts ignored;
# hard-link libtensorflow_cc.so.2 and libtensorflow_framework.so.2 from the wheel into the
# package's deps/lib (the addon's run path is $ORIGIN/../../deps/lib) with the link names
# the addon's build expects (libtensorflow.so, libtensorflow_framework.so) and a
# libtensorflow.so.2.9.1 (its presence makes the install script skip its download); copy
# the 14 C-API headers into deps/include; `npm rebuild` with build_from_source=true,
# against the node headers of the local Node installation.
#
# Cost here: first run ≈ 13 s (npm install ≈ 3 s from npm's cache, compile ≈ 9 s); a re-run
# after `npm ci` ≈ 5 s (addon from the cache, no compiler). Disk: ≈ 8 MB beyond the venv
# (the two libraries, ≈ 850 MB, are hard links into the venv; copied if on another file system).
#
# Progress and timings go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
CACHE="$REPO/.cache/tfjs-node"
PKG_NAME=@tensorflow/tfjs-node

log() { echo "tfjs-node: $*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { date +%s%3N; }
elapsed() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f s", (b - a) / 1000 }'; }

CMD=install
PROJECT="$REPO"
while (($# > 0)); do
  case "$1" in
    install | remove | status) CMD="$1" ;;
    --project) PROJECT="$(cd "${2:?--project needs a directory}" && pwd)"; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[[ -f "$PROJECT/package.json" && -d "$PROJECT/node_modules" ]] ||
  die "$PROJECT has no package.json + node_modules (run npm ci there first)"
PKG="$PROJECT/node_modules/$PKG_NAME"

# Loads the package the way the project does and checks that it registered its backend
# with the project's own tfjs (one tfjs-core instance) and runs a kernel on it.
verify() {
  (cd "$PROJECT" && node -e '
    const tf = require("@tensorflow/tfjs");
    const tfn = require("@tensorflow/tfjs-node");
    if (tfn.version_core !== tf.version_core) throw new Error(`tfjs-core ${tfn.version_core} != ${tf.version_core}`);
    const sum = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).sum().dataSync()[0]);
    if (tf.getBackend() !== "tensorflow" || sum !== 12) throw new Error(`backend ${tf.getBackend()}, sum ${sum}`);
    console.log(`backend ${tf.getBackend()}, tfjs-node ${tfn.version["tfjs-node"]}, TensorFlow ${tf.backend().binding.TF_Version}`);
  ')
}

installed_version() {
  [[ -f "$PKG/package.json" ]] && node -p "require('$PKG/package.json').version" || true
}

cmd_status() {
  local out
  if [[ -z "$(installed_version)" ]]; then log "not installed in $PROJECT/node_modules"; exit 3; fi
  if out="$(verify 2>/dev/null)"; then log "$out"; exit 0; fi
  out="$(verify 2>&1 || true)"
  log "installed but does not load: $(echo "$out" | grep -m1 -E 'Error|error' || echo "$out" | tail -n1)"
  exit 3
}

cmd_remove() {
  local t0
  t0="$(now_ms)"
  if [[ -n "$(installed_version)" ]]; then
    (cd "$PROJECT" && npm uninstall --no-save --no-audit --no-fund "$PKG_NAME" >&2)
  fi
  rm -rf "$PKG" # in case npm left anything behind
  if (cd "$PROJECT" && node -e "require.resolve('$PKG_NAME')" 2>/dev/null); then
    die "$PKG_NAME still resolves from $PROJECT"
  fi
  log "removed from $PROJECT/node_modules ($(elapsed "$t0")); backend 'auto' is wasm again"
}

# The TensorFlow directory of the installed tensorflow-cpu wheel (found without importing
# tensorflow, which takes seconds).
tf_dir() {
  if [[ -n "${TFJS_NODE_TF_DIR:-}" ]]; then echo "$TFJS_NODE_TF_DIR"; return; fi
  local python
  python="$(bash "$REPO/scripts/python-env.sh")"
  "$python" -c 'import importlib.util as u; s = u.find_spec("tensorflow"); print(s.submodule_search_locations[0] if s else "")'
}

# Where this node's headers are (include/node/node_api.h under it), for node-gyp's nodedir:
# without one, node-gyp would try to download them.
node_dir() {
  local prefix
  prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  for dir in "$prefix" /usr /usr/local; do
    if [[ -f "$dir/include/node/node_api.h" && -f "$dir/include/node/common.gypi" ]]; then echo "$dir"; return; fi
  done
  die "no node headers (include/node/node_api.h, common.gypi) under $prefix, /usr or /usr/local"
}

HEADERS=(
  tensorflow/c/c_api.h tensorflow/c/c_api_macros.h tensorflow/c/tf_attrtype.h
  tensorflow/c/tf_buffer.h tensorflow/c/tf_datatype.h tensorflow/c/tf_status.h
  tensorflow/c/tf_tensor.h tensorflow/c/tf_tstring.h tensorflow/c/eager/c_api.h
  tensorflow/core/platform/ctstring.h tensorflow/core/platform/ctstring_internal.h
  tsl/platform/ctstring.h tsl/platform/ctstring_internal.h xla/tsl/c/tsl_status.h
)

cmd_install() {
  local t_all t tf version tf_version node_dir key addon_dir addon napi
  t_all="$(now_ms)"

  t="$(now_ms)"
  tf="$(tf_dir)"
  [[ -n "$tf" && -f "$tf/libtensorflow_cc.so.2" && -f "$tf/libtensorflow_framework.so.2" ]] ||
    die "no libtensorflow_cc.so.2 / libtensorflow_framework.so.2 in '${tf}' (is tensorflow-cpu installed in the venv?)"
  for h in "${HEADERS[@]}"; do [[ -f "$tf/include/$h" ]] || die "header $tf/include/$h missing"; done
  tf_version="$(sed -n 's/^Version: //p' "$tf"/../tensorflow_cpu-*.dist-info/METADATA 2>/dev/null | head -n1)"
  node_dir="$(node_dir)"
  log "TensorFlow ${tf_version:-?} from $tf; node headers from $node_dir/include/node ($(elapsed "$t"))"

  # Same version as the project's @tensorflow/tfjs: tfjs-node depends on it exactly, and a
  # different one would bring its own tfjs-core that the project's tfjs never sees.
  version="$(cd "$PROJECT" && node -p "require('@tensorflow/tfjs/package.json').version")"

  t="$(now_ms)"
  if [[ "$(installed_version)" == "$version" ]]; then
    log "$PKG_NAME@$version already in node_modules"
  else
    log "npm install --no-save --ignore-scripts $PKG_NAME@$version"
    (cd "$PROJECT" && npm install --no-save --ignore-scripts --no-audit --no-fund "$PKG_NAME@$version" >&2)
    log "installed ($(elapsed "$t"))"
  fi

  t="$(now_ms)"
  mkdir -p "$PKG/deps/lib" "$PKG/deps/include"
  for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
    if ! [[ "$PKG/deps/lib/$lib" -ef "$tf/$lib" ]]; then
      # A hard link costs no disk space (same file system); otherwise copy (≈ 850 MB).
      ln -f "$tf/$lib" "$PKG/deps/lib/$lib" 2>/dev/null || cp -f "$tf/$lib" "$PKG/deps/lib/$lib"
    fi
  done
  ln -sfn libtensorflow_cc.so.2 "$PKG/deps/lib/libtensorflow.so"
  ln -sfn libtensorflow_framework.so.2 "$PKG/deps/lib/libtensorflow_framework.so"
  ln -sfn libtensorflow_cc.so.2 "$PKG/deps/lib/libtensorflow.so.2.9.1"
  for h in "${HEADERS[@]}"; do
    mkdir -p "$PKG/deps/include/$(dirname "$h")"
    cp -f "$tf/include/$h" "$PKG/deps/include/$h"
  done
  log "deps/lib + deps/include ready ($(elapsed "$t"))"

  # The addon depends on tfjs-node's version, this node's N-API level and the TF library;
  # keep a copy per combination so that a re-install after `npm ci` needs no compiler.
  napi="$(node -p "Math.max(...require('$PKG/package.json').binary.napi_versions.filter((v) => v <= +process.versions.napi))")"
  addon="$PKG/lib/napi-v$napi/tfjs_binding.node"
  key="$version-napi$napi-tf${tf_version:-unknown}-$(node -p 'process.platform + "-" + process.arch')"
  addon_dir="$CACHE/addon/$key"

  t="$(now_ms)"
  if [[ -f "$addon" ]] && verify >/dev/null 2>&1; then
    log "addon already built ($addon)"
  elif [[ -f "$addon_dir/tfjs_binding.node" ]] && mkdir -p "$(dirname "$addon")" &&
    cp -f "$addon_dir/tfjs_binding.node" "$addon" && verify >/dev/null 2>&1; then
    log "addon restored from $addon_dir ($(elapsed "$t"))"
  else
    rm -rf "$addon_dir" "$addon"
    log "building the addon from source (npm rebuild, build_from_source, nodedir=$node_dir)"
    mkdir -p "$CACHE"
    if ! (cd "$PROJECT" && npm_config_build_from_source=true npm_config_nodedir="$node_dir" \
      npm rebuild --foreground-scripts "$PKG_NAME" >"$CACHE/build.log" 2>&1); then
      tail -n 30 "$CACHE/build.log" >&2
      die "build failed (full log: $CACHE/build.log)"
    fi
    [[ -f "$addon" ]] || { tail -n 30 "$CACHE/build.log" >&2; die "build produced no $addon (log: $CACHE/build.log)"; }
    mkdir -p "$addon_dir"
    cp -f "$addon" "$addon_dir/tfjs_binding.node"
    log "addon built ($(elapsed "$t"); log: $CACHE/build.log)"
  fi

  t="$(now_ms)"
  local out
  mkdir -p "$CACHE"
  # TensorFlow logs its start-up (oneDNN, CPU features) on stderr: keep it out of the way.
  if ! out="$(verify 2>"$CACHE/verify.log")"; then
    cat "$CACHE/verify.log" >&2
    die "verification failed: $PKG_NAME does not run on the 'tensorflow' backend"
  fi
  log "verified: $out ($(elapsed "$t"))"
  log "done in $(elapsed "$t_all"); 'auto' now selects 'tensorflow' in $PROJECT." \
    "npm ci removes it; 'bash scripts/tfjs-node.sh remove' does so explicitly"
}

"cmd_$CMD"
