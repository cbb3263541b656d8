"""A minimal Lambda custom-runtime loop in Python (stand-in for the managed Python runtime).

It imports the handler (and with it `requests`) at start, then polls the Runtime API. The managed
runtime does more at start than this, so the measured Python cold start is a lower bound.
"""

import json
import os
import urllib.request

import handler

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"

while True:
    with urllib.request.urlopen(f"{API}/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.load(r)
    try:
        body, path = json.dumps(handler.handler(event, None)), "response"
    except Exception as e:  # reported to Lambda like the managed runtime does
        body, path = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}), "error"
    post = urllib.request.Request(f"{API}/invocation/{request_id}/{path}", data=body.encode(),
                                  method="POST")
    urllib.request.urlopen(post).read()
