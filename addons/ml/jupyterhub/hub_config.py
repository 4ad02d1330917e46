"""Runs inside the JupyterHub hub (z2jh `hub.extraConfig`), not in mlcluster: the notebook choices a user sees.

Each team offers one profile per resource tier it may use, and spawns into the team's namespace (its quota,
network policies and `workload` service account apply). A user sees the profiles of the teams that list
them as member or lead, or of a group they belong to (groups come from the identity provider).
The text of this module is embedded in the chart values, followed by the call that installs it; tests
import it directly and execute the embedded text.
"""

from __future__ import annotations

from typing import Any


def profile_list_for(teams: dict[str, dict[str, Any]]):
    """`teams`: name → {"users": [...], "groups": [...], "profiles": [KubeSpawner profile, ...]}."""

    def profile_list(spawner: Any) -> list[dict[str, Any]]:
        user = spawner.user
        groups = {group.name for group in getattr(user, "groups", [])}
        return [profile for team in teams.values()
                if user.name in team["users"] or groups & set(team["groups"])
                for profile in team["profiles"]]

    return profile_list


def generated_password_authenticator(passwords: dict[str, str]):
    """A login per user with the password mlcluster generated for them (the `passwords` setting): unlike the
    DummyAuthenticator's one shared password, nobody can log in as somebody else. JupyterHub's Authenticator API
    (jupyterhub/auth.py): `authenticate(handler, data)` returns the user name, or None to refuse; the base class
    serves the username/password form."""
    import hmac

    from jupyterhub.auth import Authenticator

    class GeneratedPasswordAuthenticator(Authenticator):
        async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
            username, password = data.get("username", ""), data.get("password", "")
            expected = passwords.get(username)
            if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
                return username
            return None

    return GeneratedPasswordAuthenticator
