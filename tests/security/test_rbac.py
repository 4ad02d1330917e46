"""What a team member's RoleBindings really allow, evaluated with the authorizer's rules on every render
(mlcluster.semantics.rbac). Before: members were bound to the built-in `edit` and leads to `admin`, which write
NetworkPolicies (a member could delete default-deny and restricted egress) and RoleBindings, and which External
Secrets and cert-manager aggregate into (a member could create a SecretStore using the controller's own AWS
identity, or mint certificates from the platform CA); and no role let members create the TrainJobs the docs
tell them to."""

from __future__ import annotations

import pytest
import yaml

from mlcluster.profiles.loader import shipped_profiles
from mlcluster.semantics.rbac import Authorizer, Subject
from tests.conftest import rendered_profile, rendered_stack
from tests.security.rbac_invariants import FORBIDDEN_FOR_MEMBERS

RENDERS = [("profile", n) for n in shipped_profiles()] + [("stack", "shared"), ("stack", "prod"), ("stack", "lab")]
# What docs/data-scientists.md asks a member to create in their namespace.
DOCS_KINDS = [("batch", "jobs"), ("trainer.kubeflow.org", "trainjobs"), ("serving.kserve.io", "inferenceservices"),
              ("ray.io", "rayjobs"), ("argoproj.io", "workflows"), ("", "configmaps"), ("", "pods"),
              ("", "persistentvolumeclaims")]


def authorizer(files):
    return Authorizer([yaml.safe_load(t) for p, t in files.items() if p.startswith("manifests/")])


def people(team):
    for user in [*team.members, *team.leads]:
        yield Subject("User", user, groups=("system:authenticated",))
    for group in team.groups:
        yield Subject("User", f"someone-in-{group}", groups=(group, "system:authenticated"))


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_team_people_cannot_weaken_isolation_or_escalate(kind, name):
    rendered = rendered_profile(name) if kind == "profile" else rendered_stack(name)
    profile, auth = rendered.result.profile, authorizer(rendered.files)
    prefix = profile.tenancy.namespace_prefix
    namespaces = [f"{prefix}{t.name}" for t in profile.teams]
    for team in profile.teams:
        own = f"{prefix}{team.name}"
        other = next((n for n in namespaces if n != own), "kube-system")
        for person in people(team):
            allowed = [request for request in FORBIDDEN_FOR_MEMBERS(own, other)
                       if auth.allowed(person, request[0], request[1], request[2], request[3])]
            assert allowed == [], (person.name, allowed)
            missing = [r for g, r in DOCS_KINDS if not auth.allowed(person, "create", g, r, own)]
            assert missing == [], (person.name, missing)


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_no_team_subject_is_bound_to_an_aggregated_builtin_role(kind, name):
    rendered = rendered_profile(name) if kind == "profile" else rendered_stack(name)
    prefix = rendered.result.profile.tenancy.namespace_prefix
    for path, text in rendered.files.items():
        obj = yaml.safe_load(text) if path.startswith("manifests/") else None
        if obj and obj["kind"] == "RoleBinding" and obj["metadata"]["namespace"].startswith(prefix):
            assert obj["roleRef"]["name"] not in ("edit", "admin", "view", "cluster-admin"), path


def test_service_accounts_in_team_namespaces_hold_no_permissions():
    rendered = rendered_profile("aws-gpu")
    auth = authorizer(rendered.files)
    for ns in ("team-vision", "team-nlp"):
        for sa in ("workload", "default"):
            subject = Subject("ServiceAccount", sa, namespace=ns)
            assert auth.rules_for(subject, ns) == [] and auth.rules_for(subject, None) == []


def test_exec_is_an_opt_in():
    from mlcluster.render import render

    rendered = render(profile="local", sets=("tenancy.member_exec=true",))
    member = Subject("User", "alice@example.com")
    assert authorizer(rendered.files).allowed(member, "create", "", "pods/exec", "team-vision")
    assert not authorizer(rendered_profile("local").files).allowed(member, "create", "", "pods/exec", "team-vision")
