#!/usr/bin/env bash
# Fault controls of the libvirt peer (crash-guest, panic-guest, hang-guest, kill-host, status...): the recipe in ../shared/peers/libvirt.
# VIGIL_SHARED overrides where shared/ is (CI: a clean clone with ../shared beside it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shared=${VIGIL_SHARED:-$(git -C "$here" rev-parse --show-toplevel)/../shared}/peers/libvirt
[ -f "$shared/ctl.sh" ] || { echo "libvirt peer recipe not found at $shared (set VIGIL_SHARED)" >&2; exit 1; }
# Daemons started from here must not inherit a caller's descriptors (an inherited lock
# file, e.g. `flock FILE go test`, would stay held by a compute for as long as it runs).
exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
exec bash "$shared/ctl.sh" "$@"
