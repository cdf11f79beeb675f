#!/usr/bin/env bash
# Creates Vigil's own user and database on the OpenStack peer's MariaDB
# (127.0.0.1:13306; root over its socket), idempotently, and prints the DSN the
# MySQL store's integration tests read:
#   eval "$(test/peers/mariadb/setup.sh)"   # exports VIGIL_MYSQL_DSN
# The user owns that database and may create and drop databases named
# vigil_test_* (each conformance test
# makes its own and drops it after).
# Knobs: OS_STATE_DIR (the peer's state, default /var/tmp/vigil-openstack),
# VIGIL_MYSQL_USER, VIGIL_MYSQL_PASSWORD, VIGIL_MYSQL_DB, VIGIL_MYSQL_ADDR.
set -euo pipefail
state=${OS_STATE_DIR:-/var/tmp/vigil-openstack}
sock=$state/run/mysqld.sock
user=${VIGIL_MYSQL_USER:-vigil}
pw=${VIGIL_MYSQL_PASSWORD:-vigil-test-pw}
db=${VIGIL_MYSQL_DB:-vigil}
addr=${VIGIL_MYSQL_ADDR:-127.0.0.1:13306}
[ -S "$sock" ] || { echo "no MariaDB socket at $sock: start the OpenStack peer (test/peers/openstack/up.sh) or set OS_STATE_DIR" >&2; exit 1; }
client=$(command -v mariadb || command -v mysql) || { echo "no mariadb/mysql client on PATH (apt-get install mariadb-client)" >&2; exit 1; }
"$client" --socket="$sock" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$pw';
ALTER USER '$user'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER '$user'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$user'@'localhost';
GRANT ALL PRIVILEGES ON \`vigil\\_test\\_%\`.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`vigil\\_test\\_%\`.* TO '$user'@'localhost';
SQL
echo "export VIGIL_MYSQL_DSN='$user:$pw@tcp($addr)/$db'"
