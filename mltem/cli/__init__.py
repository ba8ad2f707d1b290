"""The ``mltem`` command line: thin wrappers around library functions."""
from mltem.cli._main import main

__all__ = ["main"]
