"""``python -m calls.uapi.emulator``: the emulator without Django (same options as the
``uapi_emulator`` management command)."""

from __future__ import annotations

import argparse

from .server import run
from .world import DEMO_SCENARIO


def main() -> None:
    parser = argparse.ArgumentParser(description="VoipNow UAPI emulator")
    parser.add_argument("--scenario", default=str(DEMO_SCENARIO))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--speed", type=float, default=None)
    parser.add_argument("--no-traffic", action="store_true")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args()
    run(
        scenario=args.scenario,
        host=args.host,
        port=args.port,
        seed=args.seed,
        speed=args.speed,
        traffic=not args.no_traffic,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
