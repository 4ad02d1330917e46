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
