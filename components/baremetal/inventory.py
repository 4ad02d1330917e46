"""The inventory: which servers make the cluster and how to reach them.

It lives in the stack config (`mlcluster:inventory`), not in the profile, so profiles stay shareable; the SSH
private key is a Pulumi secret (`mlcluster:sshPrivateKey`). Validated before anything runs: unique names and
addresses, an odd number of servers, a registration address (kube-vip VIP or external load balancer) inside a
host network when there is more than one server, every host in a pool of the profile, GPU hosts saying how
their driver arrives, each host's (and the bastion's) SSH host key — pulumi-command ignores the host key when
none is given, so an unpinned host could be impersonated — and Ubuntu hosts only (the scripts use apt, ufw and
Ubuntu's package names; RHEL would need dnf, firewalld, SELinux policy and NetworkManager settings the scripts do
not implement, so it is refused rather than half-supported). Behind a bastion (co-location) the API is reached
through it (`api_proxy`: a SOCKS proxy the runner opens with `ssh -D`), never from the internet.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from mlcluster.errors import ConfigError, Problem
from mlcluster.profiles.model import Cidr, DnsLabel, Labels, ProfileBase, Strict
from mlcluster.yamlsource import Path_, dotted

INVENTORY_KEY = "mlcluster:inventory"


HOST_KEY = r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$"
HOST_KEY_HELP = "the host's public SSH key, one line as `ssh-keyscan -t ed25519 <address>` prints it after the address"


def _check_host_key(value: str) -> str:
    import re

    if not re.match(HOST_KEY, value):
        raise ValueError(f"allowed is {HOST_KEY_HELP} (e.g. ssh-ed25519 AAAAC3Nza…)")
    return value


class Bastion(Strict):
    """A jump host (co-location): every SSH connection goes through it."""

    address: str = Field(min_length=1)
    user: str = Field("ubuntu", min_length=1)
    port: int = Field(22, ge=1, le=65535)
    host_key: str = Field(description=HOST_KEY_HELP)

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        return _check_host_key(value)


class Driver(Strict):
    mode: Literal["preinstalled", "install", "operator"] = Field(
        description="preinstalled: verified with nvidia-smi; install: the pinned version is installed; "
                    "operator: the GPU operator installs it (addons.gpu.driver: operator).")
    version: str | None = Field(None, pattern=r"^[0-9]{3}(\.[0-9]+){0,2}$",
                                description="install: driver branch or version, e.g. 580 or 580.95.05.")


class Host(Strict):
    name: DnsLabel
    address: str = Field(description="IPv4 address the host is reached at (and its node IP).")
    user: str = Field("ubuntu", min_length=1)
    port: int = Field(22, ge=1, le=65535)
    role: Literal["server", "agent"]
    pool: str = Field(description="The profile's node pool this host belongs to.")
    driver: Driver | None = None
    labels: Labels = Field(default_factory=dict)
    host_key: str = Field(description=HOST_KEY_HELP)

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        return _check_host_key(value)
    os: str = Field("ubuntu", description="The host's OS: ubuntu (22.04 or 24.04). Nothing else is supported.")


class Inventory(Strict):
    networks: list[Cidr] = Field(min_length=1, description="Host networks; every address and the VIP is in one.")
    registration_address: str | None = Field(None, description="Fixed API address: kube-vip VIP or external LB.")
    vip_interface: str | None = Field(None, description="Interface kube-vip announces the VIP on (default: the "
                                                        "interface of the default route).")
    bastion: Bastion | None = None
    api_proxy: str | None = Field(None, pattern=r"^socks5h?://[^\s/]+:[0-9]+$",
                                  description="With a bastion: the SOCKS proxy the runner opens to reach the API "
                                              "(`ssh -N -D 127.0.0.1:1080 <user>@<bastion>` → "
                                              "socks5://127.0.0.1:1080); written into the kubeconfig as `proxy-url`.")
    hosts: list[Host] = Field(min_length=1)

    @property
    def servers(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "server"]

    @property
    def agents(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "agent"]

    def api_address(self) -> str:
        return self.registration_address or self.servers[0].address


def _in_networks(address: str, networks: list[str]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n) for n in networks)


def rules(inventory: Inventory, profile: ProfileBase) -> list[tuple[Path_, Any, str]]:
    found: list[tuple[Path_, Any, str]] = []
    pools = {p.name: p for p in profile.node_pools}
    seen_names: dict[str, int] = {}
    seen_addresses: dict[str, int] = {}
    for i, host in enumerate(inventory.hosts):
        at: Path_ = ("hosts", i)
        try:
            ipaddress.IPv4Address(host.address)
        except ValueError:
            found.append(((*at, "address"), host.address, "allowed is an IPv4 address such as 192.0.2.11"))
            continue
        if host.name in seen_names:
            found.append(((*at, "name"), host.name, f"host names are unique; already hosts[{seen_names[host.name]}]"))
        if host.address in seen_addresses:
            found.append(((*at, "address"), host.address,
                          f"addresses are unique; already hosts[{seen_addresses[host.address]}]"))
        seen_names.setdefault(host.name, i)
        seen_addresses.setdefault(host.address, i)
        if not _in_networks(host.address, inventory.networks):
            found.append(((*at, "address"), host.address, f"not in any of networks {inventory.networks}"))
        if host.os != "ubuntu":
            found.append(((*at, "os"), host.os, "only ubuntu hosts (22.04, 24.04) are supported; RHEL and others "
                          "are refused: the host scripts use apt, ufw and Ubuntu's NVIDIA packages"))
        pool = pools.get(host.pool)
        if pool is None:
            found.append(((*at, "pool"), host.pool, f"no such pool in the profile; pools: {', '.join(pools)}"))
            continue
        if pool.gpu is not None and host.driver is None:
            found.append(((*at, "driver"), None, "a GPU host says how its driver arrives: "
                          "{mode: preinstalled} or {mode: install, version: 580}"))
        if pool.gpu is None and host.driver is not None:
            found.append(((*at, "driver"), host.driver.model_dump(), f"pool `{pool.name}` has no GPUs; remove driver"))
        if host.driver is not None and host.driver.mode == "install" and not host.driver.version:
            found.append(((*at, "driver", "version"), None, "driver mode install needs a pinned version, e.g. 580"))
    from mlcluster.addons.gpu import driver_by_operator

    by_operator = driver_by_operator(profile)
    for i, host in enumerate(inventory.hosts):
        if host.driver is None:
            continue
        if by_operator and host.driver.mode != "operator":
            found.append((("hosts", i, "driver", "mode"), host.driver.mode, "addons.gpu.driver is `operator`: the "
                          "GPU operator installs the driver, so every GPU host says {mode: operator}"))
        elif not by_operator and host.driver.mode == "operator":
            found.append((("hosts", i, "driver", "mode"), "operator", "the GPU operator installs drivers only with "
                          "addons.gpu.driver: operator; allowed here: preinstalled, install"))
    for pool in profile.node_pools:
        members = [i for i, h in enumerate(inventory.hosts) if h.pool == pool.name]
        if not pool.min <= len(members) <= pool.max:
            at: Path_ = ("hosts", members[0], "pool") if members else ("hosts",)
            found.append((at, f"{len(members)} hosts in pool {pool.name}",
                          f"pool `{pool.name}` holds {pool.min}–{pool.max} hosts in the profile (its max sizes GPU "
                          "quotas and queues); list that many or change the pool's min/max"))
    found += _networks(inventory, profile)
    if inventory.bastion is not None and inventory.bastion.address in seen_addresses:
        found.append((("bastion", "address"), inventory.bastion.address, "the bastion is the jump host in front of "
                      f"the cluster, not one of its hosts (hosts[{seen_addresses[inventory.bastion.address]}]): a "
                      "host reached through itself is cut off by the firewall that admits SSH only from the bastion"))
    if inventory.bastion is not None and inventory.api_proxy is None:
        found.append((("api_proxy",), None, "behind a bastion the API is reached through it, never exposed: open "
                      "`ssh -N -D 127.0.0.1:1080 <user>@<bastion>` on the runner and set api_proxy: "
                      "socks5://127.0.0.1:1080"))
    if inventory.bastion is not None and getattr(profile.substrate, "distribution", "k3s") != "k3s":
        found.append((("bastion",), inventory.bastion.address, "co-location (a bastion) needs the pod network "
                      "encrypted across the hosts' block: mlcluster does that for k3s (flannel wireguard-native); "
                      "use substrate.distribution: k3s"))
    servers = len(inventory.servers)
    if servers % 2 == 0 or servers > 7:
        found.append((("hosts",), f"{servers} servers", "embedded etcd needs an odd number of servers: 1, 3 or 5"))
    if servers > 1 and not inventory.registration_address:
        found.append((("registration_address",), None, "with several servers, a fixed API address is needed "
                      "(a kube-vip VIP or an external load balancer) in one of the host networks"))
    if inventory.registration_address:
        try:
            inside = _in_networks(inventory.registration_address, inventory.networks)
        except ValueError:
            found.append((("registration_address",), inventory.registration_address, "allowed is an IPv4 address"))
        else:
            if not inside:
                found.append((("registration_address",), inventory.registration_address,
                              f"the VIP must be inside a host network ({', '.join(inventory.networks)})"))
            if inventory.registration_address in seen_addresses:
                found.append((("registration_address",), inventory.registration_address,
                              "the VIP must not be a host's own address"))
    return found


def _networks(inventory: Inventory, profile: ProfileBase) -> list[tuple[Path_, Any, str]]:
    """Host networks apart from the pod and service networks, and MetalLB's pool apart from every host and the
    VIP (MetalLB would answer ARP for a host's own address)."""
    found: list[tuple[Path_, Any, str]] = []
    substrate = profile.substrate
    ranges = {"pod network (substrate.cluster_cidr)": getattr(substrate, "cluster_cidr", None),
              "service network (substrate.service_cidr)": getattr(substrate, "service_cidr", None)}
    for j, network in enumerate(inventory.networks):
        for what, cidr in ranges.items():
            if cidr and ipaddress.ip_network(network).overlaps(ipaddress.ip_network(cidr)):  # type: ignore[arg-type]
                found.append((("networks", j), network, f"overlaps the {what} {cidr}: host and cluster addresses "
                              "would collide; pick disjoint ranges"))
    metallb = getattr(profile.addons, "metallb", None)
    if metallb is None or not metallb.enabled:
        return found
    from mlcluster.addons.metallb import _valid_range, contains

    pools = [text for text in metallb.addresses if _valid_range(text)]
    taken = [(("hosts", i, "address"), h.address) for i, h in enumerate(inventory.hosts)]
    if inventory.registration_address:
        taken.append((("registration_address",), inventory.registration_address))
    for path, address in taken:
        try:
            pool = next((text for text in pools if contains(text, address)), None)
        except ValueError:
            continue
        if pool:
            found.append((path, address, f"inside MetalLB's address pool {pool} (addons.metallb.addresses): MetalLB "
                          "would hand it to a LoadBalancer Service and answer for it; keep the pool apart from "
                          "hosts and the API address"))
    return found


def load_inventory(data: Any, profile: ProfileBase, source: str, lines: dict[Path_, int]) -> Inventory:
    """Validate the inventory (model, then rules); every problem at once, each with its field and line."""
    def problem(path: Path_, value: Any, allowed: str, missing: bool = False) -> Problem:
        line = next((lines[path[:cut]] for cut in range(len(path), -1, -1) if path[:cut] in lines), None)
        return Problem(source, f"{INVENTORY_KEY}.{dotted(path)}".rstrip("."), value, allowed, line,
                       has_value=not missing)

    if data is None:
        raise ConfigError([problem((), None, "substrate baremetal needs an inventory of hosts in the stack "
                                   "config (see stacks/Pulumi.lab.yaml)", missing=True)])
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([
            problem(tuple(e["loc"]), None if e["type"] == "missing" else e.get("input"),
                    e["msg"].removeprefix("Value error, ") if e["type"] != "missing" else "it is required",
                    missing=e["type"] == "missing")
            for e in exc.errors(include_url=False)
        ]) from None
    found = rules(inventory, profile)
    if found:
        raise ConfigError([problem(path, value, allowed) for path, value, allowed in found])
    return inventory


# The inventory `render --profile` uses when no stack is given: documentation addresses (RFC 5737).
def example_inventory(profile: ProfileBase) -> dict[str, Any]:
    gpu_pools = [p for p in profile.node_pools if p.gpu is not None]
    cpu_pools = [p for p in profile.node_pools if p.gpu is None]
    system = next((p.name for p in cpu_pools if p.role == "system"), cpu_pools[0].name if cpu_pools else "")
    hosts: list[dict[str, Any]] = [
        {"name": f"server-{i}", "address": f"192.0.2.{10 + i}", "role": "server", "pool": system,
         "host_key": example_host_key(f"server-{i}")}
        for i in range(1, 4)
    ]
    from mlcluster.addons.gpu import driver_by_operator

    driver = {"mode": "operator"} if driver_by_operator(profile) else {"mode": "install", "version": "580"}
    for j, pool in enumerate(gpu_pools):
        for k in range(1, max(pool.min, min(pool.max, 2)) + 1):
            hosts.append({"name": f"{pool.name}-{k}", "address": f"192.0.2.{100 + 10 * j + k}", "role": "agent",
                          "pool": pool.name, "driver": dict(driver), "host_key": example_host_key(f"{pool.name}-{k}")})
    return {"networks": ["192.0.2.0/24"], "registration_address": "192.0.2.5", "hosts": hosts}


def example_host_key(name: str) -> str:
    """A well-formed stand-in key for documentation inventories (not a real key)."""
    import base64
    import hashlib

    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(name.encode()).digest()
    return "ssh-ed25519 " + base64.b64encode(blob).decode()
