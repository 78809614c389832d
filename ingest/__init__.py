"""Turning policy files into versions: front matter, Markdown structure, chunks, the ingest pipeline."""

from kb.ingest.pipeline import IngestReport, ingest_paths, sync

__all__ = ["IngestReport", "ingest_paths", "sync"]
