"""Runs that the suite starts as soon as it knows its tests, in a thread of their own, and the tests wait for.

A study is mostly one process after another (Snakemake and its jobs), while most tests use one core: run in the
background, a study fills the second core instead of holding the suite up when its first reader comes.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Outcome:
    """What one step left: its value, or the exception it raised, and its wall time in seconds."""

    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    ended: float = 0.0  # time.monotonic() at its end
    done: threading.Event = field(default_factory=threading.Event)


class BackgroundRuns:
    """Named steps run one after another in a daemon thread, in the order they were added; `result(name)` waits
    for one."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[BackgroundRuns], Any]]] = []
        self._outcomes: dict[str, Outcome] = {}
        self._processes: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="background-runs", daemon=True)
        self._started = False

    def add(self, name: str, step: Callable[[BackgroundRuns], Any]) -> None:
        """Queue `step` (called with this object, for `run`) under `name`; only before `start`."""
        assert not self._started and name not in self._outcomes
        self._steps.append((name, step))
        self._outcomes[name] = Outcome()

    def start(self) -> None:
        """Begin the queued steps, in the order they were added."""
        self._started = True
        self._steps.reverse()  # popped from the end
        if self._steps:
            self._thread.start()

    def result(self, name: str, timeout: float = 1800.0) -> Any:
        """Wait for step `name` and return its value, or raise what it raised."""
        outcome = self._outcomes[name]
        if not outcome.done.wait(timeout):
            raise TimeoutError(f"background step {name!r} did not finish within {timeout:.0f} s")
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    def seconds(self, name: str) -> float:
        """The wall time of a finished step."""
        return self._outcomes[name].seconds

    def finished(self) -> dict[str, tuple[float, float]]:
        """Name -> (wall time in seconds, time.monotonic() at its end) of every finished step, in the order they ran."""
        return {
            name: (outcome.seconds, outcome.ended) for name, outcome in self._outcomes.items() if outcome.done.is_set()
        }

    def run(self, command: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> tuple[int, str]:
        """Run `command` to its end (killable by `stop`): its exit code and its output, also kept in `log`."""
        with self._lock:
            if self._stopped:
                return -9, "stopped before it started"
            handle = open(log, "w+") if log else subprocess.PIPE  # noqa: SIM115 - closed below
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)
            self._processes.add(process)
        try:
            if log is None:
                output, _ = process.communicate()
                return process.returncode, output
            code = process.wait()
            handle.seek(0)
            return code, handle.read()
        finally:
            if log is not None:
                handle.close()
            with self._lock:
                self._processes.discard(process)

    def stop(self) -> None:
        """Kill the step's process that still runs, skip the steps not begun, and wait for the thread."""
        with self._lock:
            self._stopped = True
            for process in self._processes:
                if process.poll() is None:
                    process.kill()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._steps:
                    return
                name, step = self._steps.pop()
            outcome, started = self._outcomes[name], time.monotonic()
            try:
                if self._stopped:
                    raise RuntimeError(f"background step {name!r} was not run: the session is ending")
                outcome.value = step(self)
            except BaseException as error:  # handed to the test that waits for this step
                outcome.error = error
            outcome.ended = time.monotonic()
            outcome.seconds = outcome.ended - started
            outcome.done.set()


# Background steps by name, in the order they were defined (conftest's first, then the test modules').
REGISTERED: dict[str, Callable[[BackgroundRuns, Path], Any]] = {}


def background_study(step: Callable[[BackgroundRuns, Path], Any]) -> Any:
    """Register `step(runs, folder)` to run in the background where a selected test needs it; return the
    session fixture of the same name, whose value is what the step returned."""
    name = step.__name__
    REGISTERED[name] = step

    @pytest.fixture(scope="session", name=name)
    def waiting(background_studies: BackgroundRuns) -> Any:
        return background_studies.result(name)

    waiting.__doc__ = step.__doc__
    return waiting
