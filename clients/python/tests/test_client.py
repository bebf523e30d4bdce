"""The Python client against a real node: the C example's tasks and actor,
values of every kind, wait, and every error a caller can meet."""

import math
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

import wray

ROOT = Path(__file__).resolve().parents[3]
GUESTS = ROOT / "target/wasm32-wasip1/release"


def _wray_bin() -> str:
    if os.environ.get("WRAY_BIN"):
        return os.environ["WRAY_BIN"]
    return str(ROOT / "target/debug/wray")


@pytest.fixture(scope="session")
def node():
    """A node of this session's own, on a free port, stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [_wray_bin(), "start", "--port", str(port), "--no-cache"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    address = None
    for line in proc.stdout:
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if m:
            address = m.group(0)
            break
    assert address, "the node did not say where it listens"
    wray.init(address=address)
    yield address
    wray.shutdown()
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session", params=["c_math", "go_math"])
def m(node, request):
    """The C example, then its Go twin."""
    path = GUESTS / f"{request.param}.wasm"
    assert path.exists(), "run `make guests` first"
    return wray.load(path)


def test_tasks_run_and_return_values(m):
    assert wray.get(m.add.remote(1, 2)) == 3
    assert wray.get(m.add.remote(-5, 2)) == -3
    assert wray.get(m.sum.remote([0.5, 1, 2.25])) == 3.75
    refs = [m.add.remote(i, i) for i in range(20)]
    assert wray.get(refs) == [2 * i for i in range(20)]


def test_wait_returns_the_ready_ones_in_order(m):
    refs = [m.add.remote(i, i) for i in range(100)]
    ready, pending = wray.wait(refs, num_returns=10)
    assert len(ready) == 10 and len(pending) == 90
    assert [r for r in refs if r in ready] == ready
    ready, pending = wray.wait(refs, num_returns=100)
    assert len(ready) == 100 and pending == []
    with pytest.raises(ValueError):
        wray.wait(refs[:2], num_returns=3)


def test_a_value_put_from_python_is_the_object_c_and_go_put(m):
    for v in [7, "wray", [1.5, None, True], {"k": b"\x00\x01"}]:
        ref = wray.put(v)
        stored = wray.get(m.store.remote(v))
        assert isinstance(stored, wray.ObjectRef)
        assert stored.id == ref.id, v


def test_values_of_every_kind_round_trip(node):
    values = [
        None,
        True,
        0,
        -1,
        2**64 - 1,
        -(2**64),
        1.5,
        -0.0,
        math.inf,
        "ü水",
        b"\x00\x01\xff",
        [1, [2.5, "x"], []],
        {"a": 1, "b": {"c": [True]}},
        {1: "one", "two": 2},
        {"$x": 1},
        list(range(1000)),
    ]
    for v in values:
        assert wray.get(wray.put(v)) == v, v
    nan = wray.get(wray.put(math.nan))
    assert math.isnan(nan)
    assert wray.get(wray.put((1, 2))) == [1, 2]
    # The same value is the same object.
    assert wray.put({"k": [1, 2]}).id == wray.put({"k": [1, 2]}).id
    # A reference inside a value.
    inner = wray.put(7)
    outer = wray.get(wray.put([inner]))
    assert outer[0] == inner
    with pytest.raises(ValueError):
        wray.put(2**64)
    with pytest.raises(TypeError):
        wray.put(object())


def test_actors_keep_state_and_can_be_killed(m):
    c = m.Counter.remote(0)
    assert wray.get(c.incr.remote()) == 1
    assert wray.get(c.incr.remote()) == 2
    other = m.actor_class("Counter").options(name=f"py-counter-{m.digest[:12]}").remote(100)
    assert wray.get(other.incr.remote()) == 101
    with pytest.raises(wray.WrayError) as e:
        m.actor_class("Counter").options(name=f"py-counter-{m.digest[:12]}").remote(0)
    assert e.value.status == 409
    wray.kill(c)
    with pytest.raises(wray.WrayError) as e:
        c.incr.remote()
    assert e.value.status == 404


def test_failures_raise_task_errors_naming_the_task(m):
    with pytest.raises(wray.TaskError) as e:
        wray.get(m.fails.remote())
    assert e.value.function == "fails"
    assert "fails always fails" in e.value.guest_message
    assert "fails always fails" in str(e.value)
    # The module's manifest refuses bad calls before they run.
    with pytest.raises(wray.ArgumentError) as e:
        m.add.remote(1)
    assert "`add(a: int, b: int) -> int` takes 2 arguments, not 1" in str(e.value)
    with pytest.raises(TypeError) as e:
        m.add.remote("1", 2)
    assert "argument `a`" in str(e.value) and "must be an int, not a str" in str(e.value)
    with pytest.raises(wray.ArgumentError):
        m.Counter.remote("x")


def test_bad_calls_are_refused_and_the_node_serves_on(m, node):
    with pytest.raises(wray.WrayError) as e:
        m.nope.remote()
    assert e.value.status == 404 and "nope" in str(e.value)
    with pytest.raises(wray.WrayError) as e:
        m.Nope.remote()
    assert e.value.status == 404
    with pytest.raises(wray.WrayError) as e:
        wray.get(wray.ObjectRef("00" * 32, owned=False), timeout=0.1)
    assert e.value.status == 404
    with pytest.raises(wray.WrayError):
        wray.init(address="http://127.0.0.1:1")
    wray.init(address=node)
    assert wray.get(m.add.remote(2, 2)) == 4
