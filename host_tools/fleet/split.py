"""Split learning on Flower (`octo collab --engine flower`): the cloud half runs in a Flower ServerApp and every
COLLAB_* exchange with a board travels as a Flower message to that board's ClientApp (docs/FLEET.md).

The boards are the ones `octo collab` opens (native trainers or private QEMU boards, each on a socket); their
training state lives on the board, so the ClientApps stay stateless: each message opens the board's link, runs
its requests and closes it. The ServerApp runs the very same split-learning loop as `octo collab`
(host_tools/collab/run.py) with `RemoteSession`s in place of the direct sessions, so one seed and one setting give
the same numbers on both engines (a test checks it). Per training step and board, two messages:

- ``train.collab_forward``: TRAIN_LOAD of the batch, COLLAB_FORWARD, COLLAB_READ of the payload (and of the exact
  features when measured) -> the encoded features, the forward result and the link bytes;
- ``train.collab_backward``: COLLAB_WRITE of the encoded gradients, COLLAB_BACKWARD -> the backward result.

Evaluation batches travel as ``evaluate.collab_forward``; ``query.collab_hello`` (which board a node drives, its
firmware) happens once, and TRAIN_INIT travels with a board's first forward (its ``init.*`` config entries).
Messages to different boards travel concurrently. The same handlers and the same server loop serve
deployment mode (`octo fleet run --mode split`, host_tools/fleet/deploy_apps.py), where a SuperNode's node config
names its board (`node_link`). Imports flwr: load only when a run uses Flower."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from host_tools.errors import OctoError
from host_tools.services.collab import BackwardResult, CodecSpec, CollabSession, ForwardResult, WireCount

REPLY_TIMEOUT_S = 600.0  # one message's reply (a board step; the first one compiles nothing, but QEMU is slow)
REPLY_POLL_S = 0.05      # how often the ServerApp asks for a reply (Flower's send_and_receive waits 3 s)
NODES_WAIT_S = 120.0     # all SuperNodes connected


@dataclass(frozen=True)
class BoardLink:
    """How a ClientApp reaches its board: the socket URL `octo collab` opened it on, and what it is."""

    url: str
    board: str
    virtual: bool


# TRAIN_INIT's arguments (CollabSession.init), in order, as they travel in a message's config ("init.NAME")
INIT_FIELDS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("seed", int), ("init_random", bool), ("lac", bool), ("prc", bool), ("lr", float), ("momentum", float),
    ("weight_decay", float), ("input_scale", float), ("prc_k", float), ("lac_l2", float))


# -- the ClientApp: one board's link per message -----------------------------------------------------------------
@contextmanager
def _session(link: BoardLink) -> Any:
    from host_tools.board.target import Target  # noqa: PLC0415

    t = Target(link.board, lambda: link.url, lambda: None, link.virtual, timeout_s=60.0).open()
    try:
        yield CollabSession(t.client)
    finally:
        t.close_client()


def _spec(c: Any) -> CodecSpec:
    gb = int(c["gradient_bits"])
    return CodecSpec(str(c["codec"]), int(c["bits"]), int(c["groups"]), (int(c["stripe_h"]), int(c["stripe_w"])),
                     str(c["gradient_rounding"]), gb if gb > 0 else None, bool(c["clip"]), bool(c["entropy"]))


def _spec_config(spec: CodecSpec) -> dict[str, Any]:
    return {"codec": spec.name, "bits": spec.bits, "groups": spec.groups, "stripe_h": spec.stripe[0],
            "stripe_w": spec.stripe[1], "gradient_rounding": spec.gradient_rounding,
            "gradient_bits": spec.gradient_bits or 0, "clip": spec.clip, "entropy": spec.entropy}


def node_link(context: Context) -> BoardLink:
    """The board of a deployment SuperNode, from its node config (`board`, `port`: a socket URL or serial port)."""
    nc = context.node_config
    board, port = str(nc.get("board", "")), str(nc.get("port", ""))
    if not port:
        raise OctoError("this SuperNode's node config names no board port (port=...)")
    return BoardLink(port, board, board != "host" and board_is_virtual(board))


def board_is_virtual(board: str) -> bool:
    from host_tools.board.boards import get_board  # noqa: PLC0415

    return bool(get_board(board).virtual)


def handle(msg: Message, link: BoardLink, pid: int) -> Message:
    """One COLLAB exchange on board pid's link; the reply carries what the ServerApp's session returns."""
    kind = msg.metadata.message_type.split(".", 1)[1]
    c = msg.content["config"]
    out: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    with _session(link) as sess:
        if "init.seed" in c:  # a TRAIN_INIT sent along with this message (RemoteSession.init): not counted as traffic
            sess.init(*(t(c[f"init.{k}"]) for k, t in INIT_FIELDS))
            sess.wire = WireCount()
        if kind == "collab_hello":
            hello = sess.client.hello()
            info = sess.info()
            out = {"partition": pid, "messages": [int(m) for m in hello.messages], "board": str(hello.board),
                   "fingerprint": int(info.fingerprint), "config_crc": int(info.config_crc), "batch": int(info.batch),
                   "timer_hz": int(hello.timer_hz), "cpu_hz": int(hello.cpu_hz)}
        elif kind == "collab_forward":
            a = msg.content["arrays"]
            shape = tuple(int(v) for v in c["split_shape"])
            n = int(c["n"])
            sess.load(0, a["y"].numpy(), a["x"].numpy())
            fr = sess.forward(int(c["step"]), n, bool(c["train"]), _spec(c), shape)
            out = {"payload": sess.read_payload(fr.payload_len), "payload_len": fr.payload_len, "scale": fr.scale,
                   "forward_ticks": fr.forward_ticks, "encode_ticks": fr.encode_ticks}
            if bool(c["measure"]):
                arrays["q"] = sess.read_features(n, shape)
        elif kind == "collab_backward":
            sess.write_payload(bytes(c["payload"]))
            br = sess.backward(int(c["step"]), int(c["length"]), float(c["lr"]))
            out = {"step_after": br.step_after, "dy_scale": br.dy_scale, "decode_ticks": br.decode_ticks,
                   "backward_ticks": br.backward_ticks}
        else:
            raise ValueError(f"unknown split-learning message {msg.metadata.message_type}")
        counters = sess.client.counters
        out.update(wire_up=sess.wire.up, wire_down=sess.wire.down, link_sent=int(counters.bytes_sent),
                   link_received=int(counters.bytes_received))
    content = {"config": ConfigRecord(out)}
    if arrays:
        content["arrays"] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    return Message(RecordDict(content), reply_to=msg)


def register_handlers(app: ClientApp, link_of: Callable[[Context], BoardLink]) -> ClientApp:
    """The split-learning message handlers on app; link_of gives the board of the node a message reached."""

    def run(msg: Message, context: Context) -> Message:
        return handle(msg, link_of(context), int(context.node_config["partition-id"]))

    for category, actions in (("train", ("collab_forward", "collab_backward")),
                              ("evaluate", ("collab_forward",)), ("query", ("collab_hello",))):
        register = getattr(app, category)
        for action in actions:
            register(action)(run)
    return app


def make_client_app(links: Sequence[BoardLink]) -> ClientApp:
    """The simulation's ClientApp: node partition-id I drives links[I]."""
    links = list(links)
    return register_handlers(ClientApp(), lambda context: links[int(context.node_config["partition-id"])])


def exchange(grid: Grid, lock: threading.Lock, msg: Message, timeout_s: float) -> Message | None:
    """msg sent and its reply awaited (None after timeout_s). The grid is used under lock, but not while waiting,
    so the boards' messages travel concurrently."""
    with lock:
        ids = list(grid.push_messages([msg]))
    deadline = time.monotonic() + timeout_s
    while True:
        with lock:
            replies = list(grid.pull_messages(ids))
        if replies:
            return replies[0]
        if time.monotonic() > deadline:
            return None
        time.sleep(REPLY_POLL_S)


# -- the ServerApp side: CollabSession's calls as messages ----------------------------------------------------
@dataclass
class _Counters:
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass
class RemoteSession:
    """The CollabSession calls of host_tools/collab/run.py, carried out by the ClientApp of one node. A load is
    kept until the forward that follows it, a payload write until its backward: two messages per step."""

    grid: Grid
    node: int
    lock: threading.Lock
    hello_reply: dict[str, Any] = field(default_factory=dict)
    wire: WireCount = field(default_factory=WireCount)
    _load: tuple[np.ndarray, np.ndarray] | None = None
    _payload: bytes = b""
    _q: np.ndarray | None = None
    _grad: bytes = b""
    measure: bool = True
    timeout_s: float = REPLY_TIMEOUT_S
    _init: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counters = _Counters()
        self.client = SimpleNamespace(hello=self._hello, counters=self.counters)

    def _ask(self, mtype: str, config: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> Message:
        if self._init:  # TRAIN_INIT travels with the board's first exchange (one message less per board)
            config = {**config, **self._init}
            self._init = {}
        content = {"config": ConfigRecord(config)}
        if arrays:
            content["arrays"] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
        msg = Message(RecordDict(content), dst_node_id=self.node, message_type=mtype)
        r = exchange(self.grid, self.lock, msg, self.timeout_s)
        if r is None:
            raise OctoError(f"node {self.node} did not answer {mtype} within {self.timeout_s:.0f} s")
        if r.has_error():
            raise OctoError(f"node {self.node} failed {mtype}: {r.error.reason}")
        c = r.content["config"]
        self.counters.bytes_sent = int(c.get("link_sent", 0)) + self.counters.bytes_sent
        self.counters.bytes_received = int(c.get("link_received", 0)) + self.counters.bytes_received
        self.wire.up += int(c.get("wire_up", 0))
        self.wire.down += int(c.get("wire_down", 0))
        return r

    def _hello(self) -> Any:
        c = self.hello_reply
        return SimpleNamespace(messages=list(c["messages"]), board=c["board"])

    def info(self) -> Any:
        c = self.hello_reply
        return SimpleNamespace(fingerprint=c["fingerprint"], config_crc=c["config_crc"], batch=c["batch"])

    def init(self, seed: int, init_random: bool, lac: bool, prc: bool, lr: float, momentum: float,
             weight_decay: float, input_scale: float, prc_k: float, lac_l2: float) -> None:
        """Kept until the board's next exchange, which carries it: the ClientApp runs TRAIN_INIT first."""
        args = (seed, init_random, lac, prc, lr, momentum, weight_decay, input_scale, prc_k, lac_l2)
        self._init = {f"init.{k}": t(v) for (k, t), v in zip(INIT_FIELDS, args, strict=True)}

    def load(self, first: int, labels: np.ndarray, samples: np.ndarray) -> None:
        if first != 0:
            raise ValueError("split learning stages a batch from sample 0")
        self._load = (np.asarray(labels, np.int64), np.asarray(samples, np.int8))

    def forward(self, step: int, n: int, train: bool, spec: CodecSpec, split_shape: Sequence[int]) -> ForwardResult:
        if self._load is None:
            raise ValueError("forward without a loaded batch")
        y, x = self._load
        self._load = None
        r = self._ask("train.collab_forward" if train else "evaluate.collab_forward",
                      {"step": int(step), "n": int(n), "train": bool(train), "measure": bool(train and self.measure),
                       "split_shape": [int(v) for v in split_shape], **_spec_config(spec)}, {"y": y, "x": x})
        c = r.content["config"]
        self._payload = bytes(c["payload"])
        self._q = r.content["arrays"]["q"].numpy() if "arrays" in r.content else None
        return ForwardResult(int(c["payload_len"]), float(c["scale"]), int(c["forward_ticks"]),
                             int(c["encode_ticks"]))

    def read_payload(self, length: int) -> bytes:
        if length != len(self._payload):
            raise ValueError(f"payload of {len(self._payload)} bytes, asked for {length}")
        return self._payload

    def read_features(self, n: int, split_shape: Sequence[int]) -> np.ndarray:
        if self._q is None:
            raise ValueError("the forward did not read the features (measure off)")
        return self._q

    def write_payload(self, payload: bytes) -> None:
        self._grad = bytes(payload)

    def backward(self, step: int, length: int, lr: float) -> BackwardResult:
        r = self._ask("train.collab_backward", {"payload": self._grad, "step": int(step), "length": int(length),
                                                "lr": float(lr)})
        c = r.content["config"]
        return BackwardResult(int(c["step_after"]), float(c["dy_scale"]), int(c["decode_ticks"]),
                              int(c["backward_ticks"]))


def connect_nodes(grid: Grid, count: int, wait_s: float = NODES_WAIT_S,
                  timeout_s: float = REPLY_TIMEOUT_S) -> list[tuple[int, dict[str, Any]]]:
    """(node id, hello reply) per board index: asks every node which board it drives."""
    deadline = time.monotonic() + wait_s
    while len(list(grid.get_node_ids())) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    nodes = list(grid.get_node_ids())
    if len(nodes) < count:
        raise OctoError(f"{len(nodes)} of {count} Flower nodes connected within {wait_s:.0f} s")
    msgs = [Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=n, message_type="query.collab_hello")
            for n in nodes]
    replies = list(grid.send_and_receive(msgs, timeout=timeout_s))
    found: dict[int, tuple[int, dict[str, Any]]] = {}
    for r in replies:
        if r.has_error():
            raise OctoError(f"node {r.metadata.src_node_id} cannot reach its board: {r.error.reason}")
        c = dict(r.content["config"])
        found[int(c["partition"])] = (int(r.metadata.src_node_id), c)
    missing = [i for i in range(count) if i not in found]
    if missing:
        raise OctoError(f"no Flower node answered for board(s) {missing}")
    return [found[i] for i in range(count)]


def serve(grid: Grid, count: int, run: Callable[[Sequence[RemoteSession]], dict[str, Any]], measure: bool,
          timeout_s: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
    """The ServerApp's body, on either engine: waits for count nodes, learns which board each drives, and calls
    run(sessions) — the split-learning loop of `octo collab` — with a RemoteSession per board index."""
    lock = threading.Lock()
    sessions = []
    for node, hello in connect_nodes(grid, count, timeout_s=timeout_s):
        s = RemoteSession(grid, node, lock, hello)
        s.measure = measure
        s.timeout_s = timeout_s
        sessions.append(s)
    return run(sessions)


def run_collab_on_flower(targets: Sequence[Any], run: Callable[[Sequence[Any]], dict[str, Any]],
                         measure: bool, ray_cpus: int = 2) -> dict[str, Any]:
    """Split learning on Flower's simulation engine: one ClientApp per opened target (its link is closed here and
    reopened by the ClientApp for each message), and a ServerApp that calls run(sessions) — the split-learning
    loop of `octo collab` — with a RemoteSession per board. Returns run's result."""
    from flwr.simulation import run_simulation  # noqa: PLC0415

    links = []
    for t in targets:
        if not t.url.startswith("socket://"):
            raise OctoError(f"{t.board_name}: --engine flower reaches boards over sockets (native trainers and "
                            "virtual boards), not serial ports", hint="use --engine direct for real boards")
        links.append(BoardLink(t.url, t.board_name, bool(t.virtual)))
        t.close_client()
    out: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            out["result"] = serve(grid, len(links), run, measure)
        except BaseException as exc:  # Flower logs and swallows it: kept for the caller
            out["error"] = exc
            raise

    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": ray_cpus, "num_gpus": 0, "include_dashboard": False,
                             "logging_level": logging.ERROR, "log_to_driver": False}}
    env_before = os.environ.get("RAY_DEDUP_LOGS")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        run_simulation(server_app=server, client_app=make_client_app(links), num_supernodes=len(links),
                       backend_name="ray", backend_config=backend)
    finally:
        if env_before is None:
            os.environ.pop("RAY_DEDUP_LOGS", None)
    if "error" in out:
        raise out["error"]
    if "result" not in out:
        raise OctoError("split learning on Flower ended without a result (see the log above)")
    return out["result"]
