"""Reviewing infrastructure changes offline: two renders compared (`mlcluster diff`)."""
