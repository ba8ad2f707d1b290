"""``mltem demo``: every task on the shipped examples with the shipped models, and a report."""
from mltem.demo._run import STEPS, examples_dir, run_demo

__all__ = ["STEPS", "examples_dir", "run_demo"]
