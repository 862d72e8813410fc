#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed and prints its path.
# Idempotent: does nothing but print the path when /usr/bin/chromium exists.
# Used by the report's end-to-end test (playwright-core drives this browser, never a
# downloaded one). CI runs as root on a fresh Debian machine; elsewhere, sudo is used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo > /dev/null 2>&1; then SUDO="sudo"; else
      echo "chromium.sh: $CHROMIUM is missing and this is not root (no sudo): install the Debian package 'chromium'" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine has empty package lists; refresh them only when chromium is unknown.
  if ! apt-cache show chromium > /dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
  fi
  # Stale lists can name package versions the mirror no longer has: refresh and retry once.
  if ! $SUDO apt-get install -y -qq --no-install-recommends chromium >&2; then
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends chromium >&2
  fi
fi

if [ ! -x "$CHROMIUM" ]; then
  echo "chromium.sh: installing chromium did not produce $CHROMIUM" >&2
  exit 1
fi
echo "$CHROMIUM"
