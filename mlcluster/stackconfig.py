"""Stack configuration: which profile a stack deploys, its overrides, and how to reach its cluster.

The program reads these through `pulumi.Config`, under `pulumi up` and under the mocks alike. `render`
and the tests load `stacks/Pulumi.<env>.yaml` with pyyaml (the mocks never read stack files) and feed the
same values to the runtime with `set_all_config`, so the code that interprets them is the same code.
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcluster.deferred import pulumi
from mlcluster.errors import ConfigError
from mlcluster.yamlsource import Path_, load

PROJECT = "mlcluster"

# The project's config keys (declared in Pulumi.yaml as well). Value: (kind, description).
KEYS: dict[str, tuple[str, str]] = {
    "profile": ("string", "profile name under profiles/ (or a path to a profile YAML)"),
    "overrides": ("object", "profile fields deep-merged over the profile for this stack"),
    "kubeconfig": ("secret string", "kubeconfig of an existing cluster (substrate existing)"),
    "kubeContext": ("string", "context in your kubeconfig file (substrate existing)"),
    "inventory": ("object", "hosts, networks, registration address, bastion (substrate baremetal)"),
    "sshPrivateKey": ("secret string", "SSH private key for the inventory's hosts (substrate baremetal)"),
    "alertReceivers": ("secret object", "Alertmanager receiver name → Slack/webhook URL or PagerDuty routing key"),
    "oidcClientSecret": ("secret string", "OAuth client secret for the tools' login (JupyterHub)"),
    "e2e": ("object", "test harness only (stacks/Pulumi.e2e.yaml): local stub charts and skipAwait"),
}
SECRET_KEYS = frozenset({"kubeconfig", "sshPrivateKey", "alertReceivers", "oidcClientSecret"})
SECRET_PLACEHOLDER = "[secret]"

# Where the values came from, for error messages: a stack file in `render`, the stack's file under `pulumi up`.
CONFIG_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlcluster_config_source", default=None)
# Line numbers of `mlcluster:overrides` values in the stack file, when render loaded it.
OVERRIDE_LINES: contextvars.ContextVar[dict[Path_, int] | None] = contextvars.ContextVar(
    "mlcluster_override_lines", default=None)
INVENTORY_LINES: contextvars.ContextVar[dict[Path_, int] | None] = contextvars.ContextVar(
    "mlcluster_inventory_lines", default=None)


@dataclass(frozen=True)
class E2eSettings:
    """What the real-engine loop (tests/e2e, stacks/Pulumi.e2e.yaml) changes, and nothing else: a control plane
    with no nodes and no chart repository. Helm releases install stub charts holding the pinned CRDs (written by
    the test into `local_charts`), and `skip_await` stops the provider waiting for workloads to become ready."""

    local_charts: str | None = None
    skip_await: bool = False

    def chart(self, name: str) -> str | None:
        if not self.local_charts:
            return None
        path = Path(self.local_charts) / name
        return str(path.resolve()) if (path / "Chart.yaml").is_file() else None

    @classmethod
    def parse(cls, source: str, raw: object) -> E2eSettings | None:
        if not raw:
            return None
        if not isinstance(raw, dict) or set(raw) - {"local_charts", "skip_await"}:
            raise ConfigError.one(source, f"{PROJECT}:e2e", raw, "allowed keys: local_charts (a folder of charts), "
                                  "skip_await (true/false); it is for stacks/Pulumi.e2e.yaml only")
        return cls(local_charts=raw.get("local_charts"), skip_await=bool(raw.get("skip_await")))


@dataclass(frozen=True)
class StackSettings:
    stack: str
    source: str
    profile: str = "local"
    overrides: dict[str, Any] = field(default_factory=dict)
    override_lines: dict[Path_, int] = field(default_factory=dict)
    kube_context: str | None = None
    kubeconfig: pulumi.Output[str] | None = None  # secret
    inventory: Any = None
    inventory_lines: dict[Path_, int] = field(default_factory=dict)
    ssh_private_key: pulumi.Output[str] | None = None  # secret
    # Receiver name → secret URL/key. None: not set; names unknown when render only has a placeholder.
    alert_receivers: dict[str, pulumi.Output[str]] | None = None
    alert_receiver_names_known: bool = True
    oidc_client_secret: pulumi.Output[str] | None = None  # secret
    e2e: E2eSettings | None = None  # only the real-engine test stack sets it

    @classmethod
    def from_pulumi_config(cls) -> StackSettings:
        stack = pulumi.get_stack()
        source = CONFIG_SOURCE.get() or f"stacks/Pulumi.{stack}.yaml"
        config = pulumi.Config(PROJECT)
        profile = config.get("profile") or "local"
        try:
            overrides = config.get_object("overrides") or {}
        except Exception:  # pulumi raises ConfigTypeError with a generic message
            raise ConfigError.one(source, f"{PROJECT}:overrides", config.get("overrides"),
                                  "allowed is a mapping of profile fields") from None
        if not isinstance(overrides, dict):
            raise ConfigError.one(source, f"{PROJECT}:overrides", overrides, "allowed is a mapping of profile fields")
        alert_receivers, alert_names_known = _secret_map(source, "alertReceivers")
        return cls(
            stack=stack, source=source, profile=profile, overrides=overrides,
            override_lines=OVERRIDE_LINES.get() or {},
            kube_context=config.get("kubeContext") or None,  # Pulumi.yaml's default is ""
            kubeconfig=config.get_secret("kubeconfig"),
            inventory=config.get_object("inventory") or None,  # Pulumi.yaml's default is {}
            inventory_lines=INVENTORY_LINES.get() or {},
            ssh_private_key=config.get_secret("sshPrivateKey"),
            alert_receivers=alert_receivers,
            alert_receiver_names_known=alert_names_known,
            oidc_client_secret=config.get_secret("oidcClientSecret"),
            e2e=E2eSettings.parse(source, config.get_object("e2e")),
        )


def _secret_map(source: str, key: str) -> tuple[dict[str, pulumi.Output[str]] | None, bool]:
    """A secret object of name → string, each value kept secret, and whether its names are known. Read raw
    (not through `get_secret_object`) so the names can be checked before anything is registered; the values
    only ever leave as secrets. Render of an encrypted stack value has a placeholder: names unknown."""
    raw = pulumi.runtime.get_config(f"{PROJECT}:{key}")
    if raw is None:
        return None, True
    if raw == SECRET_PLACEHOLDER:
        return {}, False
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError.one(source, f"{PROJECT}:{key}", "[secret]", "allowed is a mapping of name → string, set "
                              f"with `pulumi config set --secret --path '{PROJECT}:{key}.<name>' <value>`")
    return {name: pulumi.Output.secret(value) for name, value in sorted(data.items())}, True


@dataclass(frozen=True)
class StackFile:
    """A `stacks/Pulumi.<env>.yaml` as render sees it: wire-format config and the lines of overrides."""

    stack: str
    source: str
    config: dict[str, str]
    secret_keys: list[str]
    override_lines: dict[Path_, int]
    inventory_lines: dict[Path_, int]


def read_stack_file(path: Path, display: str | None = None) -> StackFile:
    """Load a stack file into the `<project>:<key>` → string form the runtime takes (JSON for objects).

    Encrypted values (`secure: v1:…`) cannot be decrypted offline; they become a `[secret]` placeholder,
    still marked secret, so render shows where a secret is used without knowing it.
    """
    shown = display or str(path)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    source = load(path, shown)
    doc = source.data or {}
    if not isinstance(doc, dict):
        raise ConfigError.one(shown, "", doc, "a stack file is a mapping with a `config:` key", line=1)
    unknown_top = sorted(set(doc) - {"config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt"})
    if unknown_top:
        raise ConfigError.one(shown, unknown_top[0], doc[unknown_top[0]],
                              "allowed top-level keys are config, environment, secretsprovider, encryptedkey, "
                              "encryptionsalt", line=source.line_of((unknown_top[0],)))
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError.one(shown, "config", raw, "allowed is a mapping of `namespace:key` to values",
                              line=source.line_of(("config",)))
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        line = source.line_of(("config", key))
        if namespace == PROJECT and name not in KEYS:
            allowed = ", ".join(f"{PROJECT}:{k}" for k in KEYS)
            raise ConfigError.one(shown, f"config.{key}", value, f"unknown config key; allowed keys are {allowed}",
                                  line=line)
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
            continue
        if namespace == PROJECT and name in SECRET_KEYS:
            raise ConfigError.one(shown, f"config.{key}", "<plain text>",
                                  f"`{key}` holds credentials: set it with `pulumi config set --secret {name} …`",
                                  line=line)
        if namespace == PROJECT and name in ("overrides", "inventory", "e2e") and not isinstance(value, dict):
            raise ConfigError.one(shown, f"config.{key}", value, "allowed is a mapping of profile fields", line=line)
        if namespace == PROJECT and name in ("profile", "kubeContext") and not isinstance(value, str):
            raise ConfigError.one(shown, f"config.{key}", value, "allowed is a string", line=line)
        config[key] = value if isinstance(value, str) else json.dumps(value)
    def lines_of(key: str) -> dict[Path_, int]:
        return {path[2:]: line for path, line in source.lines.items()
                if len(path) >= 2 and path[:2] == ("config", f"{PROJECT}:{key}")}

    return StackFile(stack=stack, source=shown, config=config, secret_keys=secret_keys,
                     override_lines=lines_of("overrides"), inventory_lines=lines_of("inventory"))
