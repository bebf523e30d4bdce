"""wray's cross-language values in deterministic CBOR (docs/abi.md, "Values
across languages"), written byte for byte as every wray SDK writes them, so
the same value from Python is the same object as from Rust, C or Go.

    from wray import cbor
    assert cbor.dumps([1, 1.5, "x"]) == bytes.fromhex("8301f93e006178")
"""

from __future__ import annotations

import math
import struct
from typing import Any, List, Tuple

__all__ = ["REF_TAG", "dumps", "loads"]

#: The tag of an object reference ("wray" in ASCII).
REF_TAG = 0x77726179


def _head(out: bytearray, major: int, n: int) -> None:
    m = major << 5
    if n < 24:
        out.append(m | n)
    elif n <= 0xFF:
        out += bytes((m | 24, n))
    elif n <= 0xFFFF:
        out.append(m | 25)
        out += n.to_bytes(2, "big")
    elif n <= 0xFFFFFFFF:
        out.append(m | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(m | 27)
        out += n.to_bytes(8, "big")


def _float(out: bytearray, x: float) -> None:
    if math.isnan(x):
        out += b"\xf9\x7e\x00"
        return
    try:
        single = struct.unpack(">f", struct.pack(">f", x))[0]
    except OverflowError:
        single = None
    if single is None or single != x:
        out.append(0xFB)
        out += struct.pack(">d", x)
        return
    try:
        half = struct.pack(">e", x)
        if struct.unpack(">e", half)[0] == x:
            out.append(0xF9)
            out += half
            return
    except OverflowError:
        pass
    out.append(0xFA)
    out += struct.pack(">f", x)


def _encode(out: bytearray, v: Any) -> None:
    from . import ObjectRef  # the package's reference type

    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if 0 <= v < 2**64:
            _head(out, 0, v)
        elif -(2**64) <= v < 0:
            _head(out, 1, -1 - v)
        else:
            raise ValueError(f"{v} is outside wray's integers (-2**64 .. 2**64-1)")
    elif isinstance(v, float):
        _float(out, v)
    elif isinstance(v, str):
        b = v.encode()
        _head(out, 3, len(b))
        out += b
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        _head(out, 2, len(b))
        out += b
    elif isinstance(v, ObjectRef):
        _head(out, 6, REF_TAG)
        _head(out, 2, 32)
        out += bytes.fromhex(v.id)
    elif isinstance(v, (list, tuple)):
        _head(out, 4, len(v))
        for x in v:
            _encode(out, x)
    elif isinstance(v, dict):
        entries: List[Tuple[bytes, Any]] = []
        for k, x in v.items():
            key = bytearray()
            _encode(key, k)
            entries.append((bytes(key), x))
        # RFC 8949 section 4.2.1: the bytewise order of the encoded keys.
        entries.sort(key=lambda e: e[0])
        if any(a[0] == b[0] for a, b in zip(entries, entries[1:])):
            raise ValueError("a map with the same key twice")
        _head(out, 5, len(entries))
        for key, x in entries:
            out += key
            _encode(out, x)
    else:
        raise TypeError(f"a {type(v).__name__} is not a wray value")


def dumps(value: Any) -> bytes:
    """The deterministic encoding of `value`."""
    out = bytearray()
    _encode(out, value)
    return bytes(out)


class _Reader:
    def __init__(self, b: bytes) -> None:
        self.b = b
        self.at = 0

    def take(self, n: int) -> bytes:
        if n > len(self.b) - self.at:
            raise ValueError("the input ends inside a value")
        s = self.b[self.at : self.at + n]
        self.at += n
        return s

    def value(self, depth: int = 0) -> Any:
        from . import ObjectRef, _hashable

        if depth > 128:
            raise ValueError("lists or maps nested too deeply")
        first = self.take(1)[0]
        major, info = first >> 5, first & 0x1F
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info == 22:
                return None
            if info == 25:
                return struct.unpack(">e", self.take(2))[0]
            if info == 26:
                return struct.unpack(">f", self.take(4))[0]
            if info == 27:
                return struct.unpack(">d", self.take(8))[0]
            raise ValueError("a simple value other than false, true and null")
        if info < 24:
            n = info
        elif info <= 27:
            n = int.from_bytes(self.take(1 << (info - 24)), "big")
        else:
            raise ValueError("an indefinite length or a reserved head")
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return self.take(n)
        if major == 3:
            return self.take(n).decode()
        if major == 4:
            return [self.value(depth + 1) for _ in range(n)]
        if major == 5:
            return {_hashable(self.value(depth + 1)): self.value(depth + 1) for _ in range(n)}
        if n == REF_TAG:
            if self.take(1) != b"\x58" or self.take(1) != b"\x20":
                raise ValueError("a reference that is not a 32-byte string")
            return ObjectRef(self.take(32).hex(), owned=False)
        raise ValueError("a tag other than an object reference")


def loads(b: bytes) -> Any:
    """The value encoded in `b` (read leniently: any shortest-or-not form)."""
    r = _Reader(bytes(b))
    v = r.value()
    if r.at != len(r.b):
        raise ValueError("bytes after the value")
    return v
