"""One exception tree for finpipe.

The consumer acts on the two branches: a :class:`TransientError` is retried later (the message goes
to a delayed-retry queue), a :class:`PermanentError` is dead-lettered at once with its reason.
Adapters translate library errors at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from pydantic import ValidationError


class FinpipeError(Exception):
    """Base of every error finpipe raises on purpose."""


class ConfigError(FinpipeError):
    """A setting is missing or invalid; raised at start-up, naming the variable."""


class OutputNotWritable(FinpipeError):
    """A folder finpipe must write into cannot be created or written; names it and why."""

    def __init__(self, folder: str, reason: str) -> None:
        super().__init__(f"cannot write to {folder}: {reason}")
        self.folder = folder
        self.reason = reason


class TransientError(FinpipeError):
    """Something we depend on is unavailable right now; the same work may succeed later."""


class BrokerUnavailable(TransientError):
    """RabbitMQ cannot be reached or dropped the connection."""


class BrokerConfigError(ConfigError):
    """RabbitMQ refused what we are configured with: the login, the virtual host, TLS on a plain
    port, or a queue that exists with other arguments. Retrying cannot help: stop and say so."""


class PublishNotConfirmed(TransientError):
    """The broker did not confirm (nacked or returned) a published message."""


class StoreUnavailable(TransientError):
    """The MongoDB server cannot be reached or refused the write."""


class ModelUnavailable(TransientError):
    """The model API timed out, rate-limited us, or answered with a server error."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(FinpipeError):
    """The input itself is wrong; retrying cannot help. Dead-letter it with the reason."""


class UnreadableFile(PermanentError):
    """A file that cannot be read at all (empty, binary, encrypted, corrupt, too large)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NormalizationError(PermanentError):
    """An amount, currency, period or metric that cannot be normalized."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"cannot normalize {raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


class ModelRejected(PermanentError):
    """The model API refused the request as malformed (HTTP 400) for this input."""


class ModelConfigError(FinpipeError):
    """The model API refused our configuration (key, model, quota, a parameter, the output
    format): stop the worker, the reports go back to the queue."""


class Interrupted(FinpipeError):
    """A long step stopped because the process is stopping; the next run picks its work up."""


class StaleJob(FinpipeError):
    """A batch job document changed since it was loaded: another process is working on it."""

    def __init__(self, job_id: str, version: int) -> None:
        super().__init__(f"batch job {job_id} was saved by someone else (version {version})")
        self.job_id = job_id
        self.version = version


# -- pydantic validation errors, as finpipe shows them ---------------------------------------------
def validation_errors(
    exc: ValidationError, *, prefix: str = "", limit: int | None = None, whole: str = "body"
) -> list[tuple[str, str]]:
    """``(field, message)`` per error: the dotted location after ``prefix`` (``whole`` when the
    error is about the whole value), at most ``limit`` of them."""
    out = []
    for e in exc.errors()[:limit]:
        loc = ".".join(str(x) for x in e["loc"])
        out.append((f"{prefix}{loc}" if loc else prefix.rstrip(".") or whole, e["msg"]))
    return out


def validation_summary(exc: Exception, *, limit: int | None = 3, fields: bool = True) -> str:
    """One line: ``field: message; ...`` (only the messages without ``fields``) for a
    ``ValidationError``, at most ``limit`` of them; else the error's text."""
    if isinstance(exc, ValidationError):
        found = validation_errors(exc, limit=limit)
        return "; ".join(f"{f}: {m}" if fields else m for f, m in found)
    return str(exc)[:300]
