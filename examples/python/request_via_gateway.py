#!/usr/bin/env python3
"""Request a ride through hail-gateway over HTTP (Python's standard library
only): POST /v1/rides with an Idempotency-Key, retried on 503 after its
Retry-After, then GET the ride's status from the Location it answered.

    python3 request_via_gateway.py --gateway-url http://127.0.0.1:8080
    python3 request_via_gateway.py --follow 5 --repeat 20 --every 3

Prints one JSON line per ride: the ride id, the Location, its status, and how
long the POST took. With --follow S it polls the status (every 20 ms, up to S
seconds) until matching has answered (matched or unmatched, or later states)
and adds `decided_after_s`, seconds from sending the POST to reading that
answer; exit 1 if a ride was not answered in time. The API is described at
/openapi.json (docs/openapi.json in the repository).
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
    p.add_argument("--follow", type=float, metavar="S",
                   help="poll the status until matching answered, up to S seconds")
    p.add_argument("--repeat", type=int, default=1, help="rides to request, one after another")
    p.add_argument("--every", type=float, default=0.0, metavar="S",
                   help="seconds between the starts of two rides (with --repeat)")
    args = p.parse_args()
    if args.follow is not None and args.follow <= 0:
        raise SystemExit(f"request_via_gateway: error: --follow {args.follow}: must be > 0 seconds")
    if args.repeat < 1:
        raise SystemExit(f"request_via_gateway: error: --repeat {args.repeat}: must be at least 1")
    late = 0
    for i in range(args.repeat):
        started = time.monotonic()
        if not request_one(args):
            late += 1
        if i + 1 < args.repeat:
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))
    if late:
        raise SystemExit(f"request_via_gateway: error: {late} of {args.repeat} rides "
                         f"not answered within {args.follow} s")


def request_one(args):
    """Requests one ride and prints its line; False if --follow ran out."""
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
    sent = time.monotonic()
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
    accepted = time.monotonic()
    location = headers["Location"]
    line = {"ride_id": body["ride_id"], "location": location,
            "post_s": round(accepted - sent, 4)}
    while True:
        status, _, view = call("GET", f"{args.gateway_url}{location}")
        if status != 200:
            raise SystemExit(f"request_via_gateway: error: GET {location}: {status}: "
                             f"{json.dumps(view)}")
        waited = time.monotonic() - sent
        if args.follow is None or view.get("state") != "requested":
            break
        if waited >= args.follow:
            print(json.dumps({**line, "status": view, "decided_after_s": None}), flush=True)
            return False
        time.sleep(0.02)
    line["status"] = view
    if args.follow is not None:
        line["decided_after_s"] = round(waited, 4)
    print(json.dumps(line), flush=True)
    return True


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, KeyError) as e:
        print(f"request_via_gateway: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
