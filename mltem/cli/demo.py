"""``mltem demo --out DIR``: run every task on the shipped examples; write report.md."""
from __future__ import annotations

from mltem.cli._main import add_output_arguments


def add_arguments(p) -> None:
    add_output_arguments(p)
    p.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps")


def run(args) -> int:
    from mltem.demo import run_demo

    res = run_demo(args.out, force=args.force, only=args.only)
    for k, v in res.items():
        print(f"{k:<10} {'ok' if v['ok'] else 'FAILED: ' + v.get('error', '')}  {v['time_s']:.2f} s")
    print(f"report: {args.out}/report.md")
    return 0 if all(v["ok"] for v in res.values()) else 1
