"""The workspace and annotator accounts of a running Argilla server, set up through its REST API as
the owner. (The REST API needs no extra process; each ``argilla_server`` CLI call costs seconds.)"""

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from driftloop.labeling.server.errors import EmbeddedServerError

# The server is on 127.0.0.1: never send its requests (and the owner's key) through a proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_answering(url: str, timeout: float = 2.0) -> bool:
    """Whether the server answers its unauthenticated status endpoint."""
    try:
        with _OPENER.open(f"{url.rstrip('/')}/api/v1/status", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class OwnerApi:
    def __init__(self, url: str, api_key: str) -> None:
        self._url = url.rstrip("/")
        self._api_key = api_key

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            f"{self._url}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Argilla-Api-Key": self._api_key, "Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise EmbeddedServerError(f"Argilla refused {method} {path}: HTTP {error.code} {detail}") from error
        except OSError as error:
            raise EmbeddedServerError(f"Argilla at {self._url} did not answer {method} {path}: {error}") from error


def ensure_workspace_members(
    api: OwnerApi, workspace: str, annotators: dict[str, str], reset_passwords: Iterable[str] = ()
) -> None:
    """Make ``workspace`` exist with each annotator (username -> password) in it. Annotators that
    exist already keep their password, except those named in ``reset_passwords``."""
    workspace_id = _workspace_id(api, workspace)
    users = {user["username"]: user for user in api.call("GET", "/users")["items"]}
    to_reset = set(reset_passwords)
    for username, password in annotators.items():
        if username not in users:
            users[username] = api.call(
                "POST",
                "/users",
                {"first_name": username, "username": username, "role": "annotator", "password": password},
            )
        elif username in to_reset:
            api.call("PATCH", f"/users/{users[username]['id']}", {"password": password})
    members = {user["username"] for user in api.call("GET", f"/workspaces/{workspace_id}/users")["items"]}
    for username in annotators:
        if username not in members:
            api.call("POST", f"/workspaces/{workspace_id}/users", {"user_id": users[username]["id"]})


def _workspace_id(api: OwnerApi, name: str) -> str:
    for workspace in api.call("GET", "/me/workspaces")["items"]:
        if workspace["name"] == name:
            return workspace["id"]
    return api.call("POST", "/workspaces", {"name": name})["id"]
