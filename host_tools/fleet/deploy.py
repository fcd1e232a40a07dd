"""Deployment mode (docs/FLEET.md): `octo fleet run` starts a local Flower deployment with Flower's own processes —
`flower-superlink` (TLS with a CA and server certificate made for the run, SuperNode authentication with keys
registered through `flwr supernode register`) and one `flower-supernode` per board — and submits the ServerApp with
`flwr run`. Each SuperNode's ClientApp (host_tools/fleet/deploy_apps.py) drives one board over its serial link:
a private QEMU board, the native trainer (`--board host`) or, with `octo fleet supernode`, a real board on a port.

`--mode split` (`run_split_fleet`) runs split learning on the same deployment: the ServerApp runs `octo collab`'s
loop with the cloud half, the SuperNodes' ClientApps run the COLLAB_* exchanges (host_tools/fleet/split.py).

Everything lives in one folder per run under the state dir (certificates, keys, FLWR_HOME, logs, results); every
process started here is stopped on the way out (normal end, error or Ctrl-C). Ports are chosen free at run time.
A board whose link died (a killed QEMU) is started again, the way the run started it, when its ClientApp asks for it
on a later round (`revive-` / `revived-` markers in the run's folder: deploy_apps.open_board).
flwr is not imported here: Flower runs in its own processes."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from host_tools.errors import OctoError
from host_tools.fleet.sim import SimOptions

FLOWER_START_TIMEOUT_S = 40.0   # the SuperLink's HTTP API listening
REGISTER_TIMEOUT_S = 60.0       # one `flwr supernode register`
STOP_TIMEOUT_S = 10.0           # SIGTERM -> SIGKILL
FAULT_WAIT_S = 60.0             # a faulted board's ClientApp waits this long at most for its fault to fire
REVIVE_WAIT_S = 60.0            # a ClientApp waits this long at most for its dead board to be started again
SUPEREXEC_POLL_S = "0.1"        # Flower's SuperExec looks for new app processes to start this often (its default: 1 s)
APP_NAME = "octofleet"
CONNECTION = "octo"             # the SuperLink connection's name in the run's FLWR_HOME/config.toml

APP_PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "1.0.0"
description = "Octo fleet: INT8 on-device training across boards (docs/FLEET.md)"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "octo"

[tool.flwr.app.components]
serverapp = "octo_fleet_app:serverapp"
clientapp = "octo_fleet_app:clientapp"

[tool.flwr.app.config]
octo-run = {run}
"""
APP_MODULE = ('"""Octo fleet (docs/FLEET.md): the apps live in host_tools.fleet.deploy_apps."""\n'
              "import host_tools.fleet.deploy_apps as _apps\n\n"
              "clientapp = _apps.clientapp\nserverapp = _apps.serverapp\n")


def flower_bin(name: str) -> Path:
    """A Flower console script installed next to this Python (the project's virtualenv)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            raise OctoError(f"Flower's `{name}` is not installed (looked next to {sys.executable} and on PATH)",
                            hint="run `make` (installs flwr, pinned in requirements.lock)")
        path = Path(found)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def flower_env(home: Path) -> dict[str, str]:
    """The environment of Flower's processes: this run's FLWR_HOME, Flower's scripts on PATH (SuperLink and
    SuperNode start `flower-superexec` by name), this checkout importable (the apps import host_tools)."""
    from host_tools.paths import repo_root  # noqa: PLC0415

    env = dict(os.environ)
    env["FLWR_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    pp = [str(repo_root())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(pp))
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", SUPEREXEC_POLL_S)  # a ClientApp per message starts sooner
    return env


# --- certificates and keys (the `cryptography` package: a dependency of flwr itself) -----------------------------

@dataclass(frozen=True)
class Tls:
    ca: Path      # the run's CA certificate (SuperNodes' --root-certificates)
    cert: Path    # the SuperLink's certificate, signed by the CA, for localhost / 127.0.0.1 / ::1
    key: Path


def make_tls(folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> Tls:
    """A self-signed CA and a server certificate for hosts, valid for 30 days, into folder (keys 0600)."""
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Octo fleet run CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP384R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_secret(tls.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return tls


def make_node_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A SuperNode's authentication key pair (EC P-384, OpenSSH format as Flower reads it): (private, public)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    priv, pub = folder / name, folder / f"{name}.pub"
    _write_secret(priv, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH) + b"\n")
    return priv, pub


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


# --- command lines --------------------------------------------------------------------------------------------

def node_config_arg(cfg: dict[str, Any]) -> str:
    """Flower's --node-config: space-separated key=value, values in TOML (strings quoted)."""
    parts = []
    for k, v in cfg.items():
        val = json.dumps(v) if isinstance(v, str) else ("true" if v is True else "false" if v is False else str(v))
        parts.append(f"{k}={val}")
    return " ".join(parts)


def supernode_command(superlink: str, *, node_config: dict[str, Any], runtime_port: int,
                      auth_key: Path | None = None, root_cert: Path | None = None, insecure: bool = False,
                      max_wait_s: float | None = None) -> list[str]:
    """The flower-supernode command line of one SuperNode (its ClientApp drives the board in node_config)."""
    if insecure and root_cert is not None:
        raise OctoError("--insecure and --root-cert exclude each other")
    cmd = [str(flower_bin("flower-supernode")), "--superlink", superlink]
    if insecure:
        cmd.append("--insecure")
    elif root_cert is not None:
        cmd += ["--root-certificates", str(root_cert)]
    if auth_key is not None:
        cmd += ["--auth-supernode-private-key", str(auth_key)]
    cmd += ["--node-config", node_config_arg(node_config), "--host", "127.0.0.1", "--port", str(runtime_port)]
    if max_wait_s is not None:
        cmd += ["--max-wait-time", str(max_wait_s)]
    return cmd


# --- processes ------------------------------------------------------------------------------------------------

@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the process group (Flower's children with it), SIGKILL after STOP_TIMEOUT_S."""
        self.terminate()
        self.wait_stopped()

    def terminate(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_stopped(self) -> None:
        """Waits STOP_TIMEOUT_S for the process to end after terminate(), then SIGKILL to its group."""
        if self.popen.poll() is None:
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()


@dataclass
class Deployment:
    """Processes of one local deployment, all stopped by close() (SIGTERM to all, newest first, then waited for)."""

    folder: Path
    insecure: bool = False
    procs: list[Proc] = field(default_factory=list)
    port: int = 0
    tls: Tls | None = None

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.home = self.folder / "flwr"
        self.home.mkdir(exist_ok=True)
        self.env = flower_env(self.home)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.folder / f"{name}.log"
        with log.open("ab") as fh:
            p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env or self.env, cwd=self.folder, start_new_session=True)
        proc = Proc(name, p, log)
        self.procs.append(proc)
        return proc

    def start_superlink(self, auth: bool = True) -> Proc:
        """flower-superlink on a free port (its one HTTP API: Fleet, Control, Runtime), TLS unless insecure."""
        self.port = free_port()
        cmd = [str(flower_bin("flower-superlink")), "--host", "127.0.0.1", "--port", str(self.port),
               "--disable-runtime-dependency-installation"]
        if self.insecure:
            cmd.append("--insecure")
        else:
            self.tls = make_tls(self.folder / "tls")
            cmd += ["--ssl-certfile", str(self.tls.cert), "--ssl-keyfile", str(self.tls.key),
                    "--ssl-ca-certfile", str(self.tls.ca)]
        if auth:
            cmd.append("--enable-supernode-auth")
        self.write_connection(self.address, None if self.tls is None else self.tls.ca)
        proc = self.spawn("superlink", cmd)
        deadline = time.monotonic() + FLOWER_START_TIMEOUT_S
        while not listening("127.0.0.1", self.port):
            if not proc.alive():
                raise OctoError(f"flower-superlink exited at start (code {proc.popen.returncode}):\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise OctoError(f"flower-superlink did not listen on {self.address} within "
                                f"{FLOWER_START_TIMEOUT_S:.0f} s (log: {proc.log})")
            time.sleep(0.1)
        return proc

    def write_connection(self, address: str, root_cert: Path | None) -> None:
        """The SuperLink connection `octo` in this run's FLWR_HOME/config.toml (what `flwr run` etc. talk to)."""
        conn: dict[str, Any] = {"address": address}
        conn.update({"insecure": True} if self.insecure else {"root-certificates": str(root_cert)} if root_cert
                    else {})
        lines = [f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]']
        lines += [f"{k} = {json.dumps(v)}" for k, v in conn.items()]
        (self.home / "config.toml").write_text("\n".join(lines) + "\n")

    def flwr(self, *args: str, timeout_s: float = REGISTER_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(flower_bin("flwr")), *args], env=self.env, cwd=self.folder, capture_output=True,
                              text=True, timeout=timeout_s, check=False)

    def register(self, public_keys: list[Path]) -> None:
        """`flwr supernode register` of each key with the SuperLink (in parallel)."""
        procs = [subprocess.Popen([str(flower_bin("flwr")), "supernode", "register", str(k), CONNECTION,
                                   "--name", k.stem], env=self.env, cwd=self.folder, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for k in public_keys]
        errors = []
        for k, p in zip(public_keys, procs, strict=True):
            out, _ = p.communicate(timeout=REGISTER_TIMEOUT_S)
            if p.returncode != 0:
                errors.append(f"{k.name}: {out.strip()[-500:]}")
        if errors:
            raise OctoError("`flwr supernode register` failed:\n" + "\n".join(errors))

    def start_supernode(self, name: str, node_config: dict[str, Any], auth_key: Path | None) -> Proc:
        cmd = supernode_command(self.address, node_config=node_config, runtime_port=free_port(), auth_key=auth_key,
                                root_cert=None if self.insecure or self.tls is None else self.tls.ca,
                                insecure=self.insecure)
        return self.spawn(name, cmd)

    def close(self) -> None:
        """SIGTERM to every process (newest first), then each waited for: they stop side by side."""
        for p in reversed(self.procs):
            p.terminate()
        for p in reversed(self.procs):
            p.wait_stopped()
        self.procs.clear()


# --- boards ---------------------------------------------------------------------------------------------------

class BoardProc:
    """One board a SuperNode drives: a private QEMU board or a native trainer, at a fixed socket URL (a reset
    restarts it on the same port, so the SuperNode's node config stays valid)."""

    def __init__(self, board: str, index: int, folder: Path, exe: Path) -> None:
        self.board, self.index, self.exe = board, index, exe
        self.log = folder / f"board-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.host: Any = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> str:
        if self.board == "host":
            from host_tools.board.target import HostProcess  # noqa: PLC0415

            if self.host is None:
                self.host = HostProcess(self.exe, self.log)
                self.host.start()
                self.port = self.host.port
            else:  # restart on the same port
                self.host.stop()
                self.host.env = {"OCTO_HOST_PORT": str(self.port)}
                self._start_host_on_port()
            return self.url
        from host_tools.board import qemu  # noqa: PLC0415
        from host_tools.board.boards import get_board  # noqa: PLC0415

        b = get_board(self.board)
        for _ in range(3):
            self.port = self.port or free_port()
            with self.log.open("ab") as fh:
                self.proc = subprocess.Popen(qemu.qemu_command(b, self.exe, self.port), stdout=fh,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            if qemu._wait_listening(self.proc, self.port):
                return self.url
            self.stop()
            self.port = 0
        raise OctoError(f"QEMU did not start {self.board} (log: {self.log})")

    def _start_host_on_port(self) -> None:
        hp = self.host
        with hp.log.open("ab") as err:
            hp.proc = subprocess.Popen([str(hp.exe)], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                       env={**os.environ, "OCTO_HOST_PORT": str(self.port)}, start_new_session=True)
        hp.port = hp._read_port()

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
            return
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def reset(self) -> None:
        """A power cycle: the board stops and boots again on the same port."""
        self.stop()
        self.start()


# --- octo fleet run -------------------------------------------------------------------------------------------

@dataclass
class RunOptions(SimOptions):
    board: str = "virtual-m4"
    insecure: bool = False
    round_timeout_s: float = 600.0
    faults: list[tuple[str, int, int]] = field(default_factory=list)  # (kill|reset, board index, round)
    keep: bool = False                                                 # keep the run's folder
    superlink: str = ""       # an existing SuperLink on this machine (its SuperNodes run `octo fleet supernode`)
    root_cert: str = ""       # ... and the CA certificate of its TLS


def parse_fault(text: str) -> tuple[str, int, int]:
    """`kill:I@R` / `reset:I@R` / `node:I@R`: board I (0-based) killed / reset, or its SuperNode killed, during
    round R."""
    try:
        kind, rest = text.split(":", 1)
        idx, rnd = rest.split("@", 1)
        fault = (kind, int(idx), int(rnd))
    except ValueError:
        raise OctoError(f"--fault {text!r}: expected kill|reset|node:BOARD@ROUND") from None
    if kind not in ("kill", "reset", "node") or fault[1] < 0 or fault[2] < 1:
        raise OctoError(f"--fault {text!r}: expected kill|reset|node:BOARD@ROUND "
                        "(BOARD from 0, ROUND from 1)")
    return fault


def run_folder() -> Path:
    from host_tools.paths import state_dir  # noqa: PLC0415

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return state_dir() / "fleet" / f"run-{stamp}-{os.getpid()}"


def _board_watcher(folder: Path, actions: dict[str, Callable[[int], None]], faults: list[tuple[str, int, int]],
                   say: Callable[[str], None], stop: threading.Event, applied: list[tuple[str, int, int]]) -> None:
    """Faults and revivals of the run's boards.

    Each fault fires once its board's ClientApp has received the round and opened the board (its `started-`
    marker); that ClientApp waits for the `fault-` marker written here before it trains, so the fault always lands
    inside the round, however fast the board trains (deploy_apps._mark_started). A ClientApp that finds its board's
    link dead asks for the board back (`revive-I-R`): the board is started again as the run started it (`revive`
    action) and `revived-I-R` tells the ClientApp (deploy_apps.open_board)."""
    pending = list(faults)
    while not stop.is_set():
        for f in list(pending):
            kind, idx, rnd = f
            if (folder / f"started-{idx}-{rnd}").exists():
                say(f"fault: {kind} board {idx} in round {rnd}")
                pending.remove(f)
                applied.append(f)  # before it acts: the run's health check must know the node is meant to die
                actions[kind](idx)
                (folder / f"fault-{idx}-{rnd}").touch()
        for req in folder.glob("revive-*-*"):
            _, idx_s, rnd_s = req.name.split("-")
            done = folder / f"revived-{idx_s}-{rnd_s}"
            if not done.exists():
                say(f"board {idx_s} is back in round {rnd_s}: its ClientApp found the link dead, started again")
                try:
                    actions["revive"](int(idx_s))
                except OctoError as e:  # the ClientApp times out and its round fails; the run goes on
                    say(f"board {idx_s} did not start again: {e}")
                    continue
                done.touch()
        stop.wait(0.05)


def stop_orphans(record: Path) -> None:
    """SIGTERM to the processes the ServerApp recorded (its evaluator) if they still run the same command."""
    try:
        procs = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    for p in procs:
        try:
            if Path(f"/proc/{p['pid']}/cmdline").read_bytes().decode(errors="replace") == p["cmdline"]:
                os.kill(int(p["pid"]), signal.SIGTERM)
        except (OSError, KeyError, ValueError):
            continue


def _exit_on_sigterm() -> Any:
    """SIGTERM (a job runner stopping octo) unwinds like Ctrl-C, so the deployment's processes are stopped."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def fed_settings(folder: Path, opts: RunOptions, spec: Any, revive: bool = False) -> dict[str, Any]:
    """The run config `octo-run` of a federation (deploy_apps.main)."""
    return {"mode": "fed", "spec": spec.__dict__, "strategy": opts.strategy, "rounds": opts.rounds,
            "fraction": opts.fraction, "eval": str((opts.eval or opts.model_dir / "eval.npz").resolve()),
            "nodes": opts.clients, "out": str(folder), "round_timeout_s": opts.round_timeout_s, "revive": revive}


def write_app(folder: Path, settings: dict[str, Any]) -> Path:
    """The Flower App of this run (pyproject.toml with the run config `octo-run` = settings, a one-line module)."""
    app = folder / "app"
    app.mkdir(exist_ok=True)
    (app / "pyproject.toml").write_text(APP_PYPROJECT.format(name=APP_NAME, run=json.dumps(json.dumps(settings))))
    (app / "octo_fleet_app.py").write_text(APP_MODULE)
    return app


def submit_and_wait(dep: Deployment, app: Path, rounds: int, say: Callable[[str], None],
                    check: Callable[[], None] = lambda: None) -> None:
    """`flwr run APP octo --stream` until the run ends; progress from the ServerApp's progress.json (rounds) and
    say.log (lines it reports)."""
    folder = dep.folder
    run = dep.spawn("flwr-run", [str(flower_bin("flwr")), "run", str(app), CONNECTION, "--stream"])
    last = 0
    said = 0
    while run.alive() and not (folder / "result.json").exists():  # the results are whole once the file exists
        time.sleep(0.5)
        said = _relay(folder / "say.log", said, say)
        try:
            rnd = int(json.loads((folder / "progress.json").read_text())["round"])
        except (OSError, ValueError, KeyError):
            rnd = 0
        if rnd != last:
            say(f"round {rnd}/{rounds} ...")
            last = rnd
        check()
    _relay(folder / "say.log", said, say)
    if not (folder / "result.json").exists():
        raise OctoError(f"the Flower run ended without results (code {run.popen.returncode}):\n{run.tail(25)}",
                        hint=f"logs in {folder}")


def _relay(log: Path, offset: int, say: Callable[[str], None]) -> int:
    """The complete lines of log after offset, said; returns the new offset."""
    try:
        with log.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        say(line)
    return offset + end


def _run_on_superlink(opts: RunOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Submit the run to an existing SuperLink on this machine and wait for --boards of its SuperNodes."""
    from host_tools.fleet.sim import prepare  # noqa: PLC0415

    if opts.faults:
        raise OctoError("--fault needs the boards octo fleet run starts (not with --superlink)")
    t0 = time.monotonic()
    _tb, spec = prepare(opts, opts.board)
    spec = dataclasses.replace(spec, model_dir=str(Path(spec.model_dir).resolve()),
                               train_dir=str(Path(spec.train_dir).resolve()), data=str(Path(spec.data).resolve()))
    folder = run_folder()
    dep = Deployment(folder, insecure=opts.insecure)
    old_term = _exit_on_sigterm()
    try:
        dep.write_connection(opts.superlink, Path(opts.root_cert).resolve() if opts.root_cert else None)
        say(f"fleet run on the SuperLink {opts.superlink}: waiting for {opts.clients} SuperNodes, {opts.rounds} "
            f"rounds, {opts.strategy} ({spec.config_id}); logs in {folder}")
        submit_and_wait(dep, write_app(folder, fed_settings(folder, opts, spec)), opts.rounds, say)
    finally:
        dep.close()
        stop_orphans(folder / "serverapp-children.json")
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return _document(opts, spec, folder, t0, {"boards": opts.clients, "superlink": opts.superlink,
                                              "tls": not opts.insecure, "supernode_auth": None,
                                              "faults": []})


def board_executable(tb_dir: Path, board: str, config_id: str, say: Callable[[str], None]) -> Path:
    """What the run's boards run: the native trainer (`host`) or a virtual board's training firmware, built once."""
    if board == "host":
        from host_tools.board.target import build_host_trainer  # noqa: PLC0415

        return build_host_trainer(tb_dir)
    from host_tools.board.boards import get_board  # noqa: PLC0415
    from host_tools.board.target import build_board_trainer  # noqa: PLC0415

    if not get_board(board).virtual:
        raise OctoError(f"{board} is a real board: run `octo fleet supernode --port ...` next to it")
    say(f"building firmware for {board} with the training build {config_id} ...")
    return build_board_trainer(tb_dir, board)


@dataclass
class LocalDeployment:
    """A running local deployment: the SuperLink and SuperNodes (dep, nodes) and the boards they drive."""

    dep: Deployment
    boards: list[BoardProc]
    nodes: list[Proc]

    def check(self, killed: Callable[[], set[int]] = set) -> None:
        """Raises if a SuperNode exited that was not meant to (killed(): the indices a fault killed)."""
        dead = [n for i, n in enumerate(self.nodes) if not n.alive() and i not in killed()]
        if dead and not (self.dep.folder / "result.json").exists():
            raise OctoError(f"{dead[0].name} exited (code {dead[0].popen.returncode}):\n{dead[0].tail()}")


@contextmanager
def local_deployment(folder: Path, board: str, count: int, exe: Path, insecure: bool,
                     say: Callable[[str], None]) -> Iterator[LocalDeployment]:
    """count boards (private QEMU or native trainers running exe), a SuperLink (TLS + SuperNode authentication
    unless insecure, keys registered) and one SuperNode per board; all stopped on the way out."""
    dep = Deployment(folder, insecure=insecure)
    boards = [BoardProc(board, i, folder, exe) for i in range(count)]
    old_term = _exit_on_sigterm()
    try:
        for b in boards:
            b.start()
        auth = not insecure  # Flower's SuperNode authentication requires TLS
        dep.start_superlink(auth=auth)
        keys: list[Path | None] = [None] * count
        if auth:
            pairs = [make_node_key(folder / "keys", f"supernode-{i}") for i in range(count)]
            dep.register([pub for _priv, pub in pairs])
            keys = [priv for priv, _pub in pairs]
        say(f"SuperLink on {dep.address} " + (f"(TLS, {count} SuperNode keys registered)" if auth else
                                              "(insecure: no TLS, no SuperNode authentication)"))
        nodes = [dep.start_supernode(f"supernode-{i}", {"partition-id": i, "board": board, "port": b.url}, keys[i])
                 for i, b in enumerate(boards)]
        yield LocalDeployment(dep, boards, nodes)
    finally:
        dep.close()
        for b in boards:
            b.stop()
        stop_orphans(folder / "serverapp-children.json")
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _absolute(spec: Any) -> Any:
    """Flower's processes run in the run's folder: a FleetSpec with absolute paths."""
    return dataclasses.replace(spec, model_dir=str(Path(spec.model_dir).resolve()),
                               train_dir=str(Path(spec.train_dir).resolve()), data=str(Path(spec.data).resolve()))


def run_fleet(opts: RunOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the deployment; returns the octo.fleet/1 document."""
    from host_tools.fleet.sim import prepare  # noqa: PLC0415

    if opts.clients < 2:
        raise OctoError("a federation needs at least 2 boards")
    for name in ("flower-superlink", "flower-supernode", "flower-superexec", "flwr"):
        flower_bin(name)
    for _kind, idx, _r in opts.faults:
        if idx >= opts.clients:
            raise OctoError(f"--fault names board {idx}, but there are {opts.clients} (0..{opts.clients - 1})")
    if opts.superlink:
        return _run_on_superlink(opts, say)
    t0 = time.monotonic()
    tb, spec = prepare(opts, opts.board)
    spec = _absolute(spec)
    exe = board_executable(tb.dir, opts.board, spec.config_id, say)
    folder = run_folder()
    stop = threading.Event()
    applied: list[tuple[str, int, int]] = []
    say(f"fleet run: {opts.clients} x {opts.board} ({spec.config_id}), {opts.rounds} rounds, {opts.strategy}; "
        f"Flower deployment in {folder}")
    with local_deployment(folder, opts.board, opts.clients, exe, opts.insecure, say) as run:
        boards, nodes = run.boards, run.nodes
        app = write_app(folder, fed_settings(folder, opts, spec, revive=True))
        actions: dict[str, Callable[[int], None]] = {"kill": lambda i: boards[i].stop(),
                                                     "reset": lambda i: boards[i].reset(),
                                                     "node": lambda i: nodes[i].stop(),
                                                     "revive": lambda i: boards[i].start()}
        for _kind, idx, rnd in opts.faults:  # before any round starts: those ClientApps wait for their fault
            (folder / f"expect-fault-{idx}-{rnd}").touch()
        watcher = threading.Thread(target=_board_watcher, args=(folder, actions, opts.faults, say, stop, applied),
                                   daemon=True)
        watcher.start()
        try:
            submit_and_wait(dep=run.dep, app=app, rounds=opts.rounds, say=say,
                            check=lambda: run.check(lambda: {i for kind, i, _r in applied if kind == "node"}))
        finally:
            stop.set()
            watcher.join(timeout=REVIVE_WAIT_S)
    return _document(opts, spec, folder, t0, {"boards": opts.clients, "tls": not opts.insecure,
                                               "supernode_auth": not opts.insecure,
                                               "faults": [{"kind": k, "board": i, "round": r,
                                                           "applied": (k, i, r) in applied}
                                                          for k, i, r in opts.faults]})


# --- octo fleet run --mode split ------------------------------------------------------------------------------

@dataclass
class SplitRunOptions:
    boards: int = 4
    board: str = "virtual-m4"
    insecure: bool = False
    reply_timeout_s: float = 600.0   # one message's reply (a board step)
    keep: bool = False


def split_settings(folder: Path, opts: SplitRunOptions, job: Any) -> dict[str, Any]:
    """The run config `octo-run` of split learning (deploy_apps.split_main); the data goes to split-data.npz."""
    import numpy as np  # noqa: PLC0415

    arrays = {"x": job.train_xy[0], "y": job.train_xy[1]}
    if job.eval_xy is not None:
        arrays.update(ex=job.eval_xy[0], ey=job.eval_xy[1])
    np.savez(folder / "split-data.npz", **arrays)
    options = {f.name: getattr(job.opts, f.name) for f in dataclasses.fields(job.opts)}
    options.update(progress=False, telemetry=str(Path(job.opts.telemetry).resolve()) if job.opts.telemetry else None)
    return {"mode": "split", "nodes": opts.boards, "out": str(folder), "round_timeout_s": opts.reply_timeout_s,
            "revive": False,
            "split": {"board": opts.board, "train_dir": str(Path(job.tb.dir).resolve()),
                      "train_config": dataclasses.asdict(job.tb.config), "codec": dataclasses.asdict(job.spec),
                      "options": options, "run_dir": str(Path(job.run_dir).resolve())}}


def run_split_fleet(opts: SplitRunOptions, job: Any, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Split learning in deployment mode: job (collab.run.SplitJob: the training build, codec, data and options
    `octo collab` would run) on opts.boards boards, each behind its own SuperNode; the cloud half in the ServerApp.
    Returns the octo.collab/1 document (engine "flower", mode "deployment")."""
    for name in ("flower-superlink", "flower-supernode", "flower-superexec", "flwr"):
        flower_bin(name)
    t0 = time.monotonic()
    exe = board_executable(job.tb.dir, opts.board, job.tb.config.config_id, say)
    folder = run_folder()
    say(f"fleet run --mode split: {opts.boards} x {opts.board} ({job.tb.config.config_id}), {job.opts.epochs} "
        f"epoch(s); Flower deployment in {folder}")
    with local_deployment(folder, opts.board, opts.boards, exe, opts.insecure, say) as run:
        app = write_app(folder, split_settings(folder, opts, job))
        submit_and_wait(run.dep, app, job.opts.epochs, say, run.check)
    metrics = dict(json.loads((folder / "result.json").read_text()))
    metrics["engine"] = "flower"
    metrics["mode"] = "deployment"
    metrics["deployment"] = {"tls": not opts.insecure, "supernode_auth": not opts.insecure,
                             "wall_s": round(time.monotonic() - t0, 2)}
    if not opts.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return metrics


def _document(opts: RunOptions, spec: Any, folder: Path, t0: float, extra: dict[str, Any]) -> dict[str, Any]:
    """The octo.fleet/1 document from the ServerApp's result.json and final.npz; the run's folder removed."""
    import numpy as np  # noqa: PLC0415

    from host_tools.fleet.sim import summarise  # noqa: PLC0415

    res = json.loads((folder / "result.json").read_text())
    with np.load(folder / "final.npz") as z:
        final = {k: z[k] for k in z.files}
    out = {"tally": SimpleNamespace(rounds={int(r): t for r, t in res["tally"].items()}),
           "evals": {int(r): tuple(v) for r, v in res["evals"].items()},
           "train_metrics": {int(r): m for r, m in res["train_metrics"].items()}, "final": final}
    doc = summarise(opts, spec, out, "deployment", time.monotonic() - t0, extra)
    if not opts.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return doc
