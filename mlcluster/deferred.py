"""The Pulumi SDKs and Jinja, imported the first time the program uses them.

The add-ons' settings, rules and metadata live beside their components (one module per add-on), so `validate`,
`check --render` and `profiles` import those modules too, but never run a component. Importing pulumi, its
provider SDKs and Jinja costs more than everything else `validate` does (~0.3 s of ~0.7 s), so the modules of
the program import them from here:

    from mlcluster.deferred import Component, k8s, pulumi

`pulumi.ResourceOptions(...)` then imports pulumi on that first call, and a component class is written
`class Network(Component)`: it becomes a `pulumi.ComponentResource` when the first one is created, not when the
class is defined. Type checkers see the real modules.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Component", "CustomResource", "aws", "command", "jinja2", "k8s", "pulumi", "random"]


class Deferred:
    """A module imported on first attribute access (then every access is a dictionary lookup away)."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<deferred module {self._name}>"


@functools.cache
def _with_pulumi_base(cls: type, base: str) -> type:
    """`cls` with `pulumi.<base>` after it in the method order: `super().__init__(type, name, props, opts)` in the
    class's own __init__ reaches the Pulumi base, and the instance is a pulumi.Resource (a parent, a dependency)
    and still an instance of `cls`."""
    import pulumi

    return type(cls.__name__, (cls, getattr(pulumi, base)), {"__module__": cls.__module__,
                                                             "__qualname__": cls.__qualname__})


class Component:
    """Base of the program's components: a pulumi.ComponentResource once instantiated (see the module docstring)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(_with_pulumi_base(cls, "ComponentResource"))


class CustomResource:
    """Base of a resource class of our own: a pulumi.CustomResource once instantiated."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(_with_pulumi_base(cls, "CustomResource"))


if TYPE_CHECKING:
    import jinja2 as jinja2
    import pulumi as pulumi
    import pulumi_aws as aws
    import pulumi_command as command
    import pulumi_kubernetes as k8s
    import pulumi_random as random
else:
    pulumi = Deferred("pulumi")
    aws = Deferred("pulumi_aws")
    k8s = Deferred("pulumi_kubernetes")
    random = Deferred("pulumi_random")
    command = Deferred("pulumi_command")
    jinja2 = Deferred("jinja2")
