"""kb core: documents, the version ledger, the vector store, retrieval and staleness.

Importable without a server or a watcher; nothing here loads a model or opens a store on import.
"""

from kb.documents import Chunk, DocType, Document, RiskTier
from kb.errors import KBError
from kb.feed import ChangeKind
from kb.knowledge import Change, KnowledgeBase
from kb.retrieval import QueryAnswer, QueryRequest, QueryResult, RetrievalMode
from kb.settings import Settings
from kb.staleness import Severity, StalenessReason, StalenessRow
from kb.timeline import VersionStatus

__all__ = [
    "Change",
    "ChangeKind",
    "Chunk",
    "DocType",
    "Document",
    "KBError",
    "KnowledgeBase",
    "QueryAnswer",
    "QueryRequest",
    "QueryResult",
    "RetrievalMode",
    "RiskTier",
    "Settings",
    "Severity",
    "StalenessReason",
    "StalenessRow",
    "VersionStatus",
]
