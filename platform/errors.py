"""Domain errors raised by the services; the API and CLI map each to a status or exit code."""


class DriftloopError(Exception):
    """Base of every error a user can cause and fix."""

    code = "error"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DriftloopError):
    code = "not_found"


class AlreadyExists(DriftloopError):
    code = "already_exists"


class JobEnded(DriftloopError):
    """The job has ended already (succeeded, failed or cancelled): it cannot be cancelled or run."""

    code = "job_ended"


class InvalidInput(DriftloopError):
    code = "invalid_input"


class NothingToLearn(InvalidInput):
    """A task's labels cannot train a classifier yet (one class so far): a usage error, not a
    failed gate, and no model version is made."""

    code = "nothing_to_learn"


class SchemaOutOfDate(DriftloopError):
    code = "schema_out_of_date"


class Unauthorized(DriftloopError):
    """A caller that could not prove who it is (e.g. a webhook delivery with a bad signature)."""

    code = "unauthorized"


class Unavailable(DriftloopError):
    """A service driftloop depends on is not configured or does not answer; retry later."""

    code = "unavailable"


class ReplayedDelivery(DriftloopError):
    """A signed delivery (e.g. a webhook's) that was already accepted once: a replay, refused."""

    code = "replayed_delivery"
