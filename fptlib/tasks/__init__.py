"""The paper's seven tasks (and offline image sets) behind one interface; see ``base.Task``.

>>> from fptlib import tasks
>>> task = tasks.get("bit-xor")          # tasks.names() lists them; tasks.available() says
>>> batch = next(task.train_batches(8, "cpu", seed=0))   # which data each would use here
"""
from fptlib.tasks.base import Batch, Task
from fptlib.tasks.registry import available, get, names, options

__all__ = ["Batch", "Task", "available", "get", "names", "options"]
