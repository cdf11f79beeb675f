#!/usr/bin/env bash
# Installs Debian's Redfish clients (redfishtool, python3-sushy) that check the test
# Redfish service in fence/redfish's TestIntegrationRedfishClient* (run them with
# VIGIL_REDFISH_CLIENT=1). Does nothing when both are installed. Root only.
set -euo pipefail
pkgs=(redfishtool python3-sushy)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "installed: ${pkgs[*]}"; exit 0; }
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -q
apt-get -o DPkg::Lock::Timeout=900 install -y -q "${missing[@]}"
/usr/bin/python3 -c 'import sushy' && command -v redfishtool
