"""Unpickling downloaded data without running code: only plain data gets through.

``pickle.loads`` calls whatever a file names, so a pickle from the network (TAPE's LMDB records,
CIFAR-10's python batches) could run code. ``loads`` here refuses every global except the few
that rebuild numpy arrays and scalars; containers and numbers (dict, list, tuple, set, str,
bytes, int, float, bool, None) need no global at all. Arrays are accepted only with a plain
dtype (booleans, integers, floats, complex numbers, strings, bytes: no objects).
"""
from __future__ import annotations

import io
import pickle

import numpy as np

# the globals numpy arrays and scalars pickle to (numpy 1 names and numpy 2 names), and the one
# python 2 pickles use for byte strings
ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}
PLAIN_KINDS = "biufcSU"


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only plain data "
                                         f"(containers, numbers, strings, numpy arrays) is accepted")
        return super().find_class(module, name)


MAX_DEPTH = 100


def _children(value) -> list:
    return [x for pair in value.items() for x in pair] if isinstance(value, dict) else list(value)


def _check_plain(value, max_nodes: int) -> None:
    """Refuse anything but plain data, in work linear in the number of distinct objects.

    Walks without recursion and visits a shared container once, but counts it every time it is
    referenced: a pickle of 333 bytes (``a = [a, a]`` 45 times) stands for 2**45 items, which any
    reader of the data would walk, so more than ``max_nodes`` such items is refused. So are
    cycles and nesting deeper than MAX_DEPTH.
    """
    sizes: dict[int, int] = {}     # id of a checked container -> items it stands for, itself included
    path: set[int] = set()         # containers being checked (ancestors of the current one)
    stack = [(value, 0, False)]
    while stack:
        node, depth, closing = stack.pop()
        if closing:
            path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in _children(node))
            if sizes[id(node)] > max_nodes:
                raise pickle.UnpicklingError(
                    f"data that stands for more than {max_nodes} items (shared references "
                    f"repeated over and over): refused as not plain data")
            continue
        if isinstance(node, (np.ndarray, np.generic)):
            if node.dtype.kind not in PLAIN_KINDS:
                raise pickle.UnpicklingError(f"numpy data of dtype {node.dtype} is not plain data")
        elif isinstance(node, (dict, list, tuple, set, frozenset)):
            if id(node) in sizes:
                continue
            if id(node) in path:
                raise pickle.UnpicklingError("data that contains itself (a cycle) is not plain data")
            if depth >= MAX_DEPTH:
                raise pickle.UnpicklingError(f"data nested more than {MAX_DEPTH} levels deep")
            path.add(id(node))
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in _children(node))
        elif not (node is None or isinstance(node, (str, bytes, bytearray, int, float, complex))):
            raise pickle.UnpicklingError(f"a {type(node).__name__} is not plain data")


def loads(data: bytes, encoding: str = "ASCII"):
    """``pickle.loads`` for plain data only; ``pickle.UnpicklingError`` for anything else."""
    value = _Unpickler(io.BytesIO(data), encoding=encoding).load()
    # every item of plain data costs at least one byte of the pickle, unless it is shared
    _check_plain(value, max_nodes=8 * len(data) + 10_000)
    return value


def load(file, encoding: str = "ASCII"):
    """``loads`` of an open binary file's whole content."""
    return loads(file.read(), encoding=encoding)
