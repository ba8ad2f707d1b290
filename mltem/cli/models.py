"""``mltem models``: list the installed models and verify each file against its card."""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--task", help="only models of this task")


def run(args) -> int:
    from mltem._errors import MltemError
    from mltem.registry import list_models, model_dirs, verify

    cards = [c for c in list_models() if args.task is None or c.task == args.task]
    print("folders: " + (", ".join(map(str, model_dirs())) or "none"))
    bad = 0
    for c in cards:
        try:
            verify(c)
            state = "ok"
        except MltemError as exc:
            state, bad = f"FAILED: {exc.message}", bad + 1
        print(f"{c.name:<24} task {c.task:<10} {c.file:<28} sha256 {c.sha256[:12]}  {state}")
    if not cards:
        print("no models found")
    return 2 if bad else 0
