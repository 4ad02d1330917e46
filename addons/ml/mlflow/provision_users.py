"""Create (or re-key) MLflow basic-auth users: one per team, and the metrics scraper. Runs as a Job in MLflow's
namespace with the admin's credentials, after every change of the user list; idempotent.

Standard library only (it runs in the MLflow image). The users are the files of USERS_DIR (a mounted Secret: file
name = user name, content = password). REST API: mlflow.org/docs/latest/auth/rest-api.html — `POST
/api/2.0/mlflow/users/create` {username, password}; an existing user answers RESOURCE_ALREADY_EXISTS and is
re-keyed with `PATCH /api/2.0/mlflow/users/update-password`. New users hold no permissions
(`default_permission = NO_PERMISSIONS`): a team's user sees the experiments and models it creates (their creator
gets MANAGE), never another team's.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def call(url: str, method: str, path: str, auth: tuple[str, str], body: dict | None = None) -> tuple[int, str]:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_healthy(url: str, timeout: float, pause: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"MLflow at {url} is not healthy after {timeout:.0f} s")
        time.sleep(pause)


def users(folder: Path) -> dict[str, str]:
    """A mounted Secret's keys (Kubernetes adds `..data` and other dot entries: skipped)."""
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def provision(url: str, admin: tuple[str, str], wanted: dict[str, str]) -> list[str]:
    done = []
    for username, password in wanted.items():
        status, body = call(url, "POST", "/api/2.0/mlflow/users/create", admin,
                            {"username": username, "password": password})
        if status == 200:
            done.append(f"created {username}")
            continue
        if "RESOURCE_ALREADY_EXISTS" not in body:
            raise SystemExit(f"creating {username}: HTTP {status} {body[:300]}")
        status, body = call(url, "PATCH", "/api/2.0/mlflow/users/update-password", admin,
                            {"username": username, "password": password})
        if status != 200:
            raise SystemExit(f"updating {username}'s password: HTTP {status} {body[:300]}")
        done.append(f"updated {username}")
    return done


def main() -> None:
    url = os.environ["MLFLOW_URL"].rstrip("/")
    admin = (os.environ["ADMIN_USERNAME"], os.environ["ADMIN_PASSWORD"])
    wait_healthy(url, float(os.environ.get("WAIT_SECONDS", "600")))
    for line in provision(url, admin, users(Path(os.environ.get("USERS_DIR", "/users")))):
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
