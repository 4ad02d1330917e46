"""Kept for the e2e loop's imports: the invariants live in mlcluster.semantics.rbac."""

from __future__ import annotations

from mlcluster.semantics.rbac import forbidden_for_members as FORBIDDEN_FOR_MEMBERS

__all__ = ["FORBIDDEN_FOR_MEMBERS"]
