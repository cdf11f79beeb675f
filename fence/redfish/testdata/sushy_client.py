"""Reads or resets a Redfish system with sushy (Debian's python3-sushy), for
fence/redfish's TestIntegrationRedfishClient: a client that is not Vigil's.

usage: sushy_client.py URL USER PASSWORD_FILE CA_FILE SYSTEM_URI get|reset TYPE

Prints one JSON object: {"power_state": "On", "uuid": "..."} after a get or a
reset (read back at once), or {"error": "AccessError", "status": 401}.
"""
import json
import sys

import sushy
from sushy import exceptions

url, user, pwfile, ca, system, op = sys.argv[1:7]
with open(pwfile) as f:
    password = f.readline().rstrip("\n")
try:
    root = sushy.Sushy(url + "/redfish/v1", username=user, password=password,
                       verify=ca)
    s = root.get_system(system)
    if op == "reset":
        s.reset_system(sushy.ResetType(sys.argv[7]))
        s.refresh()
    print(json.dumps({"power_state": s.power_state.value, "uuid": s.uuid}))
except exceptions.SushyError as e:
    print(json.dumps({"error": type(e).__name__,
                      "status": getattr(e, "status_code", None)}))
