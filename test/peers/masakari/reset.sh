#!/usr/bin/env bash
# Resets what Masakari's peer keeps between runs on one machine, once it is up and
# before any test uses it: its database lives in the OpenStack peer's MariaDB, so a
# run that ended mid-recovery (a machine stopped, a CI job killed) leaves a
# notification "running" that no engine will ever finish, its host on maintenance
# and "in use" (Masakari then refuses every notification for it, 409, and every
# update of it), and its compute service disabled in Nova. This marks such
# notifications failed, takes every host off maintenance and enables the compute
# services Masakari disabled. Run only when no test is using the peer.
# Knobs: OS_STATE_DIR (the OpenStack peer's state, default /var/tmp/vigil-openstack).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${OS_STATE_DIR:-/var/tmp/vigil-openstack}
sock=$state/run/mysqld.sock
[ -S "$sock" ] || { echo "no MariaDB socket at $sock: start the OpenStack peer first" >&2; exit 1; }
client=$(command -v mariadb || command -v mysql) || { echo "no mariadb/mysql client on PATH" >&2; exit 1; }
"$client" --socket="$sock" -uroot masakari <<'SQL'
SELECT CONCAT('stale notification ', notification_uuid, ' (', status, ', ', created_at, ') marked failed') AS reset
  FROM notifications WHERE status IN ('new', 'running', 'error') AND deleted = 0;
UPDATE notifications SET status = 'failed' WHERE status IN ('new', 'running', 'error') AND deleted = 0;
SELECT CONCAT('host ', name, ' taken off maintenance') AS reset FROM hosts WHERE on_maintenance = 1 AND deleted = 0;
UPDATE hosts SET on_maintenance = 0 WHERE on_maintenance = 1 AND deleted = 0;
SQL
# shellcheck source=/dev/null
. "$here/../openstack/env.sh"
openstack --os-cloud "$VIGIL_OPENSTACK_CLOUD" compute service list --service nova-compute -f value -c Host -c Status |
	while read -r host status; do
		if [ "$status" = disabled ]; then
			openstack --os-cloud "$VIGIL_OPENSTACK_CLOUD" compute service set --enable "$host" nova-compute
			echo "compute service of $host enabled"
		fi
	done
