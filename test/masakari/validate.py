#!/usr/bin/python3
"""Judge notification bodies with Masakari's own validation, no Masakari running.

stdin: one line per body, the raw body of a POST /notifications in base64.
stdout: one JSON line per body: {"status": 202} when Masakari 14's API would get
past validation (it would then look the host up in its segments, which Vigil does
not), or {"status": 400, "detail": "..."} with Masakari's own message.

It runs what Masakari's NotificationsController.create runs before its database:
the body parsed as its JSON deserializer does (UTF-8, json.loads), the envelope
checked with schemas/notifications.py create, then the payload with the schema
of its type (schemas/payload.py), all through masakari.api.validation's
_SchemaValidator (Draft 4 with Masakari's date-time and uuid format checkers).
"""
import base64
import json
import sys

from masakari.api.openstack.ha.schemas import notifications as schema
from masakari.api.openstack.ha.schemas import payload as payload_schema
from masakari.api.validation import validators
from masakari import exception
from masakari.objects import fields

PAYLOADS = {
    fields.NotificationType.PROCESS: payload_schema.create_process_payload,
    fields.NotificationType.VM: payload_schema.create_vm_payload,
    fields.NotificationType.COMPUTE_HOST:
        payload_schema.create_compute_host_payload,
}


def judge(raw):
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {"status": 400, "detail": "Malformed request body"}
    try:
        validators._SchemaValidator(schema.create).validate(body)
        n = body["notification"]
        validators._SchemaValidator(PAYLOADS[n["type"]]).validate(n["payload"])
    except exception.ValidationError as e:
        return {"status": 400, "detail": e.format_message()}
    return {"status": 202}


def main():
    for line in sys.stdin:
        print(json.dumps(judge(base64.b64decode(line))), flush=True)


if __name__ == "__main__":
    main()
