"""``python -m calls.uapi.emulator``: the emulator without Django (same options as the
``uapi_emulator`` management command)."""

from __future__ import annotations

import argparse

from .cli import ServerUnavailable, add_arguments, serve


def main() -> None:
    parser = argparse.ArgumentParser(description="VoipNow UAPI emulator")
    add_arguments(parser)
    options = vars(parser.parse_args())
    try:
        serve(options)
    except ServerUnavailable as exc:
        parser.exit(1, f"{exc}\n")


if __name__ == "__main__":
    main()
