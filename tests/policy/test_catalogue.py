"""docs/guardrails.md: the rule catalogue ships in the project (users' checkouts have no ../shared/checks.md)."""

from __future__ import annotations

from mlcluster.policy import rules
from mlcluster.policy.catalogue import catalogue_file, catalogue_text
from tests.conftest import ROOT


def test_the_catalogue_is_current_and_lists_every_rule_with_its_whole_id():
    path = catalogue_file(ROOT)
    assert path.read_text() == catalogue_text(), "docs/guardrails.md is stale: run `mlcluster schema`"
    text = catalogue_text()
    for rule in rules().values():
        assert f"## {rule.id}\n" in text and f"[`{rule.id}`](#{rule.id})" in text
        assert rule.anchor == f"docs/guardrails.md#{rule.id}"
    assert "checks.md" not in text and "issue#" not in text


def test_the_pack_points_at_the_catalogue():
    from mlcluster.policy.crossguard import policies

    for policy in policies():
        assert policy.framework.reference.startswith("docs/guardrails.md#")
        assert not any(tag.startswith(("checks.md", "issue#")) for tag in policy.tags or [])
