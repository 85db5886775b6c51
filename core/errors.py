"""The error taxonomy of finsync.

```
FinsyncError
  ConfigError                 bad configuration: fail at start, name the key
  UnavailableError            a configured database cannot be reached now: name the key
  MappingError                a record cannot be mapped: quarantine it, name record and field
  ConnectorError(system, operation)
    RetryableError            timeouts, connection errors, 429, 5xx, concurrency-limit faults
      RateLimitedError        with retry_after
      OutcomeUnknownError     the request may have been applied (timeout after sending)
    PermanentError            validation faults, other 4xx, business rejections
      AuthError               bad credentials or signature
```

Each protocol classifies its failures in one place (an HTTP response classifier, a SOAP
fault-code table); everything else sees only these classes. Messages never carry secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class FinsyncError(Exception):
    """Base of every error finsync raises on purpose."""


class ConfigError(FinsyncError):
    """The configuration is invalid. ``key`` is the dotted path of the offending setting."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config error at '{key}': {problem}")


class UnavailableError(FinsyncError):
    """A configured resource (a database) cannot be used now; ``key`` names its setting."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class Problem:
    """One reason a record cannot be mapped: where (a field path) and what to do about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class MappingError(FinsyncError):
    """A source record cannot be mapped. Lists every problem found, not just the first."""

    def __init__(self, record: str, problems: Sequence[Problem]) -> None:
        self.record = record
        self.problems = tuple(problems)
        detail = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{record}: {detail}")


class ConnectorError(FinsyncError):
    """A call to an external system failed."""

    def __init__(self, system: str, operation: str, message: str, *, code: str | None = None):
        self.system = system
        self.operation = operation
        self.code = code
        self.message = message
        prefix = f"{system} {operation}"
        if code:
            prefix += f" [{code}]"
        super().__init__(f"{prefix}: {message}")


class RetryableError(ConnectorError):
    """A transient failure: the same request may succeed later."""


class RateLimitedError(RetryableError):
    """The system asked us to slow down; ``retry_after`` is in seconds when it said so."""

    def __init__(
        self,
        system: str,
        operation: str,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(system, operation, message, code=code)
        self.retry_after = retry_after


class OutcomeUnknownError(RetryableError):
    """The request was sent but no answer came: it may or may not have been applied.

    The push engine looks the document up by external id before sending it again.
    """


class PermanentError(ConnectorError):
    """The system refused the request; sending it again unchanged will fail again."""


class AuthError(PermanentError):
    """Credentials or signature were refused."""


def first_line(error: BaseException | None) -> str:
    """The first line of an error's message (its type's name when it has none)."""
    text = str(error) if error is not None else "unknown"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
