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


def _check_plain(value, depth: int = 0) -> None:
    if depth > 100:
        raise pickle.UnpicklingError("data nested more than 100 levels deep")
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind not in PLAIN_KINDS:
            raise pickle.UnpicklingError(f"numpy data of dtype {value.dtype} is not plain data")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_plain(item, depth + 1)
    elif not (value is None or isinstance(value, (str, bytes, bytearray, int, float, complex))):
        raise pickle.UnpicklingError(f"a {type(value).__name__} is not plain data")


def loads(data: bytes, encoding: str = "ASCII"):
    """``pickle.loads`` for plain data only; ``pickle.UnpicklingError`` for anything else."""
    value = _Unpickler(io.BytesIO(data), encoding=encoding).load()
    _check_plain(value)
    return value


def load(file, encoding: str = "ASCII"):
    """``loads`` of an open binary file's whole content."""
    return loads(file.read(), encoding=encoding)
