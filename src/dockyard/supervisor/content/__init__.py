"""The content store (ingest -> commit -> visible); see store.py and the tree in paths.py."""

from .store import ContentInfo, ContentStore
from .writer import IngestStatus, Writer

__all__ = ["ContentInfo", "ContentStore", "IngestStatus", "Writer"]
