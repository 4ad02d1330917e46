"""Serve the mlcluster program to the Pulumi CLI as its language runtime: `pulumi up --client 127.0.0.1:<port>`.

The Python language host (`pulumi-language-python`) is built from a module the Go proxy does not serve at the
tag we pin (see README, "Real engine"), so the e2e loop uses the CLI's documented client mode instead, as the
Automation API does for inline programs: the CLI reads Pulumi.yaml and the stack file, runs the engine and the
providers, and asks this process to run the program — `stacks/__main__.py`'s `main()`, unchanged.

    python tests/e2e/langhost.py        → prints the port, serves until killed
"""

from __future__ import annotations

from concurrent import futures

import grpc
from pulumi.automation._server import LanguageServer
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import language_pb2_grpc


def program() -> None:
    from mlcluster.program import main

    main()


def serve() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageServer(program), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    serve()
