#!/usr/bin/env python3
"""Request a ride through hail-gateway over HTTP (Python's standard library
only): POST /v1/rides with an Idempotency-Key, retried on 503 after its
Retry-After, then GET the ride's status from the Location it answered.

    python3 request_via_gateway.py --gateway-url http://127.0.0.1:8080

Prints one JSON line: the ride id, the Location, and its status. The API is
described at /openapi.json (docs/openapi.json in the repository).
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid


def call(method, url, body=None, headers=None):
    """(status, headers, JSON body) of one request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.headers, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateway-url", default="http://127.0.0.1:8080")
    p.add_argument("--city", default="berlin")
    p.add_argument("--rider", default="rider-py")
    p.add_argument("--attempts", type=int, default=5, help="tries while the gateway answers 503")
    args = p.parse_args()

    ride = {
        "rider": args.rider,
        "city": args.city,
        "pickup": {"lat": 52.520, "lng": 13.405},
        "dropoff": {"lat": 52.500, "lng": 13.450},
        "device": "dev-py",
        "card": "card-py",
    }
    # One key for every retry of this request: the gateway gives them one ride.
    key = str(uuid.uuid4())
    for attempt in range(1, args.attempts + 1):
        status, headers, body = call("POST", f"{args.gateway_url}/v1/rides", ride,
                                     {"Idempotency-Key": key})
        if status == 202:
            break
        if status == 503 and attempt < args.attempts:
            time.sleep(float(headers.get("Retry-After", "1")))
            continue
        # 4xx: the body names every bad field.
        raise SystemExit(f"request_via_gateway: error: {status}: {json.dumps(body)}")
    location = headers["Location"]
    status, _, view = call("GET", f"{args.gateway_url}{location}")
    if status != 200:
        raise SystemExit(f"request_via_gateway: error: GET {location}: {status}: {json.dumps(view)}")
    print(json.dumps({"ride_id": body["ride_id"], "location": location, "status": view}))


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, KeyError) as e:
        print(f"request_via_gateway: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
