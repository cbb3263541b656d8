"""The seed's approach, for the cold-start comparison: a Python Lambda handler with `requests`.

Does what the seed's "ticket -> tag" Lambda did for one Jira Automation request (IP allowlist on
requestContext.http.sourceIp, token, commit check, list the stg tags, bump, create the tag, tell
Slack), against the same simulators Hoist talks to in the benchmark. Not production code.
"""

import base64
import ipaddress
import json
import os
import re

import requests  # imported at start, as the seed's Lambda layer did

BITBUCKET = os.environ["BITBUCKET_URL"]
WORKSPACE = os.environ["BITBUCKET_WORKSPACE"]
TOKEN = os.environ["BITBUCKET_TOKEN"]
SLACK = os.environ["SLACK_WEBHOOK_URL"]
JIRA_TOKEN = os.environ["HOIST_JIRA_TOKEN"]
ALLOW = [ipaddress.ip_network(c) for c in os.environ.get("ALLOW_IPS", "0.0.0.0/0").split(",")]
FAMILY = re.compile(r"^stg(\d+)\.(\d+)\.(\d+)$")

session = requests.Session()
session.headers["Authorization"] = f"Bearer {TOKEN}"


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body), "isBase64Encoded": False}


def handler(event, context):
    ip = ipaddress.ip_address(event["requestContext"]["http"]["sourceIp"])
    if not any(ip in net for net in ALLOW):
        return answer(403, {"error": "address not allowed"})
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if headers.get("x-hoist-token") != JIRA_TOKEN:
        return answer(401, {"error": "bad token"})
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    data = json.loads(raw)
    repo, commit = data["repo"], data["commit"]
    base = f"{BITBUCKET}/repositories/{WORKSPACE}/{repo}"
    r = session.get(f"{base}/commit/{commit}", timeout=10)
    if r.status_code != 200:
        return answer(422, {"error": "unknown commit"})
    full = r.json()["hash"]
    versions = []
    url = f'{base}/refs/tags?q=name ~ "stg"&pagelen=100'
    while url:
        page = session.get(url, timeout=10).json()
        for tag in page.get("values", []):
            m = FAMILY.match(tag["name"])
            if m:
                versions.append(tuple(int(x) for x in m.groups()))
        url = page.get("next")
    major, minor, patch = max(versions, default=(0, 0, 0))
    patch += 1
    if patch > 99:
        minor, patch = minor + 1, 0
    name = f"stg{major}.{minor}.{patch}"
    r = session.post(f"{base}/refs/tags", json={"name": name, "target": {"hash": full}}, timeout=10)
    if r.status_code != 201:
        return answer(502, {"error": f"tag not created: {r.status_code}"})
    requests.post(SLACK, json={"text": f"{name} tagged on {full[:10]}"}, timeout=10)
    return answer(201, {"tag": name, "commit": full})
