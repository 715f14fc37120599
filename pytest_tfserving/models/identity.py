"""A model's identity: a hash of what it computes, not of how its files happen to be written.

Why: the same seeded model exported twice gives other bytes each time. Measured with TF 2.21 /
Keras 3.15: Keras collects the variables a SavedModel exports in a set, so the checkpoint, the
graph's variable nodes and the restore function's arguments come in another order in each process;
``fingerprint.pb`` holds a random uuid; TF function names carry per-process counters and Keras layer
names per-process numbers (``conv2d_3`` when other models were built first), which also reach the
tensor names of a converted ``.tflite``. Baselines keyed by bytes restarted their run history every
session and the variant cache missed. The identity hashes instead, without TensorFlow:

- a SavedModel as TF Serving loads it (each meta graph: its signatures, restore op and init ops):
  every signature's inputs and outputs (alias, dtype, shape) and the dataflow graph behind them,
  node and function names left out. A node is its op, device, attributes and inputs (a Merkle
  hash); a function call is the called body with the caller's inputs in place of its arguments; a
  variable is what the restore and init ops assign it (the checkpoint value of the key the restore
  op reads, not the key, whose numbering is the set's order). Nodes nothing serves are left out.
- a TFLite flatbuffer: operators (code, version, options, inputs), tensors (type, shape,
  quantization, constant data), subgraph inputs and outputs, signature maps and metadata (the
  ``signature_defs_metadata`` TF Serving reads by alias, dtype, shape and the tensor each name
  resolves to); tensor names and the order of tensors and buffers left out.
- every other file (assets, warm-up requests, a user's own files) by its relative path and bytes.

A SavedModel or ``.tflite`` this reader cannot follow (another format, a corrupt file, recursion,
sparse or external tensors) is hashed by its bytes instead, tagged so the kinds never collide.
"""

from __future__ import annotations

import hashlib
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDENTITY_SCHEME = b"pytest-tfserving model identity 1"
"""Bump when the canonical form changes: every identity changes with it. Not bumped when
``signature_defs_metadata`` came to be read by tensor: only a ``.tflite`` carrying that entry hashes
differently, and the variants we build gained the entry (so a new identity) in the same change."""

SAVED_MODEL_FILE = "saved_model.pb"
TFLITE_SUFFIX = ".tflite"
_CHUNK = 1 << 20


class _Unsupported(ValueError):
    """The file is not in a form this reader follows; its bytes stand for it instead."""


# -- the public functions -------------------------------------------------------------------------
def model_identity(path: Path | str) -> str:
    """``sha256:<16 hex>`` of what the model at ``path`` computes (see the module docstring).

    ``path``: a SavedModel directory, a TF Serving base path (``<base>/<version>/...``), a
    ``.tflite`` file, or any directory or file (hashed by bytes where no model is recognised).
    """
    return "sha256:" + identity_digest(path)[:16]


def identity_digest(path: Path | str) -> str:
    """The full sha256 hex digest behind ``model_identity``."""
    root = Path(path)
    entries = list(_tree_entries(root))
    if not entries:
        raise FileNotFoundError(f"no model files under {root}")
    return _digest(IDENTITY_SCHEME, entries).hex()


def identity_kinds(path: Path | str) -> dict[str, str]:
    """Relative path -> how it entered the identity ("savedmodel", "tflite", "bytes"): tells why
    two copies of a model differ (a unit read as bytes follows its serialization)."""
    return {rel or ".": kind for rel, kind, _ in _tree_entries(Path(path))}


# -- canonical hashing ----------------------------------------------------------------------------
def _digest(*parts: Any) -> bytes:
    """sha256 of ``repr(parts)``: parts are nested tuples and lists of bytes, str, int, bool and
    None, whose repr is unambiguous (quoted, escaped, bracketed) and computed in C."""
    return hashlib.sha256(repr(parts).encode()).digest()


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


# -- the directory walk ---------------------------------------------------------------------------
def _tree_entries(root: Path) -> Iterator[tuple[str, str, bytes]]:
    """(relative path, kind, digest) for each unit under ``root``, in path order."""
    if root.is_file():
        yield ("", *_file_identity(root))
        return
    if not root.is_dir():
        return
    if (root / SAVED_MODEL_FILE).is_file():
        yield from _savedmodel_entries(root)
        return
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        rel = child.name
        if child.is_dir() and not child.is_symlink():  # as rglob: a linked directory is not walked
            for sub, kind, digest in _tree_entries(child):
                yield (f"{rel}/{sub}" if sub else rel, kind, digest)
        elif child.is_file():
            yield (rel, *_file_identity(child))


def _file_identity(path: Path) -> tuple[str, bytes]:
    if path.name.endswith(TFLITE_SUFFIX):
        data = path.read_bytes()
        try:
            return "tflite", _tflite_digest(data)
        except _READ_ERRORS:
            return "bytes", hashlib.sha256(data).digest()
    return "bytes", _file_digest(path)


def _savedmodel_entries(directory: Path) -> Iterator[tuple[str, str, bytes]]:
    """The SavedModel as one semantic entry plus its other files by bytes; all bytes if unreadable."""
    files = sorted((p.relative_to(directory).as_posix(), p) for p in directory.rglob("*") if p.is_file())
    try:
        digest = _savedmodel_digest(directory)
    except _READ_ERRORS:
        for name, path in files:
            yield (name, "bytes", _file_digest(path))
        return
    yield ("", "savedmodel", digest)
    for name, path in files:
        if name in (SAVED_MODEL_FILE, "fingerprint.pb") or name.startswith("variables/variables."):
            continue  # read above (fingerprint.pb: a random uuid and hashes of the bytes)
        yield (name, *_file_identity(path))


# -- protobuf wire format -------------------------------------------------------------------------
class _Malformed(ValueError):
    pass


_READ_ERRORS = (ValueError, IndexError, KeyError, struct.error, UnicodeDecodeError, RecursionError)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise _Malformed("varint too long")


def _fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) of one message in order: ints for varints, bytes otherwise. The
    one-byte cases are inlined: a ResNet50 graph has a quarter of a million fields."""
    out: list[tuple[int, Any]] = []
    pos, end = 0, len(buf)
    while pos < end:
        key = buf[pos]
        pos += 1
        if key >= 0x80:
            key, pos = _varint(buf, pos - 1)
        wire = key & 7
        value: Any
        if wire == 2:
            size = buf[pos]
            pos += 1
            if size >= 0x80:
                size, pos = _varint(buf, pos - 1)
            value = buf[pos : pos + size]
            pos += size
        elif wire == 0:
            value = buf[pos]
            pos += 1
            if value >= 0x80:
                value, pos = _varint(buf, pos - 1)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _Malformed(f"wire type {wire}")
        if pos > end or key < 8:
            raise _Malformed("truncated message")
        out.append((key >> 3, value))
    return out


def _message(buf: bytes) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for number, value in _fields(buf):
        if number in out:
            out[number].append(value)
        else:
            out[number] = [value]
    return out


def _bytes(msg: Mapping[int, list[Any]], number: int) -> bytes:
    values = msg.get(number)
    value = values[-1] if values else b""
    if not isinstance(value, bytes):
        raise _Malformed(f"field {number} is not length-delimited")
    return value


def _text(msg: Mapping[int, list[Any]], number: int) -> str:
    return _bytes(msg, number).decode()


def _int(msg: Mapping[int, list[Any]], number: int, default: int = 0) -> int:
    values = msg.get(number)
    value = values[-1] if values else default
    if not isinstance(value, int):
        raise _Malformed(f"field {number} is not a varint")
    return value


def _map(msg: Mapping[int, list[Any]], number: int) -> dict[Any, Any]:
    """A proto map field: key (field 1) -> value (field 2: raw bytes, or an int for scalars)."""
    out: dict[Any, Any] = {}
    for entry in msg.get(number, ()):
        parsed = _message(entry)
        keys = parsed.get(1, [b""])
        key = keys[-1].decode() if isinstance(keys[-1], bytes) else keys[-1]
        values = parsed.get(2, [b""])
        out[key] = values[-1]
    return out


# -- TF checkpoints (tensor bundles) --------------------------------------------------------------
_TABLE_MAGIC = 0xDB4775248B80FB57


def _table_entries(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Key/value pairs of a TF table file (LevelDB's SSTable layout, uncompressed blocks)."""
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise _Malformed("not a TF table file")
    pos = len(data) - 48
    _, pos = _varint(data, pos)  # metaindex handle: unused
    _, pos = _varint(data, pos)
    index_offset, pos = _varint(data, pos)
    index_size, pos = _varint(data, pos)
    for _, handle in _block_entries(data, index_offset, index_size):
        offset, at = _varint(handle, 0)
        size, _ = _varint(handle, at)
        yield from _block_entries(data, offset, size)


def _block_entries(data: bytes, offset: int, size: int) -> Iterator[tuple[bytes, bytes]]:
    if offset + size + 5 > len(data):
        raise _Malformed("block beyond the end of the file")
    if data[offset + size] != 0:
        raise _Unsupported("compressed checkpoint index")
    block = data[offset : offset + size]
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (restarts + 1)
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + length]
        pos += length


class _Checkpoint:
    """The variables of ``<savedmodel>/variables/variables.*``: key -> digest of dtype, shape, value."""

    def __init__(self, prefix: Path) -> None:
        self._prefix = prefix
        self._entries: dict[str, dict[int, list[Any]]] = {}
        self._digests: dict[str, bytes] = {}
        self._shards = 1
        index = prefix.with_name(prefix.name + ".index")
        if index.is_file():
            for key, value in _table_entries(index.read_bytes()):
                if key == b"":
                    self._shards = _int(_message(value), 1, 1)
                else:
                    self._entries[key.decode()] = _message(value)

    def value(self, key: str) -> bytes:
        if key not in self._digests:
            entry = self._entries.get(key)
            if entry is None:
                self._digests[key] = _digest("missing checkpoint key", key)
            else:
                shard = self._prefix.with_name(
                    f"{self._prefix.name}.data-{_int(entry, 3):05d}-of-{self._shards:05d}"
                )
                with open(shard, "rb") as handle:
                    handle.seek(_int(entry, 4))
                    raw = handle.read(_int(entry, 5))
                if len(raw) != _int(entry, 5):
                    raise _Malformed(f"checkpoint value {key!r} is truncated")
                slices = [bytes(s) for s in entry.get(7, ())]
                self._digests[key] = _digest(
                    "tensor", _int(entry, 1), _bytes(entry, 2), slices, hashlib.sha256(raw).digest()
                )
        return self._digests[key]


# -- the graph ------------------------------------------------------------------------------------
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_IDENTITY_OPS = frozenset({"Identity", "IdentityN"})
_LABEL_ATTRS = frozenset({"shared_name", "_class", "debug_name", "_user_specified_name"})
"""Attributes that only name things: a resource's shared name is its node name, ``_class`` lists
colocated node names. Dropping them leaves what the node computes."""
_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")
_INIT_SIGNATURE = "__saved_model_init_op"
_DT_STRING = 7


@dataclass(frozen=True)
class _Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    device: str
    attrs: tuple[tuple[str, bytes], ...]

    def attr(self, name: str) -> bytes | None:
        for key, raw in self.attrs:
            if key == name:
                return raw
        return None


def _node(raw: bytes) -> _Node:
    msg = _message(raw)
    attrs = tuple(sorted(_map(msg, 5).items()))
    inputs = tuple(v.decode() for v in msg.get(3, ()))
    return _Node(_text(msg, 1), _text(msg, 2), inputs, _text(msg, 4), attrs)


@dataclass
class _Function:
    name: str
    inputs: list[tuple[str, bytes]]  # arg name, ArgDef without name and description
    outputs: list[str]
    header: bytes  # digest of what the signature and function attributes say, names left out
    nodes: dict[str, _Node]
    ret: dict[str, str]
    control_ret: dict[str, str]
    flat: bool  # every argument is one tensor (no list arguments): calls can be inlined


def _arg(raw: bytes) -> tuple[str, bytes, bool]:
    """An ArgDef: its name, the rest (type, handle data...) as sortable bytes, and whether it is
    one tensor (no number_attr or type_list_attr)."""
    msg = _message(raw)
    single = not msg.get(5) and not msg.get(6)
    return _text(msg, 1), _without(raw, (1, 2)), single


def _without(raw: bytes, dropped: Iterable[int]) -> bytes:
    """A message's fields but ``dropped``, in order, as comparable bytes."""
    return repr([(n, v) for n, v in _fields(raw) if n not in dropped]).encode()


def _function(raw: bytes) -> _Function:
    msg = _message(raw)
    signature = _message(_bytes(msg, 1))
    inputs, outputs, flat = [], [], True
    for arg in signature.get(2, ()):
        name, kept, single = _arg(arg)
        inputs.append((name, kept))
        flat &= single
    out_types = []
    for arg in signature.get(3, ()):
        name, kept, single = _arg(arg)
        outputs.append(name)
        out_types.append(kept)
        flat &= single
    arg_attrs = sorted(
        (int(index), _label_free_attrs(_map(_message(value), 1)))
        for index, value in _map(msg, 7).items()
    )
    header = _digest(
        "function",
        # A set: which argument comes where is the caller's business (Keras passes the restore
        # function its variables in set order); an inlined body sees the caller's values instead.
        sorted(kept for _, kept in inputs),
        out_types,
        [bytes(a) for a in signature.get(4, ())],  # attr defs of a generic function
        _int(signature, 17),  # is_stateful
        _label_free_attrs(_map(msg, 5)),
        arg_attrs,
        sorted(_map(msg, 8).items()),  # resource_arg_unique_id: which arguments alias
    )
    nodes = {n.name: n for n in (_node(r) for r in msg.get(3, ()))}
    ret = {k: v.decode() for k, v in _map(msg, 4).items()}
    control_ret = {k: v.decode() for k, v in _map(msg, 6).items()}
    return _Function(_text(signature, 1), inputs, outputs, header, nodes, ret, control_ret, flat)


def _label_free_attrs(attrs: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    return sorted((k, v) for k, v in attrs.items() if k not in _LABEL_ATTRS)


@dataclass(frozen=True)
class _Value:
    """A tensor as the hash sees it: its digest, the resource node it is a handle of (top-level
    name), and the strings of a constant string tensor (checkpoint keys for RestoreV2)."""

    digest: bytes
    resource: str | None = None
    strings: tuple[bytes, ...] | None = None


@dataclass
class _Result:
    digest: bytes
    output: Callable[[Any], _Value]


@dataclass
class _Graph:
    nodes: dict[str, _Node]
    functions: dict[str, _Function]
    checkpoint: _Checkpoint
    feeds: dict[str, tuple[Any, ...]]  # "node:k" -> what feeds it (signature input, asset, filename)


class _Scope:
    """Where names resolve: the top-level graph, or one function body with its argument values."""

    def __init__(
        self, nodes: Mapping[str, _Node], args: Mapping[str, _Value] | None, feeds: Mapping[str, Any]
    ) -> None:
        self.nodes = nodes
        self.args = args
        self.feeds = feeds
        self.done: dict[str, _Result] = {}
        self.active: set[str] = set()  # on the path being evaluated: an edge to one is a cycle

    def split(self, ref: str) -> tuple[str, Any] | None:
        """(node, output key) for a data input; None for a function argument."""
        if self.args is not None:
            if ref in self.args:
                return None
            parts = ref.split(":")
            if len(parts) == 1:
                return parts[0], ("output", 0)
            return parts[0], (parts[1], int(parts[2]) if len(parts) > 2 else 0)
        name, _, index = ref.partition(":")
        return name, int(index) if index else 0

    def dependencies(self, node: _Node) -> list[str]:
        deps = []
        for ref in node.inputs:
            if ref.startswith("^"):
                deps.append(ref[1:])
            else:
                where = self.split(ref)
                if where is not None:
                    deps.append(where[0])
        return deps


class _Evaluator:
    """Merkle digests of a meta graph's nodes. A resource (variable, table) has no inputs, so its
    content is what the restore and init ops give it: ``labels`` (resource node -> digest of
    that) is None in the first pass, which collects it in ``effects``."""

    def __init__(self, graph: _Graph, labels: Mapping[str, bytes] | None) -> None:
        self.graph = graph
        self.labels = labels or {}
        self.effects: dict[str, list[bytes]] | None = defaultdict(list) if labels is None else None
        self.top = _Scope(graph.nodes, None, graph.feeds)
        self._bodies: dict[Any, tuple[bytes, list[_Value]]] = {}
        self._abstract: dict[str, bytes] = {}
        self._calling: list[str] = []

    # values ------------------------------------------------------------------------------------
    def value(self, scope: _Scope, ref: str) -> _Value:
        where = scope.split(ref)
        if where is None:
            assert scope.args is not None
            return scope.args[ref]
        name, key = where
        result = self._result(scope, name)
        value = result.output(key) if result is not None else _Value(_digest("cycle", scope.nodes[name].op))
        fed = scope.feeds.get(f"{name}:{key}") if scope.args is None else None
        return value if fed is None else _Value(_digest("fed", fed, value.digest), value.resource)

    def node_digest(self, scope: _Scope, name: str) -> bytes:
        result = self._result(scope, name)
        return result.digest if result is not None else _digest("cycle", scope.nodes[name].op)

    def _result(self, scope: _Scope, name: str) -> _Result | None:
        """The node's result, None when it is on the path being evaluated (a back edge)."""
        if name not in scope.nodes:
            raise _Malformed(f"input {name!r} names no node")
        if name not in scope.done and name not in scope.active:
            self.evaluate(scope, [name])
        return scope.done.get(name)

    def evaluate(self, scope: _Scope, names: Iterable[str]) -> None:
        """Digest ``names`` and what they depend on, depth first without recursion (graphs run
        thousands of nodes deep); an edge back into the path (a TF1 while loop) reads as a cycle."""
        for root in names:
            if root in scope.done or root in scope.active:
                continue
            scope.active.add(root)
            stack = [(root, iter(scope.dependencies(scope.nodes[root])))]
            while stack:
                name, deps = stack[-1]
                for dep in deps:
                    if dep in scope.done or dep in scope.active:
                        continue
                    if dep not in scope.nodes:
                        raise _Malformed(f"{name!r} depends on {dep!r}, which is no node")
                    scope.active.add(dep)
                    stack.append((dep, iter(scope.dependencies(scope.nodes[dep]))))
                    break
                else:
                    stack.pop()
                    scope.done[name] = self._compute(scope, scope.nodes[name])
                    scope.active.discard(name)

    # one node ----------------------------------------------------------------------------------
    def _compute(self, scope: _Scope, node: _Node) -> _Result:
        values = [self.value(scope, ref) for ref in node.inputs if not ref.startswith("^")]
        control = sorted(self.node_digest(scope, ref[1:]) for ref in node.inputs if ref.startswith("^"))
        callee = self._callee(node)
        if callee is not None:
            return self._call(node, callee, values, control)
        if node.op == "RestoreV2" and len(values) == 3 and values[1].strings is not None:
            return self._restore(node, values, control)
        attrs = self._attrs(node.attrs)
        if node.attr("shared_name") is not None and not values:  # a variable, a table: by content
            resource = node.name if scope.args is None else None
            given = self.labels.get(node.name) if resource else None
            digest = _digest("resource", node.op, node.device, attrs, control, given)
            return _Result(digest, lambda key: _Value(_digest("out", digest, key), resource))
        digest = _digest("node", node.op, node.device, attrs, [v.digest for v in values], control)
        self._record_effects(node.op, attrs, values, control)
        if node.op in _IDENTITY_OPS:
            return _Result(digest, lambda key: self._passthrough(digest, key, values))
        strings = _const_strings(node) if node.op == "Const" else None
        return _Result(digest, lambda key: _Value(_digest("out", digest, key), None, strings))

    @staticmethod
    def _passthrough(digest: bytes, key: Any, values: Sequence[_Value]) -> _Value:
        index = key[1] if isinstance(key, tuple) else key
        source = values[index] if 0 <= index < len(values) else _Value(b"")
        return _Value(_digest("out", digest, key), source.resource, source.strings)

    def _record_effects(self, op: str, attrs: Any, values: Sequence[_Value], control: list[bytes]) -> None:
        """First pass: what each resource is given (an AssignVariableOp's value, a table's init)."""
        if self.effects is None:
            return
        digests = [v.digest for v in values]
        for index, value in enumerate(values):
            if value.resource is not None:
                others = [*digests[:index], b"SELF", *digests[index + 1 :]]
                self.effects[value.resource].append(_digest("effect", op, attrs, index, others, control))

    def _restore(self, node: _Node, values: list[_Value], control: list[bytes]) -> _Result:
        """RestoreV2 reads checkpoint keys; its outputs are the values behind the keys, so the key
        numbering (Keras's set order) does not enter the identity."""
        keys = values[1].strings or ()
        slices = values[2].strings or (b"",) * len(keys)
        outputs = [
            _digest("restored", self.graph.checkpoint.value(key.decode()), part)
            for key, part in zip(keys, (*slices, *(b"",) * len(keys)), strict=False)
        ]
        digest = _digest("RestoreV2", values[0].digest, sorted(outputs), control)

        def output(key: Any) -> _Value:
            index = key[1] if isinstance(key, tuple) else key
            if not 0 <= index < len(outputs):
                raise _Malformed(f"RestoreV2 has no output {key!r}")
            return _Value(outputs[index])

        return _Result(digest, output)

    # function calls ----------------------------------------------------------------------------
    def _callee(self, node: _Node) -> str | None:
        if node.op in self.graph.functions:
            return node.op
        if node.op in _CALL_OPS:
            raw = node.attr("f")
            if raw is None:
                raise _Malformed(f"{node.op} without f")
            name = _text(_message(_bytes(_message(raw), 10)), 1)
            if name not in self.graph.functions:
                raise _Malformed(f"call of unknown function {name!r}")
            return name
        return None

    def _call(self, node: _Node, callee: str, values: list[_Value], control: list[bytes]) -> _Result:
        function = self.graph.functions[callee]
        attrs = self._attrs(tuple((k, v) for k, v in node.attrs if k != "f"))
        if function.flat and len(values) == len(function.inputs):
            body, _ = self._body(callee, values)
        else:  # list arguments: hash the function once, apart from this call's inputs
            body = _digest("abstract call", self._abstract_digest(callee), [v.digest for v in values])
        digest = _digest("call", node.device, attrs, body, control)

        def output(key: Any) -> _Value:
            if isinstance(key, tuple):
                arg, index = key
                position = index if arg == "output" else function.outputs.index(arg) + index
            else:
                position = key
            return _Value(_digest("ret", digest, position))

        return _Result(digest, output)

    def _body(self, name: str, args: list[_Value]) -> tuple[bytes, list[_Value]]:
        """The body of ``name`` evaluated with ``args`` in place of its arguments: digest of its
        returns, control returns and side effects (nodes nothing in the body consumes)."""
        key = (name, tuple((a.digest, a.resource, a.strings) for a in args))
        if key in self._bodies:
            return self._bodies[key]
        if name in self._calling:
            raise _Unsupported(f"function {name!r} calls itself")
        function = self.graph.functions[name]
        names = [n for n, _ in function.inputs]
        if len(names) != len(args):
            raise _Malformed(f"function {name!r} takes {len(names)} arguments, called with {len(args)}")
        scope = _Scope(function.nodes, dict(zip(names, args, strict=True)), {})
        self._calling.append(name)
        try:
            consumed = {dep for node in function.nodes.values() for dep in scope.dependencies(node)}
            consumed |= {where[0] for r in function.ret.values() if (where := scope.split(r))}
            consumed |= set(function.control_ret.values())
            sinks = sorted(n for n in function.nodes if n not in consumed)
            self.evaluate(scope, sorted(function.nodes))
            returns = [self.value(scope, function.ret[out]) for out in function.outputs]
            control = sorted(self.node_digest(scope, n) for n in function.control_ret.values())
            digest = _digest(
                "body",
                function.header,
                [r.digest for r in returns],
                control,
                sorted(scope.done[n].digest for n in sinks),
            )
        finally:
            self._calling.pop()
        self._bodies[key] = (digest, returns)
        return digest, returns

    def _abstract_digest(self, name: str) -> bytes:
        """A function apart from any call: its arguments stand in by position and type (for
        functions named in attributes: while bodies, branches, gradients)."""
        if name not in self._abstract:
            function = self.graph.functions[name]
            args = [_Value(_digest("arg", i, kept)) for i, (_, kept) in enumerate(function.inputs)]
            self._abstract[name] = self._body(name, args)[0]
        return self._abstract[name]

    # attributes --------------------------------------------------------------------------------
    def _attrs(self, attrs: Iterable[tuple[str, bytes]]) -> list[tuple[str, Any]]:
        return [(k, self._attr_value(v)) for k, v in attrs if k not in _LABEL_ATTRS]

    def _attr_value(self, raw: bytes) -> Any:
        """An AttrValue with each function it names replaced by that function's digest."""
        msg = _message(raw)
        if 10 in msg:
            return ("func", self._func_ref(_bytes(msg, 10)))
        if 1 in msg:
            listed = _message(_bytes(msg, 1))
            if 9 in listed:
                return ("list", _without(_bytes(msg, 1), (9,)), [self._func_ref(f) for f in listed[9]])
        # A large constant (a frozen graph's weights) enters by its hash, not as a repr of its bytes.
        return raw if len(raw) <= 256 else hashlib.sha256(raw).digest()

    def _func_ref(self, raw: bytes) -> Any:
        msg = _message(raw)
        name = _text(msg, 1)
        target = self._abstract_digest(name) if name in self.graph.functions else name
        return (target, [(k, self._attr_value(v)) for k, v in sorted(_map(msg, 2).items())])


def _const_strings(node: _Node) -> tuple[bytes, ...] | None:
    raw = node.attr("value")
    if raw is None:
        return None
    tensor = _message(_bytes(_message(raw), 8))
    if _int(tensor, 1) != _DT_STRING:
        return None
    return tuple(bytes(s) for s in tensor.get(8, ()))


# -- SavedModel -----------------------------------------------------------------------------------
def _savedmodel_digest(directory: Path) -> bytes:
    saved = _message((directory / SAVED_MODEL_FILE).read_bytes())
    metas = saved.get(2, [])
    if not metas:
        raise _Malformed("no meta graph")
    checkpoint = _Checkpoint(directory / "variables" / "variables")
    graphs = sorted(_metagraph_digest(_message(m), checkpoint) for m in metas)
    return _digest("savedmodel", _int(saved, 1), graphs)


def _tensor_refs(info: Mapping[int, list[Any]]) -> list[str]:
    """Every graph tensor a TensorInfo names (dense, sparse COO parts, composite components)."""
    refs = [_text(info, 1)] if info.get(1) else []
    if info.get(4):
        coo = _message(_bytes(info, 4))
        refs += [_text(coo, n) for n in (1, 2, 3) if coo.get(n)]
    if info.get(5):
        for component in _message(_bytes(info, 5)).get(2, ()):
            refs += _tensor_refs(_message(component))
    return refs


def _normal(ref: str) -> str:
    return ref if ":" in ref else f"{ref}:0"


def _metagraph_digest(meta: Mapping[int, list[Any]], checkpoint: _Checkpoint) -> bytes:
    """What TF Serving's loader runs: restore, init ops, then any signature."""
    graph_def = _message(_bytes(meta, 2))
    library = _message(_bytes(graph_def, 2)) if graph_def.get(2) else {}
    functions = {f.name: f for f in (_function(raw) for raw in library.get(1, ()))}
    nodes = {n.name: n for n in (_node(raw) for raw in graph_def.get(1, ()))}
    signatures = {k: _message(v) for k, v in _map(meta, 5).items()}
    saver = _message(_bytes(meta, 3)) if meta.get(3) else {}
    graph = _Graph(nodes, functions, checkpoint, _feeds(meta, signatures, saver))
    restore = [_text(saver, 3).partition(":")[0]] if saver.get(3) else []
    init = _init_ops(meta, signatures)
    for name in restore + init:
        if name not in nodes:
            raise _Malformed(f"restore or init op {name!r} is not in the graph")

    first = _Evaluator(graph, labels=None)
    first.evaluate(first.top, restore + init)
    assert first.effects is not None
    final = _Evaluator(graph, {name: _digest(sorted(given)) for name, given in first.effects.items()})
    info = _message(_bytes(meta, 1)) if meta.get(1) else {}
    return _digest(
        "metagraph",
        sorted(t.decode() for t in info.get(4, ())),  # tags
        _bytes(graph_def, 4),  # versions: which op semantics the graph was written for
        [_signature(final, key, signature) for key, signature in sorted(signatures.items())],
        [final.node_digest(final.top, n) for n in restore],
        sorted(final.node_digest(final.top, n) for n in init),
    )


def _feeds(
    meta: Mapping[int, list[Any]],
    signatures: Mapping[str, Mapping[int, list[Any]]],
    saver: Mapping[int, list[Any]],
) -> dict[str, tuple[Any, ...]]:
    """Tensor -> what the loader or a request feeds it: a signature input (by key and alias, so
    two inputs of one dtype and shape stay apart), an asset's path, the checkpoint prefix."""
    feeds: dict[str, list[Any]] = defaultdict(list)
    for key, signature in signatures.items():
        for alias, raw in _map(signature, 1).items():
            for ref in _tensor_refs(_message(raw)):
                feeds[_normal(ref)].append(("input", key, alias))
    for raw in meta.get(6, ()):  # asset_file_def
        asset = _message(raw)
        for ref in _tensor_refs(_message(_bytes(asset, 1))):
            feeds[_normal(ref)].append(("asset", _text(asset, 2)))
    if saver.get(1):
        feeds[_normal(_text(saver, 1))].append(("checkpoint prefix",))
    return {k: tuple(sorted(v)) for k, v in feeds.items()}


def _init_ops(meta: Mapping[int, list[Any]], signatures: Mapping[str, Mapping[int, list[Any]]]) -> list[str]:
    """The ops the loader runs after restoring: the init signature (TF2) or collections (TF1)."""
    collections = _map(meta, 4)
    init = [
        name.decode().lstrip("^").partition(":")[0]
        for key in _INIT_COLLECTIONS
        if key in collections
        for name in _message(_bytes(_message(collections[key]), 1)).get(1, ())
    ]
    if _INIT_SIGNATURE in signatures:
        for raw in _map(signatures[_INIT_SIGNATURE], 2).values():
            init += [_normal(r).partition(":")[0] for r in _tensor_refs(_message(raw))]
    return init


def _signature(evaluator: _Evaluator, key: str, signature: Mapping[int, list[Any]]) -> bytes:
    """A SignatureDef: method, inputs and outputs by alias (dtype, shape, the graph behind them)."""
    return _digest(
        "signature",
        key,
        _text(signature, 3),  # method_name
        [(alias, _tensor_info(evaluator, raw)) for alias, raw in sorted(_map(signature, 1).items())],
        [(alias, _tensor_info(evaluator, raw)) for alias, raw in sorted(_map(signature, 2).items())],
        sorted(_map(signature, 4).items()),  # defaults
    )


def _tensor_info(evaluator: _Evaluator, raw: bytes) -> bytes:
    info = _message(raw)
    refs = [evaluator.value(evaluator.top, _normal(ref)).digest for ref in _tensor_refs(info)]
    composite = _message(_bytes(info, 5)) if info.get(5) else {}
    return _digest("tensor info", _int(info, 2), _bytes(info, 3), refs, _bytes(composite, 1))


# -- TFLite flatbuffers ---------------------------------------------------------------------------
class _Flat:
    """Just enough of the flatbuffers layout to read a TFLite model without its schema package."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def u32(self, pos: int) -> int:
        return int(struct.unpack_from("<I", self.data, pos)[0])

    def field(self, table: int, slot: int) -> int:
        """Position of ``slot``'s value in ``table``, 0 when absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        size = struct.unpack_from("<H", self.data, vtable)[0]
        at = 4 + 2 * slot
        offset = struct.unpack_from("<H", self.data, vtable + at)[0] if at < size else 0
        return table + offset if offset else 0

    def scalar(self, table: int, slot: int, fmt: str, default: int | float = 0) -> Any:
        pos = self.field(table, slot)
        return struct.unpack_from("<" + fmt, self.data, pos)[0] if pos else default

    def target(self, table: int, slot: int) -> int:
        pos = self.field(table, slot)
        return pos + self.u32(pos) if pos else 0

    def vector(self, table: int, slot: int, size: int) -> bytes:
        """A vector of scalars as its raw bytes (``size`` bytes per element)."""
        start = self.target(table, slot)
        if not start:
            return b""
        count = self.u32(start)
        end = start + 4 + count * size
        if end > len(self.data):
            raise _Malformed("vector beyond the end of the buffer")
        return self.data[start + 4 : end]

    def ints(self, table: int, slot: int) -> list[int]:
        raw = self.vector(table, slot, 4)
        return list(struct.unpack(f"<{len(raw) // 4}i", raw))

    def string(self, table: int, slot: int) -> bytes:
        return self.vector(table, slot, 1)

    def tables(self, table: int, slot: int) -> list[int]:
        start = self.target(table, slot)
        if not start:
            return []
        return [start + 4 + 4 * i + self.u32(start + 4 + 4 * i) for i in range(self.u32(start))]

    def table(self, table: int, slot: int) -> int:
        return self.target(table, slot)

    def fields(self, table: int, vectors: Mapping[int, int]) -> list[tuple[int, bytes]]:
        """Every present field of a table of scalars as raw bytes; ``vectors`` (slot -> element
        size, 0 for a string) names the fields that point elsewhere, read as their contents."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        size, inline = struct.unpack_from("<HH", self.data, vtable)
        present = sorted(
            (offset, slot)
            for slot in range((size - 4) // 2)
            if (offset := struct.unpack_from("<H", self.data, vtable + 4 + 2 * slot)[0])
        )
        out = []
        for i, (offset, slot) in enumerate(present):
            if slot in vectors:
                out.append((slot, self.vector(table, slot, vectors[slot] or 1)))
            else:
                end = present[i + 1][0] if i + 1 < len(present) else inline
                out.append((slot, self.data[table + offset : table + end]))
        return sorted(out)


# Option tables whose fields point to vectors or strings, read from ai_edge_litert 2.3's
# schema_py_generated.py (the schema only appends fields): union (1 = BuiltinOptions,
# 2 = BuiltinOptions2) and type -> {slot: element size, 0 for a string}. Every other option table
# holds scalars only, hashed as their bytes.
_OPTION_VECTORS: dict[tuple[int, int], dict[int, int]] = {
    (1, 3): {1: 4, 2: 4},  # ConcatEmbeddingsOptions
    (1, 8): {5: 1},  # FullyConnectedOptions.quant_spec
    (1, 17): {0: 4},  # ReshapeOptions.new_shape
    (1, 30): {0: 4},  # SqueezeOptions.squeeze_dims
    (1, 111): {0: 0, 1: 0},  # VarHandleOptions
    (1, 115): {0: 4},  # BucketizeOptions.boundaries
    (2, 2): {0: 8},  # StablehloBroadcastInDimOptions
    (2, 3): {0: 8, 1: 8, 2: 8},  # StablehloSliceOptions
    (2, 4): {0: 8, 1: 8, 2: 8, 3: 8, 4: 1, 7: 8, 10: 8, 13: 8, 16: 4},  # StablehloConvolutionOptions
    (2, 5): {0: 0, 2: 0, 4: 4, 5: 1},  # StablehloCustomCallOptions
    (2, 6): {0: 8},  # StablehloReduceOptions
    (2, 7): {1: 8, 2: 8, 3: 8},  # StablehloScatterOptions
    (2, 9): {0: 8},  # StablehloDynamicSliceOptions
    (2, 10): {0: 8, 1: 8, 2: 8},  # StablehloPadOptions
    (2, 12): {0: 8, 1: 8, 2: 8, 3: 8, 4: 4},  # StablehloDotGeneralOptions
    (2, 13): {0: 8, 1: 8, 2: 8, 3: 8, 4: 8},  # StablehloReduceWindowOptions
    (2, 16): {0: 8, 1: 8, 2: 8, 4: 8},  # StablehloGatherOptions
    (2, 17): {0: 8},  # StablehloTransposeOptions
    (2, 21): {0: 0, 2: 1},  # StableHLOCompositeOptions
    (2, 23): {0: 4},  # StablehloCaseOptions
}


def _tflite_digest(data: bytes) -> bytes:
    flat = _Flat(data)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise _Unsupported("not a TFLite flatbuffer")
    model = flat.u32(0)
    if flat.tables(model, 8) or flat.tables(model, 9):
        raise _Unsupported("external buffers")
    contents = [_tflite_buffer(flat, b) for b in flat.tables(model, 4)]
    buffers = [hashlib.sha256(c).digest() for c in contents]
    subgraphs = [_tflite_subgraph(flat, sg, buffers) for sg in flat.tables(model, 2)]
    signatures = []
    for sig in flat.tables(model, 7):
        index = flat.scalar(sig, 4, "I")
        tensors = subgraphs[index][1]
        maps = [
            sorted((flat.string(m, 0), tensors[flat.scalar(m, 1, "I")]) for m in flat.tables(sig, slot))
            for slot in (0, 1)
        ]
        signatures.append((flat.string(sig, 2), index, maps))
    metadata = []
    for entry in flat.tables(model, 6):
        name, content = flat.string(entry, 0), contents[flat.scalar(entry, 1, "I")]
        if name == b"CONVERSION_METADATA":
            metadata.append((name, _conversion_metadata(content)))
        elif name == _SIGNATURE_DEFS_METADATA and subgraphs:
            names = [flat.string(t, 3) for t in flat.tables(flat.tables(model, 2)[0], 0)]
            metadata.append((name, _signature_defs_metadata(content, names, subgraphs[0][1])))
        else:
            metadata.append((name, hashlib.sha256(content).digest()))
    metadata.sort()
    return _digest(
        "tflite",
        flat.scalar(model, 0, "I"),
        flat.string(model, 3),
        [digest for digest, _ in subgraphs],
        sorted(signatures),
        metadata,
    )


_SIGNATURE_DEFS_METADATA = b"signature_defs_metadata"


def _signature_defs_metadata(content: bytes, names: list[bytes], tensors: list[bytes]) -> bytes:
    """The SignatureDefs TF Serving reads from a TFLite model (a flexbuffer map of serialized
    SignatureDef protos), each TensorInfo by the tensor its name resolves to as TF Serving resolves
    it (the name, else the name without ``:0``), not by the name. A map this reader cannot follow
    is hashed by its bytes."""
    from flatbuffers import flexbuffers

    index = {name: i for i, name in enumerate(names)}

    def tensor(raw: bytes) -> bytes:
        info = _message(raw)
        name = _bytes(info, 1)
        at = index.get(name, index.get(name.split(b":", 1)[0]))
        ref = tensors[at] if at is not None else _digest("unknown tensor", name)
        return _digest("tensor info", _int(info, 2), _bytes(info, 3), ref)

    try:
        table = flexbuffers.GetRoot(content).AsMap
        signatures = []
        for key, value in zip(table.Keys, table.Values, strict=True):
            signature = _message(value.AsStringBytes)
            inputs = [(alias, tensor(raw)) for alias, raw in sorted(_map(signature, 1).items())]
            outputs = [(alias, tensor(raw)) for alias, raw in sorted(_map(signature, 2).items())]
            signatures.append((key.AsKey, _text(signature, 3), inputs, outputs))
    except Exception:  # any flexbuffer or proto error: the bytes stand for it
        return _digest("signature defs bytes", hashlib.sha256(content).digest())
    return _digest("signature defs", sorted(signatures))


def _tflite_buffer(flat: _Flat, buffer: int) -> bytes:
    offset = flat.scalar(buffer, 1, "Q")
    if offset > 1:  # stored after the flatbuffer (models over 2 GB)
        size = flat.scalar(buffer, 2, "Q")
        if offset + size > len(flat.data):
            raise _Malformed("buffer beyond the end of the file")
        return flat.data[offset : offset + size]
    return flat.vector(buffer, 0, 1)


def _conversion_metadata(raw: bytes) -> bytes:
    """The converter's metadata without ``Environment.model_hash``, a hash of the source model's
    serialization (names included): TF version, API version, model type and options stay."""
    flat = _Flat(raw)
    root = flat.u32(0)
    environment, options = flat.table(root, 0), flat.table(root, 1)
    return _digest(
        "conversion metadata",
        [f for f in flat.fields(environment, {0: 0}) if f[0] != 3] if environment else [],
        [f for f in flat.fields(options, {0: 4}) if f[0] != 4] if options else [],
        [flat.fields(t, {0: 4}) for t in flat.tables(options, 4)] if options else [],
    )


_EMPTY = hashlib.sha256(b"").digest()


def _tflite_subgraph(flat: _Flat, subgraph: int, buffers: list[bytes]) -> tuple[bytes, list[bytes]]:
    """(digest, digest of each tensor by index): tensors by what produces them, not by name."""
    model = flat.u32(0)
    codes = [
        (
            max(flat.scalar(c, 0, "b"), flat.scalar(c, 3, "i")),
            flat.string(c, 1),
            flat.scalar(c, 2, "i", 1),
        )
        for c in flat.tables(model, 1)
    ]
    tensors = flat.tables(subgraph, 0)
    inputs = flat.ints(subgraph, 1)
    props = [_tflite_tensor(flat, t) for t in tensors]
    digests: list[bytes] = []
    for index, tensor in enumerate(tensors):
        data = buffers[flat.scalar(tensor, 2, "I")]
        if index in inputs:
            digests.append(_digest("input", inputs.index(index), props[index]))
        elif data != _EMPTY:
            digests.append(_digest("constant", props[index], data))
        else:
            digests.append(_digest("tensor", props[index]))  # until an operator produces it
    operators = []
    for op in flat.tables(subgraph, 3):
        code = codes[flat.scalar(op, 0, "I")]
        options = []
        for type_slot, table_slot, union in ((3, 4, 1), (11, 12, 2)):
            kind = flat.scalar(op, type_slot, "B")
            table = flat.table(op, table_slot) if kind else 0
            vectors = _OPTION_VECTORS.get((union, kind), {})
            options.append((kind, flat.fields(table, vectors) if table else []))
        large = flat.scalar(op, 9, "Q")
        custom = flat.vector(op, 5, 1)
        if large:
            custom = flat.data[large : large + flat.scalar(op, 10, "Q")]
        digest = _digest(
            "operator",
            code,
            options,
            [digests[i] if i >= 0 else b"-" for i in flat.ints(op, 1)],
            custom,
            flat.scalar(op, 6, "B"),
            flat.vector(op, 7, 1),
            [props[i] for i in flat.ints(op, 8)],
        )
        operators.append(digest)
        for position, out in enumerate(flat.ints(op, 2)):
            digests[out] = _digest("output", digest, position, props[out])
    outputs = [digests[i] for i in flat.ints(subgraph, 2)]
    return _digest("subgraph", [props[i] for i in inputs], outputs, sorted(operators)), digests


def _tflite_tensor(flat: _Flat, tensor: int) -> bytes:
    if flat.table(tensor, 6):
        raise _Unsupported("sparse tensors")
    quantization = flat.table(tensor, 4)
    quant: list[Any] = []
    if quantization:
        details = flat.table(quantization, 5)
        quant = [
            flat.vector(quantization, 0, 4),
            flat.vector(quantization, 1, 4),
            flat.vector(quantization, 2, 4),
            flat.vector(quantization, 3, 8),
            flat.scalar(quantization, 4, "B"),
            flat.vector(details, 0, 1) if details else b"",
            flat.scalar(quantization, 6, "i"),
        ]
    variants = [flat.fields(v, {0: 4}) for v in flat.tables(tensor, 9)]
    return _digest(
        "tensor props",
        flat.ints(tensor, 0),
        flat.scalar(tensor, 1, "b"),
        quant,
        flat.scalar(tensor, 5, "B"),
        flat.ints(tensor, 7),
        flat.scalar(tensor, 8, "B"),
        variants,
    )


__all__ = ["identity_digest", "identity_kinds", "model_identity"]
