"""The CrossGuard runner: every rule as a Pulumi policy, so `pulumi preview --policy-pack policies` enforces
exactly what `mlcluster check` reports offline. High-severity rules are mandatory (they block an update);
medium and low are advisory. A profile's overrides reach the pack as policy config (`mlcluster
policy-config`): a covered resource is not reported.
"""

from __future__ import annotations

from typing import Any

from mlcluster.policy import rules
from mlcluster.policy.model import Override, Resource, Rule

OVERRIDES_SCHEMA = {
    "overrides": {
        "type": "array",
        "description": "Accepted exceptions from the profile (policy.overrides), each with its reason.",
        "items": {"type": "object", "required": ["reason"], "properties": {
            "reason": {"type": "string", "minLength": 20},
            "resources": {"type": "array", "items": {"type": "string"}}}},
    },
}


def plain(value: Any) -> Any:
    """Props as plain dicts and lists. pulumi_policy hands them over wrapped in unknown-checking proxies
    (`_DictProxy`/`_ListProxy`: Mappings and Sequences, not dicts and lists); values still unknown at preview
    become None, which the rules read as "not set (yet)"."""
    from collections.abc import Mapping, Sequence

    from pulumi_policy.proxy import _is_unknown

    if isinstance(value, str):
        return None if _is_unknown(value) else value
    if isinstance(value, Mapping):
        target = value["__target"] if not isinstance(value, dict) else value
        return {k: plain(v) for k, v in target.items()}
    if isinstance(value, Sequence):
        target = value["__target"] if not isinstance(value, list | tuple) else value
        return [plain(v) for v in target]
    return value


def resource_of(item: Any) -> Resource:
    """A `ResourceValidationArgs` or `PolicyResource` as the rules see resources."""
    opts = getattr(item, "opts", None)
    return Resource(type=item.resource_type, urn=item.urn, name=item.name, props=plain(item.props or {}),
                    protect=bool(getattr(opts, "protect", False)),
                    ignore_changes=tuple(getattr(opts, "ignore_changes", None) or ()),
                    dependencies=tuple(d.urn for d in getattr(item, "dependencies", None) or ()))


def _overrides(rule: Rule, args: Any) -> list[Override]:
    config = args.get_config() or {}
    return [Override(rule.id, o["reason"], tuple(o.get("resources") or ())) for o in config.get("overrides") or []]


def policies() -> list[Any]:
    from pulumi_policy import (
        EnforcementLevel,
        PolicyComplianceFramework,
        PolicyConfigSchema,
        ResourceValidationPolicy,
        Severity,
        StackValidationPolicy,
    )

    made: list[Any] = []
    for rule in rules().values():
        common = {
            "name": rule.id, "description": f"{rule.title}. {rule.rationale}",
            "enforcement_level": EnforcementLevel.MANDATORY if rule.severity == "high" else EnforcementLevel.ADVISORY,
            "config_schema": PolicyConfigSchema(properties=OVERRIDES_SCHEMA),
            "severity": Severity(rule.severity), "tags": list(rule.public_ids),
            "framework": PolicyComplianceFramework(name="mlcluster guardrails", reference=rule.anchor),
        }
        if rule.resource_check is not None:
            def validate(args: Any, report_violation: Any, rule: Rule = rule) -> None:
                resource = resource_of(args)
                if not rule.applies_to(resource) or any(o.covers(rule.id, resource) for o in _overrides(rule, args)):
                    return
                for message in rule.resource_check(resource):  # type: ignore[misc]
                    report_violation(message, None)

            made.append(ResourceValidationPolicy(validate=validate, **common))
        if rule.stack_check is not None:
            def validate_stack(args: Any, report_violation: Any, rule: Rule = rule) -> None:
                overrides = _overrides(rule, args)
                for resource, message in rule.stack_check([resource_of(r) for r in args.resources]):  # type: ignore[misc]
                    if not any(o.covers(rule.id, resource) for o in overrides):
                        report_violation(message, resource.urn)

            made.append(StackValidationPolicy(validate=validate_stack, **{**common, "name": policy_names(rule)[-1]}))
    return made


def policy_names(rule: Rule) -> list[str]:
    """A rule's CrossGuard policies: one per runner it has (resource, stack); the stack one gets `-stack`
    when the rule has both."""
    names = [rule.id] if rule.resource_check is not None else []
    if rule.stack_check is not None:
        names.append(f"{rule.id}-stack" if names else rule.id)
    return names


def config(overrides: list[Override]) -> dict[str, Any]:
    """Policy-pack config for `pulumi preview --policy-pack-config`: each overridden rule's exceptions."""
    out: dict[str, Any] = {}
    for override in overrides:
        for name in policy_names(rules()[override.rule]):
            out.setdefault(name, {"overrides": []})["overrides"].append(
                {"reason": override.reason, "resources": list(override.resources)})
    return out
