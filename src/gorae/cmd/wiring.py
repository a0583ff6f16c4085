"""The composition root: every service built on one data root and exec root, each handed exactly the
collaborators it uses, their start-up and shut-down order, and the API's routers over them.

`Services` is the record of what is wired to what; `build_api` puts a router over each service;
`gorae.cmd.daemon` starts the listeners. Start-up recovers networks (bridges, rules, held ports) before containers re-attach;
shut-down leaves containers running (conmon holds them) for the next start to re-attach (live restore).
Both metadata stores draw on one disk reserve on the data root (`store.reserve`); while it is released, a
background task re-makes it once space returns and then writes the container states a full disk deferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gorae.api.app import build_routes
from gorae.api.build import BuildRouter
from gorae.api.containers import ContainersRouter
from gorae.api.distribution import DistributionRouter
from gorae.api.exec import ExecRouter
from gorae.api.images import ImagesRouter
from gorae.api.networks import NetworksRouter
from gorae.api.router import Router
from gorae.api.secrets import SecretsRouter
from gorae.api.services import ServicesRouter
from gorae.api.swarm import SwarmRouter
from gorae.api.swarmlogs import SwarmLogsRouter
from gorae.api.system import DaemonFacts, SystemRouter
from gorae.api.volumes import VolumesRouter
from gorae.builder.service import BuildService
from gorae.builder.steps import Emit as BuildEmit
from gorae.builder.steps import Puller
from gorae.container.mounts import VolumeMounts
from gorae.container.service import ContainerService
from gorae.container.state import HAS_PROCESS
from gorae.daemon.config import DaemonConfig
from gorae.distribution.auth import AuthConfig
from gorae.distribution.hosts import DEFAULT_CERTS_DIRS, RegistryHosts
from gorae.distribution.service import DistributionService
from gorae.events import EventBus, Subscription
from gorae.httpserver.message import Request
from gorae.httpserver.router import MethodNotAllowed, RouteNotFound
from gorae.image.service import ImageService
from gorae.metrics.containers import ContainerCollector, ContainerInfo
from gorae.metrics.engine import UNMATCHED, EngineMetrics, route_of
from gorae.network.controller import NetworkController
from gorae.network.drivers.overlay import OverlayDriver
from gorae.network.names import network_names
from gorae.network.types import NetworkOptions
from gorae.runtime.conmon import ConmonRuntime
from gorae.snapshot.overlay import OverlaySnapshotter
from gorae.store.content import ContentStore
from gorae.store.metadata import MetadataStore
from gorae.store.reserve import DiskReserve
from gorae.swarm.agent.agent import Agent
from gorae.swarm.agent.files import TaskFiles
from gorae.swarm.agent.local import LocalExecutor
from gorae.swarm.dispatcher import Dispatcher, Orphaner
from gorae.swarm.logbroker import LogBroker
from gorae.swarm.logs import SwarmLogs
from gorae.swarm.manager import SwarmService
from gorae.swarm.networks.component import SwarmNetworks
from gorae.swarm.secrets import CONFIGS, SECRETS, SecretStore
from gorae.swarm.services.control import ServiceControl
from gorae.swarm.services.orchestrator import Orchestrator
from gorae.swarm.services.reaper import TaskReaper
from gorae.swarm.services.scheduler import Scheduler
from gorae.volume.local import VolumeService

log = logging.getLogger("gorae.daemon")

RESERVE_POLL = 1.0  # seconds between checks for returned space while the reserve is released


@dataclass(frozen=True)
class Services:
    config: DaemonConfig
    node_id: str  # docker's `ID` in /info, stable per data root
    started_at: float
    meta: MetadataStore
    content: ContentStore
    snapshotter: OverlaySnapshotter
    events: EventBus
    runtime: ConmonRuntime
    images: ImageService
    volumes: VolumeService
    networks: NetworkController
    containers: ContainerService
    reserve: DiskReserve
    builder: BuildService
    metrics: EngineMetrics
    distribution: DistributionService
    swarm: SwarmService
    swarm_secrets: SecretStore
    swarm_configs: SecretStore
    swarm_logs: SwarmLogs
    background: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Recover: layers a crash left half-applied go, networks next (containers re-attach into them), then
        containers."""
        await asyncio.to_thread(self.images.layers.collect_transient)
        await self.networks.init()
        await self.containers.restore()
        try:
            await self.swarm.start()
        except Exception:
            log.exception("could not rejoin the swarm (its etcd member did not start)")
        self.background.append(asyncio.ensure_future(self._keep_reserve()))

    async def shutdown(self) -> None:
        """Stop watching; leave containers running and their network state in place."""
        for task in self.background:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self.background.clear()
        await self.swarm.close()
        await self.containers.close()
        await self.networks.close()
        self.distribution.close()

    async def _keep_reserve(self) -> None:
        """While the disk reserve is released: re-make it when space returns, then write what was deferred."""
        repo = self.containers.repo
        while True:
            await asyncio.sleep(RESERVE_POLL)
            try:
                if not self.reserve.held and await asyncio.to_thread(self.reserve.replenish):
                    log.info("space returned on the data root: the disk reserve is back")
                if self.reserve.held and repo.pending:
                    left = repo.retry_pending()
                    if not left:
                        log.info("the container states a full disk deferred are written")
            except Exception:
                log.exception("keeping the disk reserve")

    def disk_usage(self) -> dict[str, Any]:
        """GET /system/df: images, containers (with sizes), volumes, build cache."""
        images, layers_size = self.images.disk_usage()
        containers = self.containers.summaries(include_stopped=True, size=True)  # newest first
        for img in images:
            img["Containers"] = sum(1 for c in containers if c.get("ImageID") == img["Id"])
        return {
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": [
                {
                    **v,
                    "UsageData": {
                        "Size": self.volumes.usage(v["Name"]),
                        "RefCount": len(self.containers.volume_users(v["Name"])),
                    },
                }
                for v in self.volumes.list()
            ],
            "BuildCache": self.builder.usage(),
        }


def build_services(config: DaemonConfig) -> Services:
    """Every service on `config`'s roots (made and locked by `gorae.daemon.roots` beforehand)."""
    root = config.data_root
    reserve = DiskReserve(root)
    reserve.replenish()
    meta = MetadataStore(os.path.join(root, "gorae.db"), on_full=reserve.release)
    content = ContentStore(os.path.join(root, "content"))
    snapshotter = OverlaySnapshotter(os.path.join(root, "overlay"), on_full=reserve.release)
    events = EventBus(meta)
    runtime = ConmonRuntime(config.exec_root, runc=config.runtime, conmon=config.conmon)
    containers: ContainerService | None = None

    def image_users(image_id: str) -> list[str]:  # late-bound: images and containers use each other
        return containers.image_users(image_id) if containers is not None else []

    def image_running(image_id: str) -> list[str]:
        return containers.image_running_users(image_id) if containers is not None else []

    def volume_users(name: str) -> list[str]:
        return containers.volume_users(name) if containers is not None else []

    images = ImageService(
        meta, content, snapshotter, os.path.join(root, "tmp"), publish=events.publish, usage=image_users,
        running=image_running,
    )
    hosts = RegistryHosts(
        insecure=list(config.insecure_registries),
        mirrors=list(config.registry_mirrors),
        certs_dirs=tuple(config.certs_dirs) if config.certs_dirs else DEFAULT_CERTS_DIRS,
    )
    metrics = EngineMetrics(
        states=lambda: containers.count_states() if containers is not None else {},
        subscribers=events.listener_count,
    )
    events.observers.append(metrics.on_event)
    distribution = DistributionService(images.store, content, meta, hosts, publish=events.publish, metrics=metrics)
    volumes = VolumeService(meta, os.path.join(root, "volumes"), users=volume_users, publish=events.publish)
    options = NetworkOptions(
        bip=config.bip,
        fixed_cidr=config.fixed_cidr,
        ipv6=bool(config.ipv6),
        fixed_cidr_v6=config.fixed_cidr_v6,
        ip6tables=bool(config.ip6tables),
        default_address_pools=list(config.default_address_pools or []),
        iptables=config.iptables is not False,
        ip_forward=config.ip_forward is not False,
        ip_masq=config.ip_masq is not False,
    )
    net_names = network_names(config)
    networks = NetworkController(meta, config.exec_root, options, net_names, publish=events.publish)
    networks.drivers.register(OverlayDriver(os.path.join(config.exec_root, "netns"), net_names.veth_prefix))
    containers = ContainerService(
        root=os.path.join(root, "containers"),
        store=meta,
        publish=events.publish,
        runtime=runtime,
        images=images,
        snapshotter=snapshotter,
        networks=networks,
        mounts=VolumeMounts(volumes),
        default_dns=list(config.dns),
        log_driver=config.log_driver,
        log_opts=dict(config.log_opts),
    )
    builder = BuildService(
        images=images,
        containers=containers,
        snapshotter=snapshotter,
        meta=meta,
        tmp=os.path.join(root, "tmp"),
        pull=_build_puller(distribution),
        metrics=metrics,
    )
    metrics.registry.register(
        ContainerCollector(
            lambda: running_containers(containers), labels=config.metrics_container_labels
        )
    )
    node_id = _engine_id(os.path.join(root, "engine-id"))
    metrics.set_daemon_id(node_id)
    swarm = _swarm(os.path.join(root, "swarm"), networks, os.path.join(config.exec_root, "swarm-keys"))
    data_key = swarm.data_key
    secrets = SecretStore(SECRETS, swarm.manager_store, data_key)
    configs = SecretStore(CONFIGS, swarm.manager_store, data_key)
    broker = LogBroker()
    dispatcher = Dispatcher(secrets, configs, broker)
    for name, op in dispatcher.ops().items():
        swarm.register_op(name, op)
    swarm.add_component(dispatcher)
    swarm.add_component(Orphaner(), leader_only=True)
    swarm.add_component(
        Agent(
            LocalExecutor(containers, distribution),
            TaskFiles(Path(config.exec_root) / "swarm"),
            _node_description,
        )
    )
    return Services(
        config=config,
        builder=builder,
        node_id=node_id,
        started_at=time.time(),
        meta=meta,
        content=content,
        snapshotter=snapshotter,
        events=events,
        runtime=runtime,
        images=images,
        volumes=volumes,
        networks=networks,
        containers=containers,
        reserve=reserve,
        metrics=metrics,
        distribution=distribution,
        swarm=swarm,
        swarm_secrets=secrets,
        swarm_configs=configs,
        swarm_logs=SwarmLogs(swarm.manager_store, broker),
    )


def _swarm(root: str, networks: NetworkController, run_dir: str) -> SwarmService:
    """This daemon's swarm side: the manager's services components (leader only) and the swarm networks."""
    swarm = SwarmService(root, _node_description, run_dir)
    for component in (Orchestrator(), Scheduler(), TaskReaper()):
        swarm.add_component(component, leader_only=True)
    swarm_networks = SwarmNetworks(networks)
    swarm_networks.register(swarm)
    swarm.add_component(swarm_networks)
    return swarm


def _node_description() -> dict[str, Any]:
    """A swarm node's Description: this host and engine, as dockerd reports them."""
    import platform
    import socket

    import gorae

    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    plugins = [("Log", d) for d in ("journald", "json-file", "local", "none", "syslog")]
    plugins += [("Network", d) for d in ("bridge", "host", "null")] + [("Volume", "local")]
    return {
        "Hostname": socket.gethostname(),
        "Platform": {"Architecture": platform.machine(), "OS": "linux"},
        "Resources": {
            "NanoCPUs": (os.cpu_count() or 1) * 1_000_000_000,
            "MemoryBytes": pages * os.sysconf("SC_PAGE_SIZE"),
        },
        "Engine": {
            "EngineVersion": gorae.__version__,
            "Plugins": [{"Type": t, "Name": n} for t, n in plugins],
        },
    }


AUTH_FIELDS = ("username", "password", "auth", "email", "serveraddress", "identitytoken", "registrytoken")


def _build_puller(distribution: DistributionService) -> Puller:
    """A build's FROM of an image not present pulls it (anonymously) through the registry client, its
    progress in the build's stream."""

    async def pull(name: str, emit: BuildEmit, auths: dict[str, dict[str, str]]) -> None:
        loop = asyncio.get_running_loop()
        ref = distribution.pull_reference(name, "")
        auth = AuthConfig()
        keys = [ref.domain, f"https://{ref.domain}", f"http://{ref.domain}"]
        if ref.domain == "docker.io":
            keys.insert(0, "https://index.docker.io/v1/")
        for key in keys:
            for host, fields in auths.items():
                if host.rstrip("/") == key.rstrip("/") or host.split("://")[-1].rstrip("/") == key:
                    auth = AuthConfig(**{k: v for k, v in fields.items() if k in AUTH_FIELDS})
                    break
            else:
                continue
            break

        async def forward(obj: dict[str, Any]) -> None:
            await emit(obj)

        def sync_emit(obj: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(forward(obj), loop).result()

        await asyncio.to_thread(distribution.pull, ref, auth, sync_emit, threading.Event(), None)

    return pull


def running_containers(containers: ContainerService) -> list[ContainerInfo]:
    """The containers with a process (running or paused), as the metrics collector sees them."""
    out = []
    for ct in containers.all():
        if ct.status not in HAS_PROCESS or not ct.book.cgroups_path:
            continue
        labels = ct.config.get("Labels") or {}
        out.append(
            ContainerInfo(
                id=ct.id,
                name=ct.name.lstrip("/"),
                image=str(ct.config.get("Image") or ""),
                cgroups_path=ct.book.cgroups_path,
                pid=int(ct.doc.get("State", {}).get("Pid") or 0),
                started_at=ct.book.started_ns / 1e9,
                labels={str(k): str(v) for k, v in labels.items()},
            )
        )
    return out


def api_metrics_hook(services: Services, router: Router) -> Callable[[Request, int, float], None]:
    """The Engine API's access hook: each request counted and timed by its route pattern."""
    metrics = services.metrics

    def hook(req: Request, status: int, seconds: float) -> None:
        try:
            _, params = router.resolve(req.method, req.path)
            route = route_of(req.path, params)
        except (RouteNotFound, MethodNotAllowed):
            route = UNMATCHED
        metrics.on_request(req.method, route, status, seconds)

    return hook


def _engine_id(path: str) -> str:
    """A stable identifier of this engine (docker's `ID` in /info), made once per data root."""
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
            if value:
                return value
    except OSError:
        pass
    value = str(uuid.uuid4())
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(value)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return value


class SystemFacts:
    """The API's `SystemBackend` (`/info`, `/events`, `/system/df`) over the services."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def daemon_facts(self) -> DaemonFacts:
        s, cfg = self._s, self._s.config
        return DaemonFacts(
            node_id=s.node_id,
            container_states=s.containers.count_states(),
            images=len(s.images.list(all=True)),
            event_listeners=s.events.listener_count(),
            debug=cfg.log_level == "debug",
            data_root=cfg.data_root,
            runtime_path=cfg.runtime,
            registry_mirrors=cfg.registry_mirrors,
            logging_driver=cfg.log_driver,
            insecure_registries=cfg.insecure_registries,
            init_binary=os.path.basename(cfg.init_path or "") or "docker-init",
            init_path=cfg.init_path or "",
        )

    def subscribe_events(self) -> Subscription:
        return self._s.events.subscribe()

    def event_history(self, since_ns: int, until_ns: int | None) -> list[dict[str, Any]]:
        return self._s.events.history(since_ns, until_ns)

    def disk_usage(self) -> dict[str, Any]:
        return self._s.disk_usage()


def build_api(services: Services) -> Router:
    """The Engine API's route table: one router per resource over its backend."""
    dist = DistributionRouter(services.distribution)
    return build_routes(
        [
            SystemRouter(SystemFacts(services), swarm=services.swarm),
            SwarmRouter(services.swarm),
            SecretsRouter(services.swarm_secrets, services.swarm_configs),
            SwarmLogsRouter(services.swarm_logs),
            ServicesRouter(ServiceControl(services.swarm.manager_store)),
            ContainersRouter(services.containers),
            ExecRouter(services.containers.execs),
            ImagesRouter(services.images, pull=dist.pull),
            dist,
            BuildRouter(services.builder),
            VolumesRouter(services.volumes),
            NetworksRouter(services.networks, services.containers),
        ]
    )
