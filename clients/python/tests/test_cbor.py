"""The Python encoder against the shared vectors (tests/cbor-vectors.txt):
every value, from its JSON form, encodes to exactly the vector's bytes, and
the bytes decode back to it."""

import json
import math
from pathlib import Path

import wray
from wray import cbor

VECTORS = Path(__file__).resolve().parents[3] / "tests/cbor-vectors.txt"


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_every_vector_encodes_to_its_bytes_and_back():
    checked = 0
    for line in VECTORS.read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("!"):
            continue
        hexed, form = line.split("\t")
        value = wray._from_json(json.loads(form))
        assert cbor.dumps(value) == bytes.fromhex(hexed), form
        assert _same(cbor.loads(bytes.fromhex(hexed)), value), form
        checked += 1
    assert checked >= 40


def test_python_types_encode_as_their_values():
    assert cbor.dumps((1, 2)) == cbor.dumps([1, 2])
    assert cbor.dumps(bytearray(b"\x01")) == b"\x41\x01"
    assert cbor.dumps({"b": 1, "a": 2}) == cbor.dumps({"a": 2, "b": 1})
    for bad, err in [(2**64, ValueError), (object(), TypeError)]:
        try:
            cbor.dumps(bad)
        except err:
            pass
        else:
            raise AssertionError(f"{bad!r} encoded")
