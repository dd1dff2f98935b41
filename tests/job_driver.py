"""Running a job generator to its end in a test, the way ui/workers.py does in the app."""

from collections.abc import Generator
from typing import Any


def drive(gen: Generator) -> tuple[Any, list]:
    """The job's return value and everything it yielded."""
    yielded = []
    try:
        while True:
            yielded.append(next(gen))
    except StopIteration as stop:
        return stop.value, yielded
