"""Run the program under the Pulumi SDK's mocks and record every resource registration.

This is the same `mlcluster.program.build()` that `pulumi up` runs; only the resource monitor is a mock.
The recording monitor keeps what a reviewer needs: type, name, parent, provider, dependencies, the
options that guard data (protect, retainOnDelete, ignoreChanges) and the inputs, secrets still marked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from mlcluster import stackconfig
from mlcluster.profiles.model import ProfileBase
from mlcluster.render.mocks import PlatformMocks

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    dependencies: list[str]
    options: dict[str, Any]
    inputs: dict[str, Any]


@dataclass
class RenderResult:
    stack: str
    profile: ProfileBase
    resources: list[Registration]
    outputs: dict[str, tuple[Any, bool]]  # key → (value, is_secret)
    notes: list[str] = field(default_factory=list)


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """JSON data only: no outputs, futures or resources anywhere inside."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _serialized(state: dict[str, Any]) -> Any:
    """The mocks' answer as the wire's Struct, without a nested event loop. rpc.serialize_properties is a coroutine
    because a value may be an output or a resource to wait for; plain data it serializes without awaiting anything,
    so the coroutine is driven to its end here. Any other answer goes to the loop as MockMonitor sends it."""
    if not _plain(state):
        return _sync_await(rpc.serialize_properties(state, {}))
    coroutine = rpc.serialize_properties(state, {})
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("pulumi's rpc.serialize_properties waited while serializing plain data; "
                       "mlcluster/render/engine.py:_serialized needs to follow the SDK")


class RecordingMonitor(runtime_mocks.MockMonitor):
    """MockMonitor that records each registration, with URNs built as the real engine builds them."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                type_ = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def _alias_urns(self, request: Any) -> list[str]:
        """The URNs a resource answers to besides its own (what the engine matches against the last state, so a
        moved resource is updated in place, not replaced)."""
        found = []
        for alias in request.aliases:
            if alias.urn:
                found.append(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            found.append(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        return sorted(found)

    def RegisterResource(self, request: Any) -> Any:
        """MockMonitor.RegisterResource (pulumi/pulumi sdk/python/lib/pulumi/runtime/mocks.py at v3.272.0: the URN,
        the inputs deserialized once, the mocks' answer kept for lookups and sent back), recording as it goes and
        answering without a nested event loop (_serialized), so that it can run on the loop's own thread."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()  # as MockMonitor: deserializing a resource reference needs one
        inputs = rpc.deserialize_properties(request.object)
        id_, state = self.mocks.new_resource(runtime_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False,
            transforms=runtime_mocks._resolve_callbacks(request.transforms)))
        answer = _serialized(state)
        self.resources[urn] = runtime_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        provider = request.provider.rpartition("::")[0] if request.provider else None
        self.registrations.append(Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            provider=provider,
            dependencies=sorted(set(request.dependencies)),
            options={
                "protect": bool(request.protect),
                "retainOnDelete": bool(request.retainOnDelete),
                "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                "ignoreChanges": sorted(request.ignoreChanges),
                "replaceOnChanges": sorted(request.replaceOnChanges),
                "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
                **({"aliases": aliases} if (aliases := self._alias_urns(request)) else {}),
            },
            inputs=inputs,
        ))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=answer)


class _RunAtOnce(concurrent.futures.ThreadPoolExecutor):
    """The render loop's executor: runs each call at once, on the loop's thread. The SDK hands every monitor call
    to the loop's default executor (`run_in_executor(None, ...)` in pulumi/runtime/resource.py) because a real
    monitor is a gRPC server; the mock monitor is a function call, and a thread hop per call (queue, wake-up, GIL
    hand-over, self-pipe) was ~14% of a 10-team render. (asyncio accepts only ThreadPoolExecutors as default.)"""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # as the thread pool's worker does: the caller awaits the future
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def render_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for one render, with _RunAtOnce as its executor, made current for its length (the SDK
    runs on the current loop: sync_await._ensure_event_loop). Afterwards tasks the run left pending are cancelled
    and finished, the loop is closed and the previous one is current again."""
    previous = _ensure_event_loop()
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_RunAtOnce(max_workers=1))
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(previous)
        loop.close()


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a render. A render builds hundreds of thousands of objects that
    stay alive until it ends (every resource, output and future of the Pulumi SDK); with the collector on, each
    full collection walks all of them again, which took ~40% of a 100-team render (bench/render.py shows it). The
    cycles a render leaves are freed by the next collection once it is back on (whose first pass walks what the
    render allocated, so the `mlcluster` command, which exits after its render, keeps it off: cli.main). Reference
    counting still frees everything else as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def stack_traces_skipped() -> Iterator[None]:
    """Register resources without capturing the stack that created each one. For the engine's "declared at"
    display the SDK walks the whole Python stack of every registration, stat-ing each frame's file
    (pulumi/pulumi sdk/python/lib/pulumi/runtime/resource.py at v3.272.0: `_get_stack_trace`, called by
    `register_resource` and `read_resource`, sent as the request's stackTrace and sourcePosition), ~12% of a
    10-team render; the mock monitor reads neither (sdk/python/lib/pulumi/runtime/mocks.py,
    `MockMonitor.RegisterResource`), so the render sends an empty trace. Only while a render runs: `pulumi up`
    never comes here and keeps its source positions."""
    capture = runtime_resource._get_stack_trace
    runtime_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = capture


def run(stack: str, config: dict[str, str], secret_keys: list[str], source: str,
        override_lines: dict | None = None, sets: tuple[str, ...] = (),
        inventory_lines: dict | None = None) -> RenderResult:
    """Run `program.build()` for `stack` with `config` (wire format: `mlcluster:key` → string)."""
    with stack_traces_skipped(), render_loop():  # from the mocks' root Stack resource on
        return _run(stack, config, secret_keys, source, override_lines, sets, inventory_lines)


def _run(stack: str, config: dict[str, str], secret_keys: list[str], source: str, override_lines: dict | None,
         sets: tuple[str, ...], inventory_lines: dict | None) -> RenderResult:
    from mlcluster.program import build  # the program, exactly as `pulumi up` runs it

    settings.reset_options(project=stackconfig.PROJECT, stack=stack, preview=False)
    runtime_config.set_all_config(dict(config), list(secret_keys))
    mocks = PlatformMocks(sets)
    monitor = RecordingMonitor(mocks)
    runtime_mocks.set_mocks(mocks, stackconfig.PROJECT, stack, preview=False, monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    source_token = stackconfig.CONFIG_SOURCE.set(source)
    lines_token = stackconfig.OVERRIDE_LINES.set(dict(override_lines or {}))
    inventory_token = stackconfig.INVENTORY_LINES.set(dict(inventory_lines or {}))
    captured: dict[str, Any] = {}

    async def resolve(outputs: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
        resolved = {}
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            resolved[key] = (await out.future(), await out.is_secret())
        return resolved

    def program() -> None:
        profile, outputs = build(sets)
        captured["profile"] = profile
        captured["outputs"] = _sync_await(resolve(outputs))

    try:
        _sync_await(run_pulumi_func(program))
    finally:
        stackconfig.CONFIG_SOURCE.reset(source_token)
        stackconfig.OVERRIDE_LINES.reset(lines_token)
        stackconfig.INVENTORY_LINES.reset(inventory_token)
        monitor.resources.clear()  # the mocks' copy of every resource's state: only lookups during the run read it
    return RenderResult(stack=stack, profile=captured["profile"], resources=monitor.registrations,
                        outputs=captured["outputs"])
