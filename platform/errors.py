"""Domain errors raised by the services. Each carries the HTTP status the API answers it with;
the CLI maps them to exit codes. They live here, apart from the code that raises them, so that
the API's error mapping and the CLI's error handler can name them without importing that code
(and through it torch)."""


class DriftloopError(Exception):
    """Base of every error a user can cause and fix."""

    code = "error"
    status = 400
    headers: dict[str, str] = {}  # HTTP headers the API answers it with (Retry-After, WWW-Authenticate)

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DriftloopError):
    code = "not_found"
    status = 404


class AlreadyExists(DriftloopError):
    code = "already_exists"
    status = 409


class Conflict(DriftloopError):
    """The request conflicts with the current state of what it names (pausing a paused schedule)."""

    code = "conflict"
    status = 409


class JobEnded(DriftloopError):
    """The job has ended already (succeeded, failed or cancelled): it cannot be cancelled or run."""

    code = "job_ended"
    status = 409


class Busy(DriftloopError):
    """The work cannot start yet: other work holds what it needs (a training of the same task
    runs). A queued job stays queued and is tried again."""

    code = "busy"
    status = 409


class InvalidInput(DriftloopError):
    code = "invalid_input"
    status = 422


class TooManyRecords(DriftloopError):
    """More records (or texts) in one request than a request may hold: none of them is taken."""

    code = "too_many_records"
    status = 413


class NothingToLearn(InvalidInput):
    """A task's labels cannot train a classifier yet (one class so far): a usage error, not a
    failed gate, and no model version is made."""

    code = "nothing_to_learn"


class SchemaOutOfDate(DriftloopError):
    code = "schema_out_of_date"
    status = 503


class Unauthorized(DriftloopError):
    """A caller that could not prove who it is (e.g. a webhook delivery with a bad signature)."""

    code = "unauthorized"
    status = 401


class Unauthenticated(Unauthorized):
    """A request without a valid API key: none, malformed, unknown, wrong, revoked or expired."""

    code = "unauthenticated"
    headers = {"WWW-Authenticate": "Bearer"}  # RFC 9110: a 401 names the scheme that would be accepted


class Forbidden(DriftloopError):
    """A valid API key that does not allow this request: it lacks the scope, or is for another task."""

    code = "forbidden"
    status = 403


class ConfigError(DriftloopError):
    """Settings that must not run together (the API without keys on a public address)."""

    code = "config_error"
    status = 500


class Unavailable(DriftloopError):
    """A service driftloop depends on is not configured or does not answer; retry later."""

    code = "unavailable"
    status = 503


class ReplayedDelivery(DriftloopError):
    """A signed delivery (e.g. a webhook's) that was already accepted once: a replay, refused."""

    code = "replayed_delivery"
    status = 409


class PromotionRefused(DriftloopError):
    """A promotion or rollback the registry's state does not allow (not a candidate, a stale
    gate decision, no earlier champion)."""

    code = "promotion_refused"
    status = 409


class CorruptArtifact(DriftloopError):
    """A model artifact that is missing or does not match its recorded checksum: nothing the
    caller can fix."""

    code = "corrupt_artifact"
    status = 500


class WrongSecretKey(DriftloopError):
    """A stored secret was encrypted with a key other than the configured one."""

    code = "wrong_secret_key"
    # The server's key does not fit its store: nothing the caller can fix, and a retry after the
    # operator sets the right key succeeds.
    status = 503


class InvalidSecretKey(DriftloopError):
    code = "invalid_secret_key"
    status = 503
