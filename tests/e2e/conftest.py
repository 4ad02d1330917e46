"""The e2e loops start processes (etcd, kube-apiserver, controllers): a SIGTERM (CI timeout, Ctrl-C from a
runner) becomes KeyboardInterrupt so every fixture's `finally` stops them by PID and removes what it made."""

from __future__ import annotations

import signal


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)
