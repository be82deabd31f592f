"""Stable hash-derived random vectors for entity keys.

An entity's vector depends only on (key, seed, namespace): never on the vocabulary order, the
process, or ``PYTHONHASHSEED``. Cleora uses these as start vectors; RandomVectorEmbedder exposes
them directly (ID hashing for EMDE).
"""

from __future__ import annotations

import hashlib
import sys
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["key_hashes", "hashed_vectors", "seed_from_random_state"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INT_TAG = np.uint64(0x5EED1D5EED1D5EED)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_HI = 1 if sys.byteorder == "little" else 0  # index of the high half of a uint64 as 2 uint32


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised over uint64 (wrap-around arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _digest(data: bytes) -> int:
    # md5 (the first 8 bytes, big-endian) rather than a faster hash: every warehouse has it, so
    # the dbt package's Cleora macros derive the same start vectors in SQL.
    return int.from_bytes(hashlib.md5(data, usedforsecurity=False).digest()[:8], "big")


def _int_hash(values: np.ndarray) -> np.ndarray:
    return _splitmix64(values.astype(np.int64, copy=False).view(np.uint64) ^ _INT_TAG)


def _object_key_hash(key) -> int | None:
    """Hash of a non-integer key; None for integers, which take the vectorised path."""
    if isinstance(key, Integral) and not isinstance(key, bool) and _INT64_MIN <= key <= _INT64_MAX:
        return None
    if isinstance(key, str):
        return _digest(b"s" + key.encode("utf-8", "surrogatepass"))
    if isinstance(key, bytes):
        return _digest(b"b" + key)
    return _digest(_canonical_bytes(key))


def _canonical_bytes(key) -> bytes:
    """Bytes that identify a key whatever the process: sets and frozensets by their sorted
    members (their iteration order, and so their repr, follows Python's per-process string hash
    randomisation), tuples member by member, anything else by type and repr."""
    if isinstance(key, str):
        return b"s" + key.encode("utf-8", "surrogatepass")
    if isinstance(key, bytes):
        return b"b" + key
    if isinstance(key, (set, frozenset)):
        members = sorted(_canonical_bytes(member) for member in key)
        return b"f" + str(len(members)).encode() + b"(" + b"\x00".join(members) + b")"
    if isinstance(key, tuple):
        members = [_canonical_bytes(member) for member in key]
        return b"t" + str(len(members)).encode() + b"(" + b"\x00".join(members) + b")"
    return b"r" + type(key).__qualname__.encode() + b":" + repr(key).encode()


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """64-bit stable hashes of entity keys (int keys are hashed without a Python loop)."""
    keys = np.asarray(keys)
    if keys.dtype.kind in "iu":
        return _int_hash(keys)
    out = np.empty(len(keys), dtype=np.uint64)
    is_int = np.zeros(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        h = _object_key_hash(key)
        if h is None:
            is_int[i] = True
        else:
            out[i] = h
    if is_int.any():
        out[is_int] = _int_hash(np.array(keys[is_int].tolist(), dtype=np.int64))
    return out


def seed_from_random_state(random_state) -> int:
    """An int seed: the int itself when given, else one drawn from the RandomState."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def hashed_vectors(
    keys: np.ndarray,
    dim: int,
    seed: int,
    namespace: str = "",
    chunk_size: int = 1024,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Standard-normal float32 vectors of shape (len(keys), dim), one stable vector per key.

    Parameters
    ----------
    keys : ndarray
        Entity keys (int64 or object).
    dim : int
        Vector length.
    seed : int
        Different seeds give unrelated vectors.
    namespace : str
        Separates equal keys of different kinds (e.g. a customer 42 and a product 42).
    chunk_size : int
        Rows computed at a time (bounds the temporaries; does not change the values).
    out : ndarray of shape (len(keys), dim), float32, optional
        C-contiguous array to write the vectors into (returned).
    """
    salt = _splitmix64(
        np.array([_digest(f"{seed}|{namespace}".encode())], dtype=np.uint64)
    )[0]
    base = _splitmix64(key_hashes(keys) ^ salt)
    n = len(base)
    if out is None:
        out = np.empty((n, dim), dtype=np.float32)
    elif out.shape != (n, dim) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, dim)}.")
    # one counter-based 64-bit hash per value: its two 32-bit halves feed Box-Muller. The steps
    # are those of _splitmix64 and of the float32 formula below, done in place on small blocks
    # (same values, far fewer temporaries).
    counters = np.arange(1, dim + 1, dtype=np.uint64) * _GOLDEN + _GOLDEN
    rows = max(1, min(chunk_size, n))
    u = np.empty((rows, dim), dtype=np.uint64)
    t = np.empty((rows, dim), dtype=np.uint64)
    f1 = np.empty((rows, dim), dtype=np.float32)
    f2 = np.empty((rows, dim), dtype=np.float32)
    with np.errstate(over="ignore"):
        for start in range(0, n, rows):
            m = min(rows, n - start)
            uu, tt, a, b = u[:m], t[:m], f1[:m], f2[:m]
            np.add(base[start : start + m, None], counters, out=uu)  # (base + c) + golden
            np.right_shift(uu, np.uint64(30), out=tt)
            uu ^= tt
            uu *= _M1
            np.right_shift(uu, np.uint64(27), out=tt)
            uu ^= tt
            uu *= _M2
            np.right_shift(uu, np.uint64(31), out=tt)
            uu ^= tt
            halves = uu.view(np.uint32)  # the 32-bit halves: same floats as (u >> 32), u & lo32
            a[...] = halves[:, _HI::2]
            a += np.float32(1.0)
            a *= np.float32(2.0**-32)
            b[...] = halves[:, 1 - _HI :: 2]
            b *= np.float32(2.0**-32)
            np.log(a, out=a)
            np.multiply(np.float32(-2.0), a, out=a)
            np.sqrt(a, out=a)
            np.multiply(np.float32(2.0 * np.pi), b, out=b)
            np.cos(b, out=b)
            np.multiply(a, b, out=out[start : start + m])
    return out
