"""``mltem info FILE``: shape, axes, calibration, signal type and size."""
from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("file", nargs="+", help="file(s) to describe")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--lazy", action="store_true", help="open lazily (do not read the data)")


def run(args) -> int:
    from mltem import io

    out = []
    for f in args.file:
        d = io.describe(io.load(f, lazy=True if args.lazy else None))
        d["path"] = f
        out.append(d)
        if not args.json:
            print(io.format_description(d))
            if len(args.file) > 1:
                print()
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    return 0
