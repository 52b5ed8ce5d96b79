#!/usr/bin/env bash
# Idempotent set-up: installs what is missing and builds what is stale. Each step lives in
# scripts/setup.d/NN-name.sh and is sourced in order; a step that fails stops the set-up.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT
export SANDTRACE_CACHE=${SANDTRACE_CACHE:-/var/cache/sandtrace}
. "$ROOT/scripts/lib.sh"

for step in "$ROOT"/scripts/setup.d/*.sh; do
  name=$(basename "$step" .sh)
  if [ -n "${SANDTRACE_SETUP_ONLY:-}" ] && [[ " $SANDTRACE_SETUP_ONLY " != *" ${name#*-} "* ]]; then continue; fi
  log "setup: ${name#*-}"
  . "$step"
done
log "setup: done"
