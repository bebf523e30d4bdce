"""wray from Python: call tasks and actors on a wray node, Ray's way.

    import wray
    wray.init()                                  # the local node (or address="http://host:8265")
    m = wray.load("target/wasm32-wasip1/release/c_math.wasm")
    ref = m.add.remote(1, 2)                     # an ObjectRef
    assert wray.get(ref) == 3
    c = m.Counter.remote(0)                      # an actor
    assert wray.get(c.incr.remote()) == 1

The client talks to the node's HTTP API (docs/http-api.md) with the
standard library only. Values cross as wray's cross-language values, in
their JSON form (docs/abi.md): None, bool, int, float, str, bytes, list,
tuple (as a list), dict, and ObjectRef. Functions are those of guests that
take such values (C and other languages; a Rust guest's take rkyv values,
which only Rust writes).
"""

from __future__ import annotations

import atexit
import base64
import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    "ActorHandle",
    "ArgumentError",
    "Module",
    "ObjectRef",
    "TaskError",
    "WrayError",
    "get",
    "init",
    "kill",
    "load",
    "put",
    "shutdown",
    "wait",
]

DEFAULT_ADDRESS = "http://127.0.0.1:8265"

#: How long one request waits on the node before asking again, in seconds.
_POLL_S = 30.0


class WrayError(Exception):
    """A request the node refused, or a node that does not answer."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class ArgumentError(WrayError, TypeError):
    """A call the module's manifest refused before it ran: wrong arity or
    argument types (a ``TypeError``, as Ray raises for a bad signature)."""


class TaskError(WrayError):
    """A task or actor call that failed: its kind, function and message."""

    def __init__(self, failure: Dict[str, Any], object_id: str) -> None:
        self.kind: str = failure.get("kind", "")
        self.function: str = failure.get("function", "")
        self.guest_message: str = failure.get("message", "")
        self.chain: List[str] = list(failure.get("chain", []))
        self.object_id = object_id
        text = f"{self.kind} in {self.function}: {self.guest_message}"
        for cause in self.chain:
            text += f"\n  caused by: {cause}"
        super().__init__(text, 422)


class _Client:
    """Requests to one node, on a kept-alive connection per thread."""

    def __init__(self, address: str, token: Optional[str]) -> None:
        self.address = address.rstrip("/")
        self.token = token
        url = urllib.parse.urlsplit(self.address)
        if url.scheme != "http" or not url.hostname:
            raise WrayError(f"{address} is not an http:// address")
        self._host, self._port = url.hostname, url.port or 80
        self._local = threading.local()

    def _connection(self) -> "_Connection":
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = _Connection(self._host, self._port, _POLL_S + 30)
            self._local.conn = conn
        return conn

    def _send(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str]) -> Tuple[int, bytes]:
        conn = self._connection()
        try:
            return conn.request(method, path, body, headers)
        except (http.client.HTTPException, OSError):
            conn.close()
            self._local.conn = None
            raise

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        content_type: str = "application/json",
    ) -> Tuple[int, Any]:
        headers = {}
        if body is not None:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            try:
                status, raw = self._send(method, path, body, headers)
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the node closed: once more, fresh.
                status, raw = self._send(method, path, body, headers)
        except (http.client.HTTPException, OSError) as e:
            raise WrayError(
                f"no wray node answers at {self.address} (start one with `wray start`): {e}"
            ) from None
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise WrayError(f"the node sent a body that is not JSON ({status})", status) from None

    def json(self, method: str, path: str, doc: Any) -> Tuple[int, Any]:
        """`method path` with `doc` (any JSON, null included) as the body."""
        return self.request(method, path, json.dumps(doc, allow_nan=False).encode())


class _Connection:
    """A kept-alive HTTP/1.1 connection: one request at a time, read with
    the least parsing a node's answers need (http.client parses headers
    with the email package, which costs more than the node's work)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.host = f"{host}:{port}"
        self.closed = False

    def close(self) -> None:
        self.closed = True
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def request(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str]) -> Tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body or b'')}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        status_line = self.file.readline(65537)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise http.client.BadStatusLine(repr(status_line))
        status = int(parts[1])
        length, chunked, close = None, False, False
        while True:
            line = self.file.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            data = bytearray()
            while True:
                size = int(self.file.readline(65537).split(b";")[0], 16)
                if size == 0:
                    self.file.readline(65537)
                    break
                data += self.file.read(size)
                self.file.readline(65537)
            raw = bytes(data)
        elif length is not None:
            raw = self.file.read(length)
            if len(raw) < length:
                raise http.client.IncompleteRead(raw, length - len(raw))
        else:
            raw = self.file.read()
            close = True
        if close:
            self.close()  # the next request opens a new connection
        return status, raw


_client: Optional[_Client] = None


def init(address: Optional[str] = None, token: Optional[str] = None) -> None:
    """Connects to a node: `address`, else $WRAY_ADDRESS, else the local
    node (http://127.0.0.1:8265). `token`, else $WRAY_TOKEN, for a node that
    requires one (one listening on other than a loopback address)."""
    global _client
    address = address or os.environ.get("WRAY_ADDRESS") or DEFAULT_ADDRESS
    client = _Client(address, token or os.environ.get("WRAY_TOKEN"))
    status, doc = client.request("GET", "/api/v0/status")
    if status != 200:
        raise WrayError(f"{address} is not a wray node that lets this client in ({status}): {doc}", status)
    _client = client


def shutdown() -> None:
    """Forgets the node (objects it holds for this client stay until it ends)."""
    global _client
    _client = None


def _node() -> _Client:
    if _client is None:
        init()
    assert _client is not None
    if len(_released) >= _RELEASE_BATCH:
        _flush_released()
    return _client


#: Most ids in one request (the node takes bodies up to 16 MiB).
_BATCH = 50_000

#: Objects this client let go of, released on the node in batches.
_released: List[str] = []
_RELEASE_BATCH = 1000


def _flush_released() -> None:
    if _client is None or not _released:
        return
    ids = _released[:]
    del _released[: len(ids)]
    try:
        _client.json("POST", "/api/objects/release", {"ids": ids})
    except WrayError:
        pass  # the node is gone: nothing to free


atexit.register(_flush_released)


def _refused(status: int, doc: Any) -> WrayError:
    message = doc.get("error") if isinstance(doc, dict) else None
    text = f"the node answered {status}: {message or doc}"
    if status == 400 and isinstance(message, str) and message.startswith("invalid argument"):
        return ArgumentError(text, status)
    return WrayError(text, status)


# ---- values ----------------------------------------------------------------------------


def _to_json(v: Any) -> Any:
    """A Python value in the JSON form of a wray value."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        if -(2**63) <= v < 2**64:
            return v
        if -(2**64) <= v < -(2**63):
            return {"$int": str(v)}
        raise ValueError(f"{v} is outside wray's integers (-2**64 .. 2**64-1)")
    if isinstance(v, float):
        if math.isnan(v):
            return {"$float": "nan"}
        if math.isinf(v):
            return {"$float": "inf" if v > 0 else "-inf"}
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, ObjectRef):
        return {"$ref": v.id}
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        plain = all(isinstance(k, str) for k in v) and not (
            len(v) == 1 and next(iter(v)).startswith("$")
        )
        if plain:
            return {k: _to_json(x) for k, x in v.items()}
        return {"$map": [[_to_json(k), _to_json(x)] for k, x in v.items()]}
    raise TypeError(f"a {type(v).__name__} is not a wray value")


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def _from_json(j: Any) -> Any:
    """The Python value of a wray value's JSON form."""
    if isinstance(j, list):
        return [_from_json(x) for x in j]
    if isinstance(j, dict):
        if len(j) == 1:
            (k, x), = j.items()
            if k == "$float":
                return float(x)
            if k == "$int":
                return int(x)
            if k == "$bytes":
                return base64.b64decode(x)
            if k == "$ref":
                return ObjectRef(x, owned=False)
            if k == "$map":
                return {_hashable(_from_json(a)): _from_json(b) for a, b in x}
        return {k: _from_json(x) for k, x in j.items()}
    return j


# ---- objects -------------------------------------------------------------------------


class ObjectRef:
    """A reference to an object on the node. The node holds an object it
    gave this client until the reference is collected."""

    def __init__(self, object_id: str, owned: bool = True) -> None:
        self.id = object_id
        self._owned = owned

    def __repr__(self) -> str:
        return f"ObjectRef({self.id[:16]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __del__(self) -> None:
        # No request from a finalizer: queued, released with the next call.
        if self._owned:
            _released.append(self.id)


def _ref(status: int, doc: Any) -> ObjectRef:
    if status != 200 or not isinstance(doc, dict) or "object_id" not in doc:
        raise _refused(status, doc)
    return ObjectRef(doc["object_id"])


def put(value: Any) -> ObjectRef:
    """Stores a value on the node; the same value from any language is the
    same object."""
    return _ref(*_node().json("POST", "/api/objects", _to_json(value)))


def _values(refs: Sequence[ObjectRef], deadline: Optional[float]) -> List[Any]:
    """The values of `refs`, asked for together (`POST /api/objects/values`)
    until none is pending or the deadline passes."""
    out: Dict[int, Any] = {}
    todo = list(range(len(refs)))
    while todo:
        left = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
        answers: List[Dict[str, Any]] = []
        for start in range(0, len(todo), _BATCH):
            chunk = todo[start : start + _BATCH]
            body = {"ids": [refs[i].id for i in chunk], "timeout": left}
            status, doc = _node().json("POST", "/api/objects/values", body)
            if status != 200:
                raise _refused(status, doc)
            answers += doc["objects"]
            left = 0.0  # the first request waited: the rest only read
        still = []
        for i, v in zip(todo, answers):
            if v["pending"]:
                still.append(i)
            elif v["failure"] is not None:
                if v["failure"]["kind"] == "unknown object":
                    raise WrayError(f"the node has no object {v['object_id']}", 404)
                raise TaskError(v["failure"], v["object_id"])
            else:
                out[i] = _from_json(v["result"])
        todo = still
        if todo and deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{len(todo)} of {len(refs)} objects were not ready in time")
    return [out[i] for i in range(len(refs))]


def get(refs: Union[ObjectRef, Sequence[ObjectRef]], timeout: Optional[float] = None) -> Any:
    """The value of `refs` (one ObjectRef, or a list of them: a list of
    values), waiting at most `timeout` seconds (None: as long as it takes).
    Raises TaskError when the call that makes it failed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if isinstance(refs, ObjectRef):
        return _values([refs], deadline)[0]
    return _values(list(refs), deadline)


def wait(
    refs: Sequence[ObjectRef],
    num_returns: int = 1,
    timeout: Optional[float] = None,
) -> Tuple[List[ObjectRef], List[ObjectRef]]:
    """Waits until `num_returns` of `refs` are ready (or failed), or until
    `timeout` seconds pass: (ready, not ready), each in the order of
    `refs`, with at most `num_returns` ready."""
    if num_returns > len(refs):
        raise ValueError(f"num_returns ({num_returns}) exceeds the number of references ({len(refs)})")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
        body = {"ids": [r.id for r in refs], "num_returns": num_returns, "timeout": left}
        status, doc = _node().json("POST", "/api/objects/wait", body)
        if status != 200:
            raise _refused(status, doc)
        ready = set(doc["ready"])
        if len(ready) >= num_returns or (deadline is not None and time.monotonic() >= deadline):
            break
    done = [r for r in refs if r.id in ready][:num_returns]
    return done, [r for r in refs if r not in done]


# ---- modules, tasks, actors ------------------------------------------------------------


class RemoteFunction:
    """A remote function of a module: `f.remote(*args)` runs it as a task."""

    def __init__(self, module: "Module", name: str) -> None:
        self._module = module
        self._name = name

    def remote(self, *args: Any) -> ObjectRef:
        call = {"module": self._module.digest, "function": self._name, "args": [_to_json(a) for a in args]}
        return _ref(*_node().json("POST", "/api/tasks", call))


class ActorMethod:
    """A method of an actor: `m.remote(*args)` calls it."""

    def __init__(self, actor: "ActorHandle", name: str) -> None:
        self._actor = actor
        self._name = name

    def remote(self, *args: Any) -> ObjectRef:
        path = f"/api/actors/{self._actor.id}/methods/{urllib.parse.quote(self._name, safe='')}"
        return _ref(*_node().json("POST", path, {"args": [_to_json(a) for a in args]}))


class ActorHandle:
    """An actor on the node: its methods are attributes, `h.incr.remote()`."""

    def __init__(self, actor_id: str, class_name: str) -> None:
        self.id = actor_id
        self.class_name = class_name

    def __getattr__(self, name: str) -> ActorMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return ActorMethod(self, name)

    def __repr__(self) -> str:
        return f"ActorHandle({self.class_name}, {self.id})"


class ActorClass:
    """An actor type of a module: `C.remote(*args)` creates an actor."""

    def __init__(self, module: "Module", name: str) -> None:
        self._module = module
        self._name = name

    def options(self, name: Optional[str] = None) -> "_NamedActorClass":
        return _NamedActorClass(self, name)

    def remote(self, *args: Any) -> ActorHandle:
        return self._create(args, None)

    def _create(self, args: Sequence[Any], name: Optional[str]) -> ActorHandle:
        body = {
            "module": self._module.digest,
            "class": self._name,
            "args": [_to_json(a) for a in args],
            "name": name,
        }
        status, doc = _node().json("POST", "/api/actors", body)
        if status != 200:
            raise _refused(status, doc)
        return ActorHandle(doc["actor_id"], self._name)


class _NamedActorClass:
    def __init__(self, cls: ActorClass, name: Optional[str]) -> None:
        self._cls = cls
        self._name = name

    def remote(self, *args: Any) -> ActorHandle:
        return self._cls._create(args, self._name)


class Module:
    """A module on the node. Its functions and actor types are attributes:
    a name with a capital first letter is an actor type (`m.Counter`),
    any other a function (`m.add`); `function()` and `actor_class()` name
    either explicitly."""

    def __init__(self, digest: str, name: str) -> None:
        self.digest = digest
        self.name = name

    def function(self, name: str) -> RemoteFunction:
        return RemoteFunction(self, name)

    def actor_class(self, name: str) -> ActorClass:
        return ActorClass(self, name)

    def __getattr__(self, name: str) -> Union[RemoteFunction, ActorClass]:
        if name.startswith("_"):
            raise AttributeError(name)
        return ActorClass(self, name) if name[:1].isupper() else RemoteFunction(self, name)

    def __repr__(self) -> str:
        return f"Module({self.name}, {self.digest[:16]})"


def load(path: Union[str, os.PathLike]) -> Module:
    """Uploads a module (a .wasm file) to the node; the node keeps it by
    digest, so loading it again costs one upload and no compilation."""
    with open(path, "rb") as f:
        wasm = f.read()
    status, doc = _node().request("POST", "/api/modules", wasm, "application/wasm")
    if status != 200:
        raise _refused(status, doc)
    return Module(doc["digest"], doc["name"])


def kill(actor: ActorHandle, no_restart: bool = True) -> None:
    """Kills an actor: its running call is interrupted; it restarts only
    with `no_restart=False` and restarts left."""
    flag = "true" if no_restart else "false"
    status, doc = _node().request("POST", f"/api/v0/actors/{actor.id}/kill?no_restart={flag}")
    if status != 200:
        raise _refused(status, doc)
