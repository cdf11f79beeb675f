#!/usr/bin/python3
"""Post notifications the way masakari-monitors and python3-masakariclient do.

Usage: notify.py ENDPOINT < notifications

ENDPOINT is the instance-ha endpoint (e.g. http://127.0.0.1:PORT/v1/PROJECT).
Each line of stdin is {"token": X-Auth-Token to send, "notification": {"type",
"hostname", "generated_time", "payload"}}; they are posted in order. The client is masakariclient's own (masakariclient.plugin.make_client:
an openstacksdk Connection's instance_ha proxy, microversion 1.2), authenticated
with keystoneauth1's admin_token plugin (a fixed token and endpoint, no keystone),
loaded by name as masakari-monitors load theirs from the [api] section of their
config (auth_type = admin_token, endpoint = ..., token = ...).

Prints one JSON line per notification: {"ok": true, "notification": {...as the client parsed it}}
or {"ok": false, "status": N, "error": "..."}.
"""
import json
import sys

from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from openstack import exceptions

from masakariclient import plugin


class _Instance:
    """What masakariclient's make_client reads of OSC's ClientManager."""

    def __init__(self, sess):
        self.session = sess
        self.interface = "public"
        self.region_name = None
        self._api_version = {plugin.API_NAME: plugin.DEFAULT_HA_API_VERSION}


def post(endpoint, token, n):
    auth = ks_loading.get_plugin_loader("admin_token").load_from_options(
        endpoint=endpoint, token=token)
    sess = ks_session.Session(auth=auth)
    client = plugin.make_client(_Instance(sess))
    try:
        got = client.create_notification(
            type=n["type"], hostname=n["hostname"],
            generated_time=n["generated_time"], payload=n["payload"])
    except exceptions.HttpException as e:
        return {"ok": False, "status": e.status_code, "error": str(e.details)}
    keys = ["notification_uuid", "status", "type", "generated_time", "payload",
            "source_host_uuid", "created_at", "id"]
    return {"ok": True, "notification": {k: getattr(got, k) for k in keys}}


def main():
    endpoint = sys.argv[1]
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(post(endpoint, req["token"], req["notification"])), flush=True)


if __name__ == "__main__":
    main()
