"""Scripted, deterministic faults: what the next requests will suffer, set from Python or HTTP.

Each request takes its faults from the script when it arrives, in this order: a plain HTTP
error (``fail_next``), a concurrency-limit answer (``concurrency_fault_next``), a delay
(``slow``). After a write, ``timeout_after_commit`` holds or drops the answer. Records whose
external id is listed by ``reject_external_id`` are refused one by one inside their batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestFaults:
    """What one request is to suffer, taken from the script when it arrives."""

    fail_status: int | None = None
    concurrency_fault: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class CommitTimeout:
    """After the write: hold the answer ``delay`` seconds, or drop the connection if None."""

    delay: float | None


class FaultScript:
    """The fault script of one sandbox. Thread-safe; counts down as requests consume it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every scripted fault."""
        with self._lock:
            self._fail: list[int] = []
            self._concurrency = 0
            self._slow_seconds = 0.0
            self._slow_times: int | None = 0
            self._commit_timeouts: list[CommitTimeout] = []
            self._rejections: dict[str, tuple[str, str]] = {}

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` before doing anything."""
        if not 400 <= status <= 599 or times < 1:
            raise ValueError("fail_next needs an error status (4xx/5xx) and times >= 1")
        with self._lock:
            self._fail.extend([status] * times)

    def concurrency_fault_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests as if the account's concurrency limit were hit."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._concurrency += times

    def slow(self, seconds: float, times: int | None = None) -> None:
        """Hold each request ``seconds`` while in flight: the next ``times``, or all if None."""
        if seconds < 0 or (times is not None and times < 1):
            raise ValueError("seconds must be >= 0 and times >= 1")
        with self._lock:
            self._slow_seconds = float(seconds)
            self._slow_times = times

    def timeout_after_commit(self, times: int = 1, delay: float | None = None) -> None:
        """For the next ``times`` writes: apply the write, then hold the answer ``delay``
        seconds (longer than the client waits), or close the connection unanswered if None."""
        if times < 1 or (delay is not None and delay < 0):
            raise ValueError("times must be >= 1 and delay >= 0")
        with self._lock:
            self._commit_timeouts.extend([CommitTimeout(delay)] * times)

    def reject_external_id(
        self, external_id: str, code: str = "USER_ERROR", message: str = "Rejected by the sandbox."
    ) -> None:
        """Refuse every write of the record with ``external_id`` with ``code`` and ``message``."""
        with self._lock:
            self._rejections[external_id] = (code, message)

    def take_request(self) -> RequestFaults:
        """Consume the faults of one arriving request."""
        with self._lock:
            if self._fail:
                return RequestFaults(fail_status=self._fail.pop(0))
            if self._concurrency:
                self._concurrency -= 1
                return RequestFaults(concurrency_fault=True)
            delay = 0.0
            if self._slow_seconds and (self._slow_times is None or self._slow_times > 0):
                delay = self._slow_seconds
                if self._slow_times is not None:
                    self._slow_times -= 1
            return RequestFaults(delay=delay)

    def take_commit_timeout(self) -> CommitTimeout | None:
        """Consume the after-commit fault of one write request, if any is scripted."""
        with self._lock:
            return self._commit_timeouts.pop(0) if self._commit_timeouts else None

    def rejection(self, external_id: str) -> tuple[str, str] | None:
        """(code, message) when writes of ``external_id`` are to be refused."""
        with self._lock:
            return self._rejections.get(external_id)

    def apply(self, command: dict[str, Any]) -> None:
        """Run one admin command: ``{"action": "fail_next", "status": 503, "times": 2}`` etc.

        Raises ValueError for an unknown action or bad arguments.
        """
        args = dict(command)
        action = args.pop("action", None)
        actions: dict[str, Callable[..., None]] = {
            "fail_next": self.fail_next,
            "concurrency_fault_next": self.concurrency_fault_next,
            "slow": self.slow,
            "timeout_after_commit": self.timeout_after_commit,
            "reject_external_id": self.reject_external_id,
            "reset": self.reset,
        }
        if action not in actions:
            raise ValueError(f"unknown action {action!r}; use one of {', '.join(actions)}")
        try:
            actions[action](**args)
        except TypeError as exc:
            raise ValueError(f"bad arguments for {action}: {exc}") from None
