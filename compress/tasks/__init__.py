"""The task registry: signature, batching, metrics and evaluation (torch-free).

Importing this package registers the built-in tasks."""

from compress.tasks import classification, language_modeling, seq2seq  # noqa: F401  (register tasks)
from compress.tasks.base import TASKS, Examples, Task, TaskConfig, TaskInfo, batches, register_task
from compress.tasks.signature import Metric, Signature, TensorSpec

__all__ = ["TASKS", "Examples", "Metric", "Signature", "Task", "TaskConfig", "TaskInfo",
           "TensorSpec", "batches", "register_task"]  # fmt: skip
