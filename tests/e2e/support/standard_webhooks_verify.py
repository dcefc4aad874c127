"""Verifies webhook deliveries with the `standardwebhooks` library, exactly as a receiver in
Python would: `Webhook(secret).verify(body, headers)`.

stdin: {"secret": "whsec_…", "requests": [{"headers": {name: value}, "body": "<base64>"}]}
stdout: a JSON list, per request "ok" or the library's refusal ("WebhookVerificationError: …").
"""
import base64
import json
import sys

from standardwebhooks import Webhook

doc = json.load(sys.stdin)
webhook = Webhook(doc["secret"])
verdicts = []
for request in doc["requests"]:
    try:
        webhook.verify(base64.b64decode(request["body"]), request["headers"])
        verdicts.append("ok")
    except Exception as refusal:  # the library's WebhookVerificationError, said in words
        verdicts.append(f"{type(refusal).__name__}: {refusal}")
print(json.dumps(verdicts))
