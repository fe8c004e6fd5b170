#!/usr/bin/env python3
"""Request a ride by publishing RideRequested to NATS JetStream, as hail's own
publishers do: MessagePack with named fields in the envelope {v, t, e}, the
standard headers, and success only once JetStream's PubAck says it is stored.

    pip install nats-py==2.16.0 msgpack==1.2.4
    python3 request_via_nats.py --city berlin --wait 5

Prints one JSON line: the ride, the PubAck (stream, seq, duplicate) and, with
--wait, matching's answer (RideMatched or RideUnmatched) decoded.
Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_USER and
NATS_PASSWORD (e.g. intake / hail-local-intake on `hail up --auth`).
See docs/EVENTS.md for every event and header.
"""

import argparse
import asyncio
import json
import os
import secrets
import sys
import time

import msgpack
import nats

SCHEMA_VERSION = 1


def ride_requested(ride_id, rider, city, pickup, dropoff, device, card):
    """The event's fields: names and units exactly as docs/EVENTS.md gives them."""
    return {
        "ride_id": ride_id,
        "rider_id": rider,
        "city": city,
        "pickup": {"lat": pickup[0], "lon": pickup[1]},
        "dropoff": {"lat": dropoff[0], "lon": dropoff[1]},
        "requested_at_ms": int(time.time() * 1000),
        "device_id": device,
        "card": card,
    }


def envelope(name, event):
    """MessagePack, named fields, inside the versioned envelope."""
    return msgpack.packb({"v": SCHEMA_VERSION, "t": name, "e": event}, use_bin_type=True)


def headers(name, ride_id, msg_id):
    """The standard headers; a retry must reuse the same Nats-Msg-Id."""
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return {
        "Nats-Msg-Id": msg_id,
        "Hail-Event": name,
        "Hail-Ride-Id": ride_id,
        "traceparent": f"00-{trace_id}-{span_id}-01",
        "Content-Type": "application/msgpack",
    }


def decode(payload):
    """An event off the wire: refuses a version this client does not read."""
    env = msgpack.unpackb(payload, raw=False)
    if not isinstance(env, dict) or "v" not in env or "t" not in env:
        raise ValueError("not a hail event")
    if env["v"] > SCHEMA_VERSION or env["v"] == 0:
        raise ValueError(f"unknown schema version {env['v']} of {env['t']}")
    return env["t"], env["e"]


def position(text):
    lat, lon = (float(x) for x in text.split(","))
    return lat, lon


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    p.add_argument("--ride", default=None, help="ride id (default: a new random one)")
    p.add_argument("--rider", default="rider-py")
    p.add_argument("--city", default="berlin")
    p.add_argument("--pickup", type=position, default=(52.520, 13.405), help="LAT,LON")
    p.add_argument("--dropoff", type=position, default=(52.500, 13.450), help="LAT,LON")
    p.add_argument("--device", default="dev-py")
    p.add_argument("--card", default="card-py")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for matching's answer")
    args = p.parse_args()

    ride_id = args.ride or f"py-{secrets.token_hex(12)}"
    options = {"servers": args.nats_url.split(","), "connect_timeout": 5}
    if os.environ.get("NATS_USER"):
        options["user"] = os.environ["NATS_USER"]
        options["password"] = os.environ.get("NATS_PASSWORD", "")
    nc = await nats.connect(**options)
    try:
        answers = asyncio.Queue()
        if args.wait:
            # Core subscriptions for matching's answer (subscribe before publishing).
            async def on_answer(msg):
                if msg.headers and msg.headers.get("Hail-Ride-Id") == ride_id:
                    await answers.put(msg)

            for kind in ("matched", "unmatched"):
                await nc.subscribe(f"rides.{kind}.{args.city}", cb=on_answer)
            await nc.flush()

        name = "RideRequested"
        event = ride_requested(ride_id, args.rider, args.city, args.pickup, args.dropoff,
                               args.device, args.card)
        js = nc.jetstream(timeout=5)
        ack = await js.publish(f"rides.requested.{args.city}", envelope(name, event),
                               headers=headers(name, ride_id, f"requested:{ride_id}"))
        out = {"ride_id": ride_id, "stream": ack.stream, "seq": ack.seq,
               "duplicate": bool(ack.duplicate)}
        if args.wait:
            msg = await asyncio.wait_for(answers.get(), timeout=args.wait)
            kind, body = decode(msg.data)
            out["answer"] = {"event": kind, "subject": msg.subject, **body}
        print(json.dumps(out))
    finally:
        await nc.drain()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # a short message, not a traceback
        print(f"request_via_nats: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
