"""ContainerService: the life of every container, from create to destroy, and its recovery at daemon start.

Owns the container record (docker's inspect document, persisted in the metadata store under kind
"container" on every state change, with gorae's private bookkeeping under the "_gorae" key), the name
index, the per-container watcher task that awaits the runtime's exit status, restart policies, wait
conditions, and live restore. State changes go through `container_state` (the table); the runtime,
snapshotter, images and archive code do the work. Never speaks HTTP: the API layer calls in here.

Networking: `NetworkService` (daemon.networks) builds the container's sandbox at every start (namespace,
veths, published ports, DNS; its hosts/resolv.conf content is written into the container's files) and
tears it down at every exit and at removal; -p and --network are validated at create.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as _signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gorae.daemon import container_state as cs
from gorae.daemon.container_config import (
    HOST_CONFIG_TYPES,
    UPDATABLE,
    check_types,
    command_of,
    merge_image_config,
    network_settings,
    normalize_config,
    normalize_host_config,
    validate_resources,
)
from gorae.daemon.container_files import write_bundle_files, write_network_files
from gorae.daemon.container_state import Event, Status
from gorae.daemon.names import random_name, validate_name
from gorae.daemon.restart import decide, parse_policy, restart_on_daemon_start
from gorae.errors import (
    CommandFailed,
    Conflict,
    GoraeError,
    InvalidParameter,
    NotFound,
    NotModified,
    SystemError_,
)
from gorae.network.types import EndpointRequest

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon

log = logging.getLogger("gorae.containers")

KIND = "container"
DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 10.0  # how long SIGKILL may take before we call the container stuck


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC; 0 is Go's zero time."""
    if not ns:
        return cs.ZERO_TIME
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    """docker's signal.ParseSignal: a number, or a name with or without SIG (any case)."""
    if value is None or value == "":
        return int(default)
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if num == 0:
            raise InvalidParameter(f"Invalid signal: {text}")
        return num
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name.startswith("RTMIN+") or name.startswith("RTMAX-"):
        base = _signal.SIGRTMIN if name.startswith("RTMIN") else _signal.SIGRTMAX
        try:
            off = int(name[6:])
        except ValueError:
            raise InvalidParameter(f"Invalid signal: {text}") from None
        return int(base) + off if name.startswith("RTMIN") else int(base) - off
    try:
        return int(_signal.Signals["SIG" + name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {text}") from None


class Live:
    """The in-memory companion of one container record: its lock, tasks and waiters."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.lock = asyncio.Lock()
        self.watcher: asyncio.Task[None] | None = None
        self.restart_task: asyncio.Task[None] | None = None
        self.exit_waiters: list[asyncio.Future[dict[str, Any]]] = []
        self.removed_waiters: list[asyncio.Future[dict[str, Any]]] = []
        # run between runtime create and start (attach sessions connect here: no output is lost)
        self.pre_start: list[Callable[[], Awaitable[None]]] = []
        self.mount_refs = 0
        self.mounted = False
        self.removed = False

    @property
    def id(self) -> str:
        return str(self.doc["Id"])

    @property
    def name(self) -> str:
        return str(self.doc["Name"])

    @property
    def state(self) -> dict[str, Any]:
        return self.doc["State"]  # type: ignore[no-any-return]

    @property
    def status(self) -> Status:
        return cs.status_of(self.doc["State"])

    @property
    def private(self) -> dict[str, Any]:
        return self.doc.setdefault("_gorae", {})  # type: ignore[no-any-return]

    @property
    def tty(self) -> bool:
        return bool(self.doc["Config"].get("Tty"))

    def exit_result(self) -> dict[str, Any]:
        err = self.state.get("Error") or ""
        return {
            "StatusCode": int(self.state.get("ExitCode") or 0),
            "Error": {"Message": err} if err else None,
        }


class ContainerService:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.root = os.path.join(daemon.config.data_root, "containers")
        self._by_id: dict[str, Live] = {}
        self._names: dict[str, str] = {}  # "/name" -> id
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lookup ------------------------------------------------------------------------------

    def get(self, ref: str) -> Live:
        """By full id, name ("/x" or "x"), or unique id prefix; NotFound "No such container: ref"."""
        if not ref:
            raise NotFound("No such container: ")
        ct = self._by_id.get(ref)
        if ct is not None:
            return ct
        cid = self._names.get(ref if ref.startswith("/") else "/" + ref)
        if cid is not None:
            return self._by_id[cid]
        matches = [c for i, c in self._by_id.items() if i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Live]:
        return list(self._by_id.values())

    def count_states(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ct in self._by_id.values():
            out[ct.status.value] = out.get(ct.status.value, 0) + 1
        return out

    def uses_image(self, image_id: str) -> bool:
        return any(ct.doc.get("Image") == image_id for ct in self._by_id.values())

    def image_users(self, image_id: str) -> list[str]:
        return [ct.id for ct in self._by_id.values() if ct.doc.get("Image") == image_id]

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def rootfs_path(self, cid: str) -> str:
        return os.path.join(self.root, cid, "rootfs")

    # ---- persistence and events -------------------------------------------------------------

    def _save(self, ct: Live) -> None:
        if ct.removed:
            return
        self.d.meta.put(KIND, ct.id, ct.doc, name=ct.name.lstrip("/"))

    def attributes(self, ct: Live, extra: dict[str, str] | None = None) -> dict[str, str]:
        attrs = {str(k): str(v) for k, v in (ct.doc["Config"].get("Labels") or {}).items()}
        attrs["image"] = str(ct.doc["Config"].get("Image") or "")
        attrs["name"] = ct.name.lstrip("/")
        if extra:
            attrs.update(extra)
        return attrs

    def event(self, ct: Live, action: str, extra: dict[str, str] | None = None) -> None:
        self.d.events.publish("container", action, ct.id, self.attributes(ct, extra))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- create ------------------------------------------------------------------------------

    def _reserve_name(self, name: str | None, cid: str) -> str:
        if name:
            canon = validate_name(name)
            other = self._names.get(canon)
            if other is not None:
                raise Conflict(
                    f'Conflict. The container name "{canon}" is already in use by container "{other}". '
                    "You have to remove (or rename) that container to be able to reuse that name."
                )
            return canon
        for attempt in range(64):
            canon = "/" + random_name(attempt)
            if canon not in self._names:
                return canon
        return "/" + cid[:12]

    async def create(self, body: dict[str, Any] | None, name: str | None = None) -> dict[str, Any]:
        """POST /containers/create: returns {"Id", "Warnings"}."""
        if not isinstance(body, dict):
            raise InvalidParameter("Config cannot be empty in order to create a container")
        config = normalize_config(body)
        host_config = normalize_host_config(body.get("HostConfig"))
        image_ref = str(config.get("Image") or "")
        if not image_ref:
            raise InvalidParameter("Config.Image must be set")  # docker: "No such image: " via lookup
        image = await asyncio.to_thread(self.d.images.resolve, image_ref)
        image_info = await asyncio.to_thread(self.d.images.inspect, _image_id(image))
        image_id = str(image_info.get("Id") or _image_id(image))
        config = merge_image_config(config, image_info.get("Config") or {})
        path, args = command_of(config)
        wd = config.get("WorkingDir") or ""
        if wd and not wd.startswith("/"):
            raise InvalidParameter(
                f"the working directory '{wd}' is invalid, it needs to be an absolute path"
            )
        if config.get("StopSignal"):
            parse_signal(config["StopSignal"])
        endpoints_config = self._check_network_input(config, host_config, body.get("NetworkingConfig"))
        cid = secrets.token_hex(32)
        if not config.get("Hostname"):
            # docker: a host-network container takes the host's name
            config["Hostname"] = (
                socket.gethostname() if host_config.get("NetworkMode") == "host" else cid[:12]
            )
        canon = self._reserve_name(name, cid)
        now = time.time_ns()
        directory = self.dir(cid)
        parent = await asyncio.to_thread(self.d.images.top_layer_chain_id, image)
        snap_ready = False
        try:
            os.makedirs(directory, mode=0o710)
            os.makedirs(os.path.join(directory, "rootfs"), mode=0o755)
            await asyncio.to_thread(self.d.snapshotter.prepare, cid, parent)
            snap_ready = True
            hostname_path, hosts_path, resolv_path = await asyncio.to_thread(
                write_bundle_files, directory, config["Hostname"], config.get("Domainname") or "", host_config
            )
            mounts_priv, mounts_pub = await self._resolve_mounts(config, host_config, image_info)
        except BaseException:
            if snap_ready:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.d.snapshotter.remove, cid)
            shutil.rmtree(directory, ignore_errors=True)
            raise
        doc: dict[str, Any] = {
            "Id": cid,
            "Created": rfc3339nano(now),
            "Path": path,
            "Args": args,
            "State": cs.initial_state(),
            "Image": image_id,
            "ResolvConfPath": resolv_path,
            "HostnamePath": hostname_path,
            "HostsPath": hosts_path,
            "LogPath": os.path.join(directory, "ctr.log"),
            "Name": canon,
            "RestartCount": 0,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": host_config,
            "GraphDriver": self._graph_driver(cid),
            "Mounts": mounts_pub,
            "Config": config,
            "NetworkSettings": self._created_network_settings(host_config, endpoints_config),
            "_gorae": {
                "CreatedNs": now,
                "StartedNs": 0,
                "FinishedNs": 0,
                "ManuallyStopped": False,
                "StartedBefore": False,
                "RestartDelay": 0.0,
                "Snapshot": cid,
                "CgroupsPath": _cgroups_path(host_config, cid),
                "ImageRef": image_ref,
                "Mounts": mounts_priv,
                "EndpointsConfig": endpoints_config,
            },
        }
        ct = Live(doc)
        self._by_id[cid] = ct
        self._names[canon] = cid
        try:
            self._save(ct)
        except BaseException:
            self._by_id.pop(cid, None)
            self._names.pop(canon, None)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.d.snapshotter.remove, cid)
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self.event(ct, "create")
        return {"Id": cid, "Warnings": []}

    def _graph_driver(self, cid: str) -> dict[str, Any]:
        data: dict[str, str] = {}
        snap = self.d.snapshotter
        with contextlib.suppress(Exception):
            upper = snap.upper_dir(cid)
            lowers = snap.lower_dirs(cid)
            base = os.path.dirname(upper)
            data = {
                "LowerDir": ":".join(lowers),
                "MergedDir": self.rootfs_path(cid),
                "UpperDir": upper,
                "WorkDir": os.path.join(base, "work"),
            }
        return {"Data": data or None, "Name": "overlay2"}

    async def _resolve_mounts(
        self, config: dict[str, Any], host_config: dict[str, Any], image_info: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Volumes and binds (when the volume service is wired); (private, public) forms."""
        volumes = getattr(self.d, "volumes", None)
        if volumes is None:
            return [], []
        from gorae.volume import mounts as vm

        def lookup(ref: str) -> dict[str, Any]:
            other = self.get(ref)
            return {"Mounts": other.private.get("Mounts") or []}

        image_volumes = (image_info.get("Config") or {}).get("Volumes")
        priv = await asyncio.to_thread(vm.resolve, config, host_config, image_volumes, volumes, lookup)
        return priv, vm.public(priv)

    # ---- rootfs ------------------------------------------------------------------------------

    async def _mount(self, ct: Live) -> str:
        target = self.rootfs_path(ct.id)
        if not ct.mounted:
            from gorae.snapshot import mount_all

            mounts = await asyncio.to_thread(self.d.snapshotter.mounts, ct.private.get("Snapshot", ct.id))
            os.makedirs(target, exist_ok=True)
            await asyncio.to_thread(mount_all, mounts, target)
            ct.mounted = True
        return target

    async def _unmount(self, ct: Live) -> None:
        if ct.mounted and ct.mount_refs == 0:
            from gorae.snapshot import unmount

            target = self.rootfs_path(ct.id)
            try:
                await asyncio.to_thread(unmount, target)
            except Exception as e:  # busy mounts are retried at the next exit or removal
                log.warning("unmounting %s: %s", target, e)
                return
            ct.mounted = False

    @contextlib.asynccontextmanager
    async def rootfs(self, ref: str | Live) -> AsyncIterator[str]:
        """The container's root filesystem mounted on the host for the duration (docker cp, export, ...)."""
        ct = ref if isinstance(ref, Live) else self.get(ref)
        async with ct.lock:
            path = await self._mount(ct)
            ct.mount_refs += 1
        try:
            yield path
        finally:
            async with ct.lock:
                ct.mount_refs -= 1
                if ct.status not in cs.ALIVE:
                    await self._unmount(ct)

    # ---- start -------------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        ct = self.get(ref)
        async with ct.lock:
            await self._start_locked(ct, auto=False)

    async def _start_locked(self, ct: Live, *, auto: bool) -> None:
        cs.check(ct.state, Event.START, ct.id)
        if not auto:
            ct.private["ManuallyStopped"] = False
            ct.private["RestartDelay"] = 0.0
            ct.doc["RestartCount"] = 0
            if ct.restart_task is not None:
                ct.restart_task.cancel()
                ct.restart_task = None
        directory = self.dir(ct.id)
        if ct.private.get("HasAutoRemoved"):
            raise Conflict("container is marked for removal and cannot be started")
        # a leftover runtime container (crash between create and record) is removed first
        leftover = os.path.isdir(self.d.runtime.conmon_dir(ct.id))
        if leftover and await asyncio.to_thread(self.d.runtime.state, ct.id) is not None:
            with contextlib.suppress(Exception):
                await self.d.runtime.delete(ct.id, force=True)
        rootfs = await self._mount(ct)
        try:  # network errors keep docker's own text ("driver failed programming external connectivity ...")
            for req in ct.doc.get("HostConfig", {}).get("DeviceRequests") or []:
                # no device drivers (nvidia, cdi) are registered: docker's error for --gpus without nvidia
                caps = "[" + " ".join("[" + " ".join(c) + "]" for c in req.get("Capabilities") or []) + "]"
                raise SystemError_(
                    f'could not select device driver "{req.get("Driver") or ""}" with capabilities: {caps}'
                )
            await self._setup_network(ct)
        except BaseException as e:
            await self._start_failed(ct, e)
            raise
        try:
            extra_mounts = await self._oci_mounts(ct, rootfs)
            spec = await asyncio.to_thread(self._build_spec, ct, rootfs, extra_mounts)
            with open(os.path.join(directory, "config.json.tmp"), "w", encoding="utf-8") as f:
                json.dump(spec, f)
            os.replace(os.path.join(directory, "config.json.tmp"), os.path.join(directory, "config.json"))
            cfg = ct.doc["Config"]
            await self.d.runtime.create(
                ct.id,
                directory,
                tty=bool(cfg.get("Tty")),
                stdin=bool(cfg.get("OpenStdin")),
                stdin_once=bool(cfg.get("StdinOnce")),
                log_path=ct.doc["LogPath"],
            )
        except GoraeError as e:
            await self._start_failed(ct, e)
            raise _start_error(e, ct) from None
        except Exception as e:
            await self._start_failed(ct, e)
            raise
        hooks, ct.pre_start = ct.pre_start, []
        for hook in hooks:
            try:
                await hook()
            except Exception as e:  # an attach that cannot connect must not stop the start
                log.warning("pre-start hook of %s: %s", ct.id[:12], e)
        try:
            await self.d.runtime.start(ct.id)
        except Exception as e:
            with contextlib.suppress(Exception):
                await self.d.runtime.delete(ct.id, force=True)
            await self._start_failed(ct, e)
            if isinstance(e, GoraeError):
                raise _start_error(e, ct) from None
            raise
        pid = _read_pid(os.path.join(self.d.runtime.conmon_dir(ct.id), "pidfile"))
        if not pid:
            rstate = await asyncio.to_thread(self.d.runtime.state, ct.id)
            pid = int((rstate or {}).get("pid") or 0)
        now = time.time_ns()
        ct.doc["State"] = cs.apply(
            ct.state,
            Event.START,
            ct.id,
            Pid=pid,
            StartedAt=rfc3339nano(now),
            ExitCode=0,
            Error="",
            OOMKilled=False,
        )
        ct.private["StartedNs"] = now
        ct.private["StartedBefore"] = True
        self._save(ct)
        self.event(ct, "start")
        ct.watcher = self._spawn(self._watch(ct))

    def _build_spec(self, ct: Live, rootfs: str, extra_mounts: list[dict[str, Any]]) -> dict[str, Any]:
        from gorae.runtime.spec import build_spec

        hc = ct.doc["HostConfig"]
        config = ct.doc["Config"]
        if ct.private.get("LinkEnv"):
            config = {**config, "Env": list(config.get("Env") or []) + list(ct.private["LinkEnv"])}
        return build_spec(
            config,
            hc,
            rootfs=rootfs,
            hostname_path=ct.doc.get("HostnamePath"),
            hosts_path=ct.doc.get("HostsPath"),
            resolv_path=ct.doc.get("ResolvConfPath"),
            cgroups_path=ct.private.get("CgroupsPath") or _cgroups_path(hc, ct.id),
            netns_path=ct.private.get("NetnsPath"),
            extra_mounts=extra_mounts,
        )

    async def _oci_mounts(self, ct: Live, rootfs: str) -> list[dict[str, Any]]:
        volumes = getattr(self.d, "volumes", None)
        priv = ct.private.get("Mounts") or []
        if volumes is None:
            return []
        from gorae.volume import mounts as vm

        fresh = [m for m in priv if m.get("_fresh")]
        if fresh:
            await asyncio.to_thread(vm.copy_up, rootfs, fresh)
            for m in fresh:
                m["_fresh"] = False
        return await asyncio.to_thread(vm.oci_mounts, priv, ct.doc["HostConfig"], volumes)

    async def _release_mounts(self, ct: Live) -> None:
        volumes = getattr(self.d, "volumes", None)
        priv = ct.private.get("Mounts") or []
        if volumes is None or not priv:
            return
        from gorae.volume import mounts as vm

        with contextlib.suppress(Exception):
            await asyncio.to_thread(vm.release, priv, volumes)

    # ---- networking -------------------------------------------------------------------------

    def _check_network_input(
        self, config: dict[str, Any], host_config: dict[str, Any], networking: Any
    ) -> dict[str, Any]:
        """Validate -p/-P/--network/--network-alias at create (nothing is allocated yet); the endpoints
        config to keep. Errors are docker's: "network X not found", "invalid port specification", ..."""
        from gorae.network.portmap.ports import parse_port_range, split_proto_port, validate_port_bindings

        validate_port_bindings(host_config.get("PortBindings"))
        for key in config.get("ExposedPorts") or {}:
            proto, port = split_proto_port(key)
            try:
                parse_port_range(port)
            except ValueError:
                raise InvalidParameter(f'invalid port specification: "{key}"') from None
            if proto not in ("tcp", "udp", "sctp"):
                raise InvalidParameter(f'invalid port specification: "{key}"')
        endpoints = (networking or {}).get("EndpointsConfig") if isinstance(networking, dict) else None
        if endpoints is not None and not isinstance(endpoints, dict):
            raise InvalidParameter("NetworkingConfig.EndpointsConfig must be an object")
        endpoints = dict(endpoints or {})
        mode = str(host_config.get("NetworkMode") or "bridge")
        if "default" in endpoints:  # the CLI keys the endpoint by the mode it sent ("default")
            endpoints.setdefault(
                "bridge" if mode in ("default", "bridge") else mode, endpoints.pop("default")
            )
        nets = self.d.networks
        if mode.startswith("container:"):
            ref = mode.partition(":")[2]
            if not ref:
                raise InvalidParameter("no container specified to join network")
            self.get(ref)
            if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
                raise InvalidParameter(
                    "conflicting options: port publishing and the container type network mode"
                )
            if host_config.get("Links"):
                raise InvalidParameter("conflicting options: container type network can't be used with links")
            if endpoints:
                raise InvalidParameter(
                    "container sharing network namespace with another container or host cannot "
                    "be connected to any other network"
                )
            return {}
        if mode not in ("default", "bridge", "host", "none"):
            nets.inspect(mode)  # NotFound "network X not found"
        for key in endpoints:
            nets.inspect(key)
        return endpoints

    def _created_network_settings(
        self, host_config: dict[str, Any], endpoints: dict[str, Any]
    ) -> dict[str, Any]:
        """NetworkSettings of a container that has not run: its networks with empty endpoints."""
        from gorae.network.model import endpoint_settings

        st = network_settings()
        mode = str(host_config.get("NetworkMode") or "bridge")
        if mode.startswith("container:"):
            return st
        names = [mode if mode != "default" else "bridge", *[k for k in endpoints if k != mode]]
        for name in names:
            entry = endpoint_settings(None, "")
            cfg = endpoints.get(name) or {}
            entry["Aliases"] = list(cfg.get("Aliases") or []) or None
            entry["IPAMConfig"] = cfg.get("IPAMConfig") or None
            entry["Links"] = cfg.get("Links") or None
            entry["MacAddress"] = cfg.get("MacAddress") or ""
            st["Networks"][name] = entry
        return st

    async def _setup_network(self, ct: Live) -> None:
        """Build the network sandbox, write hosts/resolv.conf, record NetworkSettings (before the spec)."""
        nets = self.d.networks
        await nets.teardown_container(ct.id)  # a stale sandbox (crash between exit and record)
        hc = ct.doc["HostConfig"]
        cfg = ct.doc["Config"]
        mode = str(hc.get("NetworkMode") or "bridge")
        if mode.startswith("container:"):
            other = self.get(mode.partition(":")[2])
            if other.status not in (Status.RUNNING, Status.PAUSED):
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            mode = "container:" + other.id
        cnet = await nets.setup_container(
            EndpointRequest(
                container_id=ct.id,
                name=ct.name,
                hostname=str(cfg.get("Hostname") or ct.id[:12]),
                network_mode=mode,
                endpoints_config=ct.private.get("EndpointsConfig") or {},
                port_bindings=hc.get("PortBindings") or {},
                publish_all=bool(hc.get("PublishAllPorts")),
                exposed_ports=list((cfg.get("ExposedPorts") or {}).keys()),
                links=list(hc.get("Links") or []),
                dns=list(hc.get("Dns") or []) or list(getattr(self.d.config, "dns", None) or []),
                dns_search=list(hc.get("DnsSearch") or []),
                dns_options=list(hc.get("DnsOptions") or []),
                extra_hosts=list(hc.get("ExtraHosts") or []),
                mac_address=str(cfg.get("MacAddress") or ""),
                domainname=str(cfg.get("Domainname") or ""),
                env=list(cfg.get("Env") or []),
            )
        )
        try:
            await asyncio.to_thread(
                write_network_files,
                ct.doc.get("HostsPath"),
                ct.doc.get("ResolvConfPath"),
                cnet.hosts,
                cnet.resolv_conf,
            )
        except BaseException:
            await nets.teardown_container(ct.id)
            raise
        ct.private["NetnsPath"] = cnet.netns_path
        ct.private["LinkEnv"] = cnet.link_env
        ct.doc["NetworkSettings"] = cnet.settings

    async def _teardown_network(self, ct: Live) -> None:
        """Release the sandbox (veths, rules, ports, namespace); NetworkSettings keep the networks, emptied."""
        from gorae.network.model import endpoint_settings

        try:
            await self.d.networks.teardown_container(ct.id)
        except Exception as e:  # never blocks an exit or a removal
            log.warning("network teardown of %s: %s", ct.id[:12], e)
        ct.private.pop("NetnsPath", None)
        ct.private.pop("LinkEnv", None)
        old = ct.doc.get("NetworkSettings") or {}
        st = network_settings()
        for name, entry in (old.get("Networks") or {}).items():
            new = endpoint_settings(None, (entry or {}).get("NetworkID") or "")
            for key in ("IPAMConfig", "Links", "Aliases"):
                new[key] = (entry or {}).get(key)
            st["Networks"][name] = new
        ct.doc["NetworkSettings"] = st

    async def _start_failed(self, ct: Live, err: BaseException) -> None:
        text = err.stderr if isinstance(err, CommandFailed) else getattr(err, "message", str(err))
        code = _start_exit_code(text, ct.doc.get("Path") or "")
        await self._release_mounts(ct)
        await self._teardown_network(ct)
        await self._unmount(ct)
        ct.doc["State"] = cs.apply(ct.state, Event.START_FAILED, ct.id, ExitCode=code, Error=text.strip())
        if ct.status == Status.EXITED:
            ct.private["FinishedNs"] = time.time_ns()
            ct.doc["State"]["FinishedAt"] = rfc3339nano(ct.private["FinishedNs"])
        self._save(ct)
        self._resolve(ct.exit_waiters, ct.exit_result())
        if ct.doc["HostConfig"].get("AutoRemove"):  # docker removes a --rm container whose start failed
            self._spawn(self._auto_remove(ct))

    # ---- exit --------------------------------------------------------------------------------

    async def _watch(self, ct: Live) -> None:
        try:
            code, oom = await self.d.runtime.wait_exit(ct.id)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("waiting for %s: %s; recording exit status 255", ct.id[:12], e)
            code, oom = 255, False
        if self._closing:
            return
        async with ct.lock:
            if ct.watcher is asyncio.current_task():
                ct.watcher = None
            await self._handle_exit(ct, code, oom)

    async def _handle_exit(self, ct: Live, code: int, oom: bool, *, at_daemon_start: bool = False) -> None:
        """Record an exit, clean up the runtime, and apply the restart policy or AutoRemove."""
        # The exit status lives only in conmon's exit file, which the runtime delete below removes, while the
        # record still says running until the cleanup is done: keep it in the record first, so that a daemon
        # killed in between finds it on restore (instead of "exit status unknown").
        if ct.status in (Status.RUNNING, Status.PAUSED):
            ct.private["PendingExit"] = [int(code), bool(oom)]
            self._save(ct)
        with contextlib.suppress(Exception):
            await self.d.runtime.delete(ct.id, force=True)
        await self._release_mounts(ct)
        await self._teardown_network(ct)
        await self._unmount(ct)
        self.d.execs.container_exited(ct.id)
        now = time.time_ns()
        started = int(ct.private.get("StartedNs") or 0)
        ran_for = (now - started) / 1e9 if started else 0.0
        fields = {"ExitCode": int(code), "OOMKilled": bool(oom), "FinishedAt": rfc3339nano(now), "Error": ""}
        ct.private["FinishedNs"] = now
        ct.private.pop("PendingExit", None)
        if oom:
            self.event(ct, "oom")
        if ct.status == Status.REMOVING:
            ct.doc["State"] = cs.apply(ct.state, Event.EXIT, ct.id, **fields)
            self._save(ct)
            self.event(ct, "die", {"exitCode": str(code), "execDuration": str(int(ran_for))})
            self._resolve(ct.exit_waiters, ct.exit_result())
            return
        policy = parse_policy(ct.doc["HostConfig"].get("RestartPolicy"))
        manual = bool(ct.private.get("ManuallyStopped"))
        decision = decide(
            policy,
            exit_code=int(code),
            restart_count=int(ct.doc.get("RestartCount") or 0),
            manually_stopped=manual,
            ran_for=ran_for,
            previous_delay=float(ct.private.get("RestartDelay") or 0.0),
            cancelled=False if at_daemon_start else None,
        )
        if decision.restart and not self._closing:
            ct.doc["State"] = cs.apply(ct.state, Event.EXIT_RESTART, ct.id, **fields)
            ct.doc["RestartCount"] = int(ct.doc.get("RestartCount") or 0) + 1
            ct.private["RestartDelay"] = decision.next_delay_state
            self._save(ct)
            self.event(ct, "die", {"exitCode": str(code), "execDuration": str(int(ran_for))})
            self._resolve(ct.exit_waiters, ct.exit_result())
            ct.restart_task = self._spawn(self._restart_later(ct, decision.delay))
            return
        ct.doc["State"] = cs.apply(ct.state, Event.EXIT, ct.id, **fields)
        ct.private["RestartDelay"] = 0.0
        self._save(ct)
        self.event(ct, "die", {"exitCode": str(code), "execDuration": str(int(ran_for))})
        self._resolve(ct.exit_waiters, ct.exit_result())
        if ct.doc["HostConfig"].get("AutoRemove"):
            self._spawn(self._auto_remove(ct))

    async def _restart_later(self, ct: Live, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        async with ct.lock:
            if ct.restart_task is asyncio.current_task():
                ct.restart_task = None
            if ct.status != Status.RESTARTING or ct.removed or self._closing:
                return
            try:
                await self._start_locked(ct, auto=True)
            except Exception as e:
                log.warning("restarting %s failed: %s", ct.id[:12], e)
                if ct.status == Status.RESTARTING:
                    ct.doc["State"] = cs.apply(ct.state, Event.START_FAILED, ct.id, Error=str(e))
                    self._save(ct)
                    self._resolve(ct.exit_waiters, ct.exit_result())

    async def _auto_remove(self, ct: Live) -> None:
        try:
            await self.remove(ct.id, force=True, volumes=True)
        except NotFound:
            pass
        except Exception as e:
            log.warning("auto-removing %s: %s", ct.id[:12], e)

    @staticmethod
    def _resolve(waiters: list[asyncio.Future[dict[str, Any]]], result: dict[str, Any]) -> None:
        for fut in waiters:
            if not fut.done():
                fut.set_result(dict(result))
        waiters.clear()

    # ---- wait --------------------------------------------------------------------------------

    def wait(self, ref: str, condition: str = "not-running") -> Awaitable[dict[str, Any]]:
        """Register a waiter now (so an exit right after cannot be missed); await the result later.

        Conditions as docker: `not-running` (now, if not running), `next-exit`, `removed`.
        """
        if condition in ("", None):
            condition = "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        ct = self.get(ref)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        if condition == "not-running" and not ct.state.get("Running"):
            fut.set_result(ct.exit_result())
        elif condition == "removed":
            ct.removed_waiters.append(fut)
        else:
            ct.exit_waiters.append(fut)
        return fut

    # ---- stop / kill / restart ---------------------------------------------------------------

    def _stop_signal(self, ct: Live) -> int:
        return parse_signal(ct.doc["Config"].get("StopSignal"), default=_signal.SIGTERM)

    def _stop_timeout(self, ct: Live, timeout: int | None) -> int:
        if timeout is not None:
            return timeout
        st = ct.doc["Config"].get("StopTimeout")
        return int(st) if st is not None else DEFAULT_STOP_TIMEOUT

    async def _cancel_restart(self, ct: Live) -> None:
        """A stop or kill while a restart is pending: the container stays down."""
        async with ct.lock:
            if ct.restart_task is not None:
                ct.restart_task.cancel()
                ct.restart_task = None
            if ct.status == Status.RESTARTING:
                ct.private["ManuallyStopped"] = True
                ct.doc["State"] = cs.apply(ct.state, Event.CANCEL_RESTART, ct.id)
                self._save(ct)
                self._resolve(ct.exit_waiters, ct.exit_result())

    async def _signal(self, ct: Live, sig: int, *, all_processes: bool = False) -> None:
        await self.d.runtime.kill(ct.id, sig, all=all_processes)
        self.event(ct, "kill", {"signal": str(sig)})

    async def _wait_exit_recorded(
        self, ct: Live, fut: asyncio.Future[dict[str, Any]], timeout: float | None
    ) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        """StopSignal, then SIGKILL after `timeout` seconds (-1 waits forever); 304 if not running."""
        ct = self.get(ref)
        if ct.status == Status.RESTARTING:
            await self._cancel_restart(ct)
            self.event(ct, "stop")
            return
        if ct.status not in cs.ALIVE:
            raise NotModified("Container is already stopped")
        await self._stop_running(ct, self._stop_timeout(ct, timeout), signal)
        self.event(ct, "stop")

    async def _stop_running(self, ct: Live, timeout: int, signal: str | None = None) -> None:
        sig = parse_signal(signal, default=self._stop_signal(ct)) if signal else self._stop_signal(ct)
        ct.private["ManuallyStopped"] = True
        self._save(ct)
        fut = asyncio.get_running_loop().create_future()
        ct.exit_waiters.append(fut)
        paused = ct.status == Status.PAUSED
        try:
            await self._signal(ct, sig)
        except Conflict:
            pass  # it is exiting already
        except NotFound:
            pass
        if paused:
            with contextlib.suppress(Exception):
                await self.d.runtime.resume(ct.id)
        if await self._wait_exit_recorded(ct, fut, None if timeout < 0 else float(timeout)):
            return
        with contextlib.suppress(Conflict, NotFound):
            await self._signal(ct, _signal.SIGKILL, all_processes=True)
        if not await self._wait_exit_recorded(ct, fut, KILL_WAIT):
            raise SystemError_(f"tried to kill container, but did not receive an exit event: {ct.id}")

    async def kill(self, ref: str, signal: str | None = None) -> None:
        ct = self.get(ref)
        sig = parse_signal(signal, default=_signal.SIGKILL)
        if ct.status not in cs.ALIVE:
            raise Conflict(f"Container {ct.id} is not running")
        configured = ct.doc["Config"].get("StopSignal")
        stops_for_good = not configured or sig == _signal.SIGKILL or sig == self._stop_signal(ct)
        if stops_for_good:
            ct.private["ManuallyStopped"] = True
            self._save(ct)
        if ct.status == Status.RESTARTING:
            if stops_for_good:
                await self._cancel_restart(ct)
            return
        fut = asyncio.get_running_loop().create_future()
        ct.exit_waiters.append(fut)
        try:
            await self._signal(ct, sig, all_processes=sig == _signal.SIGKILL)
        except Conflict:
            raise Conflict(f"Container {ct.id} is not running") from None
        if ct.status == Status.PAUSED and stops_for_good:
            with contextlib.suppress(Exception):
                await self.d.runtime.resume(ct.id)
        if sig == _signal.SIGKILL:
            await self._wait_exit_recorded(ct, fut, KILL_WAIT)

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        ct = self.get(ref)
        if ct.status == Status.RESTARTING:
            await self._cancel_restart(ct)
        elif ct.status in cs.ALIVE:
            await self._stop_running(ct, self._stop_timeout(ct, timeout), signal)
        async with ct.lock:
            await self._start_locked(ct, auto=False)
        self.event(ct, "restart")

    # ---- pause -------------------------------------------------------------------------------

    async def pause(self, ref: str) -> None:
        await self._freeze(ref, Event.PAUSE)

    async def unpause(self, ref: str) -> None:
        await self._freeze(ref, Event.UNPAUSE)

    async def _freeze(self, ref: str, ev: Event) -> None:
        """Pause (freeze the cgroup) or unpause a container; `ev` is Event.PAUSE or Event.UNPAUSE."""
        ct = self.get(ref)
        async with ct.lock:
            cs.check(ct.state, ev, ct.id)
            if ev == Event.PAUSE:
                await self.d.runtime.pause(ct.id)
            else:
                await self.d.runtime.resume(ct.id)
            ct.doc["State"] = cs.apply(ct.state, ev, ct.id)
            self._save(ct)
        self.event(ct, ev.value)

    # ---- remove ------------------------------------------------------------------------------

    async def remove(
        self, ref: str, *, force: bool = False, volumes: bool = False, link: bool = False
    ) -> None:
        ct = self.get(ref)
        if link:
            raise NotFound(f"No such link: {ref}" if not ref.startswith("/") else f"No such link: {ref}")
        if ct.status == Status.REMOVING:
            cs.check(ct.state, Event.REMOVE, ct.id)
        if ct.status in cs.ALIVE:
            if not force:
                if ct.status == Status.PAUSED:
                    raise Conflict(
                        f"You cannot remove a paused container {ct.id}. Unpause and then stop the container "
                        "before attempting removal or force remove"
                    )
                if ct.status == Status.RESTARTING:
                    raise Conflict(
                        f"You cannot remove a restarting container {ct.id}. Stop the container before "
                        "attempting removal or force remove"
                    )
                raise Conflict(
                    f"You cannot remove a running container {ct.id}. Stop the container before "
                    "attempting removal or force remove"
                )
            if ct.status == Status.RESTARTING:
                await self._cancel_restart(ct)
            else:
                ct.private["ManuallyStopped"] = True
                fut = asyncio.get_running_loop().create_future()
                ct.exit_waiters.append(fut)
                with contextlib.suppress(Conflict, NotFound):
                    await self._signal(ct, _signal.SIGKILL, all_processes=True)
                if ct.status == Status.PAUSED:
                    with contextlib.suppress(Exception):
                        await self.d.runtime.resume(ct.id)
                if not await self._wait_exit_recorded(ct, fut, KILL_WAIT):
                    raise SystemError_(f"Could not kill running container {ct.id}, cannot remove")
        async with ct.lock:
            if ct.removed:
                return
            if ct.status in cs.ALIVE:
                raise Conflict(
                    f"You cannot remove a running container {ct.id}. Stop the container before "
                    "attempting removal or force remove"
                )
            ct.doc["State"] = cs.apply(ct.state, Event.REMOVE, ct.id)
            self._save(ct)
            if ct.restart_task is not None:
                ct.restart_task.cancel()
                ct.restart_task = None
            try:
                await self._destroy(ct, volumes)
            except Exception as e:
                ct.doc["State"] = cs.apply(ct.state, Event.REMOVE_FAILED, ct.id, Error=str(e))
                self._save(ct)
                raise SystemError_(f"unable to remove container {ct.id}: {e}") from e
        self.event(ct, "destroy")
        self._resolve(ct.removed_waiters, ct.exit_result())
        self._resolve(ct.exit_waiters, ct.exit_result())

    async def _destroy(self, ct: Live, volumes: bool) -> None:
        with contextlib.suppress(Exception):
            await self.d.runtime.delete(ct.id, force=True)
        await self._teardown_network(ct)
        ct.mount_refs = 0
        await self._unmount(ct)
        if ct.mounted:
            raise SystemError_(f"rootfs of {ct.id} is still mounted")
        snap = ct.private.get("Snapshot", ct.id)
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(self.d.snapshotter.remove, snap)
        await asyncio.to_thread(shutil.rmtree, self.dir(ct.id), True)
        self.d.execs.container_removed(ct.id)
        with contextlib.suppress(NotFound):
            self.d.meta.delete(KIND, ct.id)
        if volumes:  # after the record: a volume is "in use" while any record mounts it
            await self._remove_anonymous_volumes(ct)
        ct.removed = True
        self._by_id.pop(ct.id, None)
        if self._names.get(ct.name) == ct.id:
            self._names.pop(ct.name, None)

    async def _remove_anonymous_volumes(self, ct: Live) -> None:
        vols = getattr(self.d, "volumes", None)
        if vols is None:
            return
        for m in ct.private.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("_anonymous", not m.get("_named", False)):
                with contextlib.suppress(Exception):
                    doc = await asyncio.to_thread(vols.inspect, m["Name"])
                    if (doc.get("Labels") or {}).get("com.docker.volume.anonymous") is not None:
                        await asyncio.to_thread(vols.remove, m["Name"])

    # ---- rename / update / resize ------------------------------------------------------------

    async def rename(self, ref: str, new_name: str) -> None:
        ct = self.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        canon = validate_name(new_name)
        async with ct.lock:
            old = ct.name
            if canon == old:
                raise InvalidParameter("Renaming a container with the same name as its current name")
            other = self._names.get(canon)
            if other is not None:
                raise Conflict(
                    f'Error when allocating new name: Conflict. The container name "{canon}" is already in use '
                    f'by container "{other}". You have to remove (or rename) that container to be able to '
                    "reuse that name."
                )
            self._names.pop(old, None)
            self._names[canon] = ct.id
            ct.doc["Name"] = canon
            try:
                self._save(ct)
            except BaseException:
                self._names.pop(canon, None)
                self._names[old] = ct.id
                ct.doc["Name"] = old
                raise
        self.event(ct, "rename", {"oldName": old})

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """POST /containers/{id}/update: resources (live through `runc update`) and the restart policy."""
        ct = self.get(ref)
        if not isinstance(body, dict):
            raise InvalidParameter("invalid update body")
        check_types(
            body,
            {k: v for k, v in HOST_CONFIG_TYPES.items() if k in UPDATABLE or k == "RestartPolicy"},
            "UpdateConfig",
        )
        if isinstance(body.get("RestartPolicy"), dict):
            check_types(
                body["RestartPolicy"], {"Name": "string", "MaximumRetryCount": "int64"}, "RestartPolicy"
            )
        async with ct.lock:
            hc = dict(ct.doc["HostConfig"])
            changed: dict[str, Any] = {}
            for key in UPDATABLE:
                if key in body and body[key] is not None and body[key] != 0 and body[key] != "":
                    changed[key] = body[key]
            policy_doc = body.get("RestartPolicy")
            if policy_doc and policy_doc.get("Name"):
                policy = parse_policy(policy_doc)
                if hc.get("AutoRemove") and not policy.is_none:
                    raise InvalidParameter(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    )
                hc["RestartPolicy"] = policy.to_doc()
            hc.update(changed)
            if changed.get("Memory") and not changed.get("MemorySwap"):
                swap = int(hc.get("MemorySwap") or 0)
                if 0 < swap < int(hc["Memory"]):
                    raise InvalidParameter(
                        "Memory limit should be smaller than already set memoryswap limit, "
                        "update the memoryswap at the same time"
                    )
            validate_resources(hc)
            if changed and ct.status in (Status.RUNNING, Status.PAUSED):
                await self._runc_update(ct, hc, changed)
            ct.doc["HostConfig"] = hc
            self._save(ct)
        self.event(ct, "update")
        return []

    async def _runc_update(self, ct: Live, hc: dict[str, Any], changed: dict[str, Any]) -> None:
        args: list[str] = []
        if "Memory" in changed:
            args += ["--memory", str(int(hc["Memory"]))]
            swap = int(hc.get("MemorySwap") or 0)
            args += ["--memory-swap", str(swap if swap else int(hc["Memory"]) * 2)]
        elif "MemorySwap" in changed:
            args += ["--memory-swap", str(int(hc["MemorySwap"]))]
        if "MemoryReservation" in changed:
            args += ["--memory-reservation", str(int(hc["MemoryReservation"]))]
        if "CpuShares" in changed:
            args += ["--cpu-share", str(int(hc["CpuShares"]))]
        if "NanoCpus" in changed:
            period = 100000
            args += ["--cpu-period", str(period), "--cpu-quota", str(int(hc["NanoCpus"]) * period // 10**9)]
        if "CpuPeriod" in changed:
            args += ["--cpu-period", str(int(hc["CpuPeriod"]))]
        if "CpuQuota" in changed:
            args += ["--cpu-quota", str(int(hc["CpuQuota"]))]
        if "CpusetCpus" in changed:
            args += ["--cpuset-cpus", str(hc["CpusetCpus"])]
        if "CpusetMems" in changed:
            args += ["--cpuset-mems", str(hc["CpusetMems"])]
        if "PidsLimit" in changed:
            args += ["--pids-limit", str(int(hc["PidsLimit"]))]
        if "BlkioWeight" in changed:
            args += ["--blkio-weight", str(int(hc["BlkioWeight"]))]
        if not args:
            return
        rt = self.d.runtime
        argv = [rt.runc, "--root", rt.runc_root, "update", *args, ct.id]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise CommandFailed(argv, proc.returncode or 1, err.decode("utf-8", "replace"))

    def resize(self, ref: str, height: int, width: int) -> None:
        ct = self.get(ref)
        if ct.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"Container {ct.id} is not running")
        try:
            self.d.runtime.resize(ct.id, height, width)
        except Conflict:
            if ct.tty:
                raise
        self.event(ct, "resize", {"height": str(height), "width": str(width)})

    # ---- inspection --------------------------------------------------------------------------

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        ct = self.get(ref)
        return self.public_doc(ct, size=size)

    def public_doc(self, ct: Live, *, size: bool = False) -> dict[str, Any]:
        doc = {k: v for k, v in ct.doc.items() if not k.startswith("_")}
        doc = json.loads(json.dumps(doc))  # a private copy for the caller
        doc["ExecIDs"] = self.d.execs.ids_of(ct.id) or None
        if ct.status in cs.ALIVE:
            with contextlib.suppress(NotFound):
                doc["NetworkSettings"] = self.d.networks.network_settings(ct.id)
        if size:
            rw, root = self.sizes(ct)
            doc["SizeRw"] = rw
            doc["SizeRootFs"] = root
        return doc

    def sizes(self, ct: Live) -> tuple[int, int]:
        rw = 0
        with contextlib.suppress(Exception):
            rw = int(self.d.snapshotter.usage(ct.private.get("Snapshot", ct.id)))
        image_size = 0
        with contextlib.suppress(Exception):
            image_size = int(self.d.images.inspect(ct.doc["Image"]).get("Size") or 0)
        return rw, rw + image_size

    def status_text(self, ct: Live) -> str:
        return cs.status_text(
            ct.state, int(ct.private.get("StartedNs") or 0), int(ct.private.get("FinishedNs") or 0)
        )

    def top(self, ref: str, ps_args: str = "-ef") -> dict[str, Any]:
        ct = self.get(ref)
        if ct.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"Container {ct.id} is not running")
        out = self.d.runtime.top(ct.id, ps_args or "-ef", ct.private.get("CgroupsPath"))
        self.event(ct, "top")
        return out  # type: ignore[no-any-return]

    def stats(self, ct: Live, prev: dict[str, Any] | None = None) -> dict[str, Any]:
        """One docker stats sample; zeros (as docker) when the container is not running."""
        from gorae.runtime.stats import container_stats

        if ct.status in (Status.RUNNING, Status.PAUSED):
            try:
                return container_stats(ct.private.get("CgroupsPath") or "", id=ct.id, name=ct.name, prev=prev)
            except Exception as e:
                log.debug("stats of %s: %s", ct.id[:12], e)
        return _empty_stats(ct.id, ct.name, prev)

    # ---- changes / commit --------------------------------------------------------------------

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        from gorae.archive import overlay_changes

        ct = self.get(ref)
        snap = ct.private.get("Snapshot", ct.id)
        upper = self.d.snapshotter.upper_dir(snap)
        lowers = self.d.snapshotter.lower_dirs(snap)
        items = await asyncio.to_thread(overlay_changes, upper, lowers)
        return [{"Kind": kind, "Path": path} for kind, path in items]

    async def commit(
        self,
        ref: str,
        *,
        repo_tag: str | None,
        author: str,
        comment: str,
        changes: list[str],
        pause: bool,
        config: dict[str, Any] | None = None,
    ) -> str:
        ct = self.get(ref)
        paused_here = False
        if pause and ct.status == Status.RUNNING:
            with contextlib.suppress(Exception):
                await self.pause(ct.id)
                paused_here = True
        try:
            doc = self.public_doc(ct)
            if config:
                doc["Config"] = {**doc["Config"], **{k: v for k, v in config.items() if v is not None}}
            upper = self.d.snapshotter.upper_dir(ct.private.get("Snapshot", ct.id))
            image_id = await asyncio.to_thread(
                self.d.images.commit, doc, upper, repo_tag, author, comment, changes, pause
            )
        finally:
            if paused_here:
                with contextlib.suppress(Exception):
                    await self.unpause(ct.id)
        self.event(ct, "commit", {"comment": comment} if comment else None)
        return str(image_id)

    # ---- prune -------------------------------------------------------------------------------

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        from gorae.daemon.container_list import prune_matches

        deleted: list[str] = []
        reclaimed = 0
        for ct in list(self._by_id.values()):
            if ct.status in cs.ALIVE or ct.status == Status.REMOVING:
                continue
            if not prune_matches(ct, filters):
                continue
            rw, _ = self.sizes(ct)
            try:
                await self.remove(ct.id, force=False, volumes=False)
            except (Conflict, NotFound):
                continue
            deleted.append(ct.id)
            reclaimed += rw
        self.d.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ---- live restore ------------------------------------------------------------------------

    async def restore(self) -> None:
        """Load every record; re-attach to live containers, record exits that happened while we were away.

        Record says running/paused, and conmon or runc still hold it -> watch it again (a paused one
        stays paused). Record says running but the runtime has an exit status -> that exit is handled
        now, with the restart policy as if we had seen it (docker does the same on restore). Nothing
        runs and no exit status exists -> exit code 255 with an Error text, as docker's restore does for a
        task it cannot find. A record caught mid-removal is marked dead (docker: RemovalInProgress ->
        Dead); a pending restart is started again; stopped containers whose policy says so
        (always, unless-stopped not stopped by hand, on-failure after a failure) are started.
        """
        docs = await asyncio.to_thread(self.d.meta.list, KIND)
        for doc in docs:
            if not isinstance(doc, dict) or "Id" not in doc:
                continue
            ct = Live(doc)
            self._by_id[ct.id] = ct
            self._names[ct.name] = ct.id
        to_start: list[Live] = []
        for ct in list(self._by_id.values()):
            try:
                await self._restore_one(ct, to_start)
            except Exception:
                log.exception("restoring container %s", ct.id[:12])
        for ct in to_start:
            self._spawn(self._start_on_boot(ct))

    async def _restore_one(self, ct: Live, to_start: list[Live]) -> None:
        st = ct.status
        rt = self.d.runtime
        if st in (Status.RUNNING, Status.PAUSED):
            rstate = await asyncio.to_thread(rt.state, ct.id)
            runc_status = (rstate or {}).get("status")
            if runc_status in ("running", "paused", "created"):
                ct.mounted = True
                if runc_status == "paused" and st == Status.RUNNING:
                    ct.doc["State"] = cs.apply(ct.state, Event.PAUSE, ct.id)
                elif runc_status == "running" and st == Status.PAUSED:
                    ct.doc["State"] = cs.apply(ct.state, Event.UNPAUSE, ct.id)
                ct.state["Pid"] = int((rstate or {}).get("pid") or ct.state.get("Pid") or 0)
                self._save(ct)
                ct.watcher = self._spawn(self._watch(ct))
                return
            ct.mounted = os.path.ismount(self.rootfs_path(ct.id))
            pending = ct.private.get("PendingExit")
            if isinstance(pending, list) and len(pending) == 2:  # killed while handling this exit
                async with ct.lock:
                    await self._handle_exit(ct, int(pending[0]), bool(pending[1]), at_daemon_start=True)
                return
            try:
                code, oom = await asyncio.wait_for(rt.wait_exit(ct.id), 5.0)
                async with ct.lock:
                    await self._handle_exit(ct, code, oom, at_daemon_start=True)
            except Exception as e:
                log.warning("container %s vanished without an exit status: %s", ct.id[:12], e)
                async with ct.lock:
                    await self._handle_exit(ct, 255, False, at_daemon_start=True)
                    ct.state["Error"] = "container exited while the daemon was down; exit status unknown"
                    self._save(ct)
            return
        if st == Status.RESTARTING:
            ct.mounted = os.path.ismount(self.rootfs_path(ct.id))
            ct.restart_task = self._spawn(
                self._restart_later(ct, float(ct.private.get("RestartDelay") or 0.1))
            )
            return
        if st == Status.REMOVING:
            ct.doc["State"] = cs.apply(ct.state, Event.REMOVE_FAILED, ct.id)
            self._save(ct)
            return
        if st in (Status.EXITED, Status.CREATED):
            if os.path.isdir(rt.conmon_dir(ct.id)):
                # killed between `runc create` and recording the start: the record keeps its state, and the
                # half-started runtime container (created, or already running unseen) is killed and deleted
                log.warning("removing the half-started runtime container of %s", ct.id[:12])
                try:
                    await rt.delete(ct.id, force=True)
                except Exception as e:
                    log.warning("deleting the runtime container of %s: %s", ct.id[:12], e)
                await self._teardown_network(ct)
                self._save(ct)
            ct.mounted = os.path.ismount(self.rootfs_path(ct.id))
            if ct.mounted:
                await self._unmount(ct)
            if ct.doc["HostConfig"].get("AutoRemove") and ct.private.get("StartedBefore"):
                self._spawn(self._auto_remove(ct))
                return
            policy = parse_policy(ct.doc["HostConfig"].get("RestartPolicy"))
            if restart_on_daemon_start(
                policy,
                exit_code=int(ct.state.get("ExitCode") or 0),
                manually_stopped=bool(ct.private.get("ManuallyStopped")),
                restart_count=int(ct.doc.get("RestartCount") or 0),
                started_before=bool(ct.private.get("StartedBefore")),
            ):
                to_start.append(ct)

    async def _start_on_boot(self, ct: Live) -> None:
        async with ct.lock:
            if ct.status not in (Status.EXITED, Status.CREATED) or ct.removed:
                return
            try:
                await self._start_locked(ct, auto=True)
            except Exception as e:
                log.warning("starting %s at daemon start: %s", ct.id[:12], e)

    async def close(self) -> None:
        """Stop watching (containers keep running under conmon)."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


# ---- helpers -------------------------------------------------------------------------------------


def _image_id(image: Any) -> str:
    for attr in ("id", "Id", "image_id"):
        value = getattr(image, attr, None)
        if value:
            return str(value)
    if isinstance(image, dict):
        return str(image.get("Id") or image.get("id") or "")
    return str(image)


def _read_pid(path: str) -> int:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _cgroups_path(host_config: dict[str, Any], cid: str) -> str:
    parent = str(host_config.get("CgroupParent") or "/gorae")
    if not parent.startswith("/"):
        parent = "/" + parent
    return parent.rstrip("/") + "/" + cid


def _start_exit_code(text: str, path: str) -> int:
    """docker's translateContainerdStartErr: 127 for a missing command, 126 for permission denied."""
    low = text.lower()
    if ("executable file not found" in low or "no such file or directory" in low) and (
        not path or path.lower() in low or "exec:" in low
    ):
        return 127
    if "permission denied" in low:
        return 126
    if "not a directory" in low:
        return 127
    return 128


def _start_error(err: GoraeError, ct: Live) -> GoraeError:
    text = err.stderr if isinstance(err, CommandFailed) else err.message
    text = text.strip()
    code = _start_exit_code(text, ct.doc.get("Path") or "")
    msg = f"failed to create task for container: OCI runtime create failed: {text}: unknown"
    if code in (126, 127):
        return InvalidParameter(msg)
    if isinstance(err, CommandFailed):
        return SystemError_(msg)
    return err


def _empty_stats(cid: str, name: str, prev: dict[str, Any] | None) -> dict[str, Any]:
    zero_cpu = {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    return {
        "read": cs.ZERO_TIME,
        "preread": (prev or {}).get("read", cs.ZERO_TIME),
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": None,
            "io_serviced_recursive": None,
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": zero_cpu,
        "precpu_stats": (prev or {}).get("cpu_stats", zero_cpu),
        "memory_stats": {},
        "name": name,
        "id": cid,
    }
