"""The HTTP API and the ``kb`` command line: the only place that wires kb and ingest together."""

from kb.server.app import create_app

__all__ = ["create_app"]
