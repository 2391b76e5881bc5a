"""The error every failure of the embedded Argilla server is reported with."""

from driftloop.platform.errors import DriftloopError


class EmbeddedServerError(DriftloopError):
    code = "argilla_server"
