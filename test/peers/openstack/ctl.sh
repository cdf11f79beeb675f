#!/usr/bin/env bash
# Fault controls of the OpenStack peer (kill-compute N, start-compute N, pause NAME, resume NAME, status): the recipe in ../shared/peers/openstack.
# VIGIL_SHARED overrides where shared/ is (CI: a clean clone with ../shared beside it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shared=${VIGIL_SHARED:-$(git -C "$here" rev-parse --show-toplevel)/../shared}/peers/openstack
[ -f "$shared/ctl.sh" ] || { echo "OpenStack peer recipe not found at $shared (set VIGIL_SHARED)" >&2; exit 1; }
exec bash "$shared/ctl.sh" "$@"
