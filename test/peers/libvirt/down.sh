#!/usr/bin/env bash
# Stops the libvirt peer (--purge: and deletes its cache): the recipe in ../shared/peers/libvirt.
# VIGIL_SHARED overrides where shared/ is (CI: a clean clone with ../shared beside it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shared=${VIGIL_SHARED:-$(git -C "$here" rev-parse --show-toplevel)/../shared}/peers/libvirt
[ -f "$shared/down.sh" ] || { echo "libvirt peer recipe not found at $shared (set VIGIL_SHARED)" >&2; exit 1; }
exec bash "$shared/down.sh" "$@"
