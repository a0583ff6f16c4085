"""`gorae deploy init|ls|log|rollback` and `deploy hook` (what the repository's pre-receive hook runs): the
flags and output. The work is `gorae.deploy`'s; this module turns the repository's `gorae.*` settings into a
container create body with the same parsers `gorae run` uses."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.opts import OptError, parse_duration, parse_env_list, parse_ports, parse_volumes, read_kv_file

INIT = Spec(
    "deploy init",
    "[OPTIONS] PATH",
    "Create (or adopt) a git repository whose pushes deploy an application",
    [
        O("bare", None, help="Create a bare repository", default=True, default_text="true"),
        O("branch", None, "string", "The branch whose pushes deploy", default="main"),
        O("dockerfile", None, "string", 'The Dockerfile\'s path in the repository (default "Dockerfile")'),
        O("env", "e", "list", "Set environment variables"),
        O("env-file", None, "list", "Read in a file of environment variables (read at every deploy)"),
        O("health-cmd", None, "string", "Command to run to check health"),
        O("health-interval", None, "string", "Time between running the check (ms|s|m|h)", default="1s"),
        O("health-retries", None, "int", "Consecutive failures needed to report unhealthy", default=3),
        O("keep", None, "int", "How many previous images to keep for rollback", default=3),
        O("name", None, "string", "Application name (image repository and container name prefix)"),
        O("network", None, "string", "Connect the container to a network"),
        O(
            "port-handover",
            None,
            help="Move the published ports to the new container without closing them (gorae's extension); "
            "false: stop the old container, then start the new one",
            default=True,
            default_text="true",
        ),
        O("publish", "p", "list", "Publish a container's port(s) to the host"),
        O("ready-timeout", None, "string", "How long a new version has to become healthy", default="60s"),
        O("registry", None, "string", "Also push each image to this registry (host:port)"),
        O("replicas", None, "int", "Number of tasks (with --service)", default=1),
        O(
            "service",
            None,
            help="Deploy as a Swarm service (this daemon must be a manager): start-first rolling updates, "
            "ports published through the routing mesh",
        ),
        O("stop-timeout", None, "int", "Seconds to wait for the old container to stop", default=10),
        O("volume", "v", "list", "Bind mount a volume"),
    ],
    min_args=1,
    max_args=1,
)
LS = Spec("deploy ls", "", "List deployed applications", [], max_args=0)
LOG = Spec(
    "deploy log",
    "NAME",
    "Show an application's deploys: commit, image, time, result",
    [],
    min_args=1,
    max_args=1,
)
ROLLBACK = Spec(
    "deploy rollback",
    "[OPTIONS] NAME",
    "Serve a previous version again",
    [O("to", None, "string", "The commit (or its prefix) to go back to (default: the previous version)")],
    min_args=1,
    max_args=1,
)
HOOK = Spec(
    "deploy hook", "", "Deploy the pushed commit (run by the repository's pre-receive hook)", [], max_args=0
)

# git config key (under gorae.) -> the flag it keeps
_KEYS = {
    "name": "name",
    "publish": "publish",
    "env": "env",
    "envfile": "env_file",
    "volume": "volume",
    "network": "network",
    "dockerfile": "dockerfile",
    "branch": "branch",
    "healthcmd": "health_cmd",
    "healthinterval": "health_interval",
    "healthretries": "health_retries",
    "readytimeout": "ready_timeout",
    "keep": "keep",
    "registry": "registry",
    "stoptimeout": "stop_timeout",
    "porthandover": "port_handover",
    "service": "service",
    "replicas": "replicas",
}
_LISTS = {"publish", "env", "env_file", "volume"}


def _fail(msg: str, status: int = 1) -> StatusError:
    return StatusError(status, f"gorae deploy: {msg}")


def target_from(settings: dict[str, list[str]]) -> Any:
    """The repository's settings (git config gorae.*) → a deploy Target; raises OptError/ValueError."""
    from gorae.deploy.target import Target

    v: dict[str, Any] = {}
    for key, flag in _KEYS.items():
        vals = settings.get(key) or []
        v[flag] = vals if flag in _LISTS else (vals[-1] if vals else None)
    if not v["name"]:
        raise ValueError("the repository has no gorae.name (run `gorae deploy init` on it)")
    from gorae.deploy.state import check_name

    name = check_name(v["name"])
    env = parse_env_list(v["env"])
    for path in v["env_file"]:
        env += read_kv_file(path, env=True)
    exposed, bindings = parse_ports(v["publish"], [])
    binds, vols = parse_volumes(v["volume"])
    body: dict[str, Any] = {"Env": env, "ExposedPorts": exposed, "Volumes": vols or None}
    hc: dict[str, Any] = {"PortBindings": bindings, "Binds": binds}
    if v["network"]:
        hc["NetworkMode"] = v["network"]
    body["HostConfig"] = hc
    if v["health_cmd"]:
        body["Healthcheck"] = {
            "Test": ["CMD-SHELL", v["health_cmd"]],
            "Interval": int(parse_duration(v["health_interval"] or "1s") * 1e9),
            "Retries": int(v["health_retries"] or 3),
        }
    service: dict[str, Any] = {}
    if (v["service"] or "false") == "true":
        service = service_fragment(body, v["publish"], v["volume"], v["network"], int(v["replicas"] or 1))
    return Target(
        service=service,
        name=name,
        body=body,
        dockerfile=v["dockerfile"] or "",
        branch=v["branch"] or "main",
        keep=int(v["keep"] if v["keep"] is not None else 3),
        registry=v["registry"] or "",
        health_timeout=parse_duration(v["ready_timeout"] or "60s"),
        stop_timeout=int(v["stop_timeout"] if v["stop_timeout"] is not None else 10),
        port_handover=(v["port_handover"] or "true") == "true",
    )


def service_fragment(
    body: dict[str, Any], publish: list[str], volumes: list[str], network: str | None, replicas: int
) -> dict[str, Any]:
    """The ServiceSpec parts of an app deployed with --service: its container settings as a ContainerSpec
    (`-v` as Mounts), `-p` as routing-mesh PortConfigs (the docker CLI's `service create -p` parser), the
    network, the replica count. Raises OptError/ValueError."""
    from gorae.cli.swarmopts import parse_publish

    if replicas < 0:
        raise ValueError("--replicas cannot be negative")
    cs: dict[str, Any] = {}
    if body.get("Env"):
        cs["Env"] = list(body["Env"])
    if body.get("Healthcheck"):
        cs["Healthcheck"] = dict(body["Healthcheck"])
    mounts = [volume_mount(v) for v in volumes]
    if mounts:
        cs["Mounts"] = mounts
    ports = [p for value in publish for p in parse_publish(value)]
    out: dict[str, Any] = {"ContainerSpec": cs, "Ports": ports, "Replicas": replicas}
    if network:
        out["Networks"] = [{"Target": network, "Aliases": []}]
    return out


def volume_mount(value: str) -> dict[str, Any]:
    """`-v` (`[src:]dst[:ro|rw]`) → a service Mount: an absolute source is a bind, a name a volume."""
    parts = value.split(":")
    if len(parts) == 1:
        if not value.startswith("/"):
            raise OptError(f"invalid mount config: {value}: the target must be an absolute path")
        return {"Type": "volume", "Target": value}
    src, dst, mode = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
    if not dst.startswith("/"):
        raise OptError(f"invalid mount config: {value}: the target must be an absolute path")
    modes = set(mode.split(",")) if mode else set()
    if modes - {"ro", "rw", "z", "Z"}:
        raise OptError(f"invalid mode: {mode}")
    m: dict[str, Any] = {"Type": "bind" if src.startswith("/") else "volume", "Source": src, "Target": dst}
    if "ro" in modes:
        m["ReadOnly"] = True
    return m


def cmd_init(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.deploy import gitrepo
    from gorae.deploy.state import App, state_dir

    if not v["name"]:
        raise _fail("--name is required")
    path = os.path.abspath(args[0])
    env = parse_env_list(v["env"])  # a bare `-e KEY` takes its value now, from this environment
    settings: dict[str, list[str]] = {
        "name": [v["name"]],
        "publish": v["publish"],
        "env": env,
        "envFile": [os.path.abspath(p) for p in v["env_file"]],
        "volume": v["volume"],
        "network": [v["network"]] if v["network"] else [],
        "dockerfile": [v["dockerfile"]] if v["dockerfile"] else [],
        "branch": [v["branch"]],
        "healthCmd": [v["health_cmd"]] if v["health_cmd"] else [],
        "healthInterval": [v["health_interval"]],
        "healthRetries": [str(v["health_retries"])],
        "readyTimeout": [v["ready_timeout"]],
        "keep": [str(v["keep"])],
        "registry": [v["registry"]] if v["registry"] else [],
        "stopTimeout": [str(v["stop_timeout"])],
        "portHandover": ["true" if v["port_handover"] else "false"],
        "service": ["true" if v["service"] else "false"],
        "replicas": [str(v["replicas"])],
    }
    try:
        if v["keep"] < 0:
            raise ValueError("--keep cannot be negative")
        target_from(
            {k.lower(): vals for k, vals in settings.items()}
        )  # every value checked before anything is made
        app = App(v["name"])
    except (OptError, ValueError) as e:
        raise _fail(str(e)) from None
    if app.exists() and os.path.realpath(app.git_dir) != os.path.realpath(gitrepo.git_dir_of(path) or path):
        raise _fail(f"application {v['name']!r} is already deployed from {app.git_dir}")
    try:
        git_dir, created = gitrepo.create_or_adopt(path, v["branch"], v["bare"])
        gitrepo.set_config(git_dir, settings)
        host = cli.api.host.url
        hook = gitrepo.install_hook(git_dir, gitrepo.hook_text(state_dir(), host))
    except gitrepo.GitError as e:
        raise _fail(str(e)) from None
    app.create(git_dir)
    cli.print(
        f"{'Created' if created else 'Adopted'} {path} for {v['name']}: pushes to {v['branch']} deploy it"
    )
    cli.print(f"hook: {hook}")
    return 0


def cmd_hook(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.client.errors import APIError, ConnectionFailed, ProtocolError
    from gorae.deploy import gitrepo
    from gorae.deploy.engine import DeployError, sha7
    from gorae.deploy.state import App

    git_dir = os.path.abspath(os.environ.get("GIT_DIR") or ".")
    out = cli.err  # the pusher sees both; stderr is unbuffered
    try:
        target = target_from(gitrepo.get_config(git_dir))
    except (OptError, ValueError, gitrepo.GitError) as e:
        raise _fail(f"{e}; push refused") from None
    want = f"refs/heads/{target.branch}"
    pushes = [p for p in gitrepo.parse_push_lines(sys.stdin.read()) if p[2] == want]
    if not pushes:
        return 0
    old, new, ref = pushes[-1]
    if new == gitrepo.ZERO:
        out.write(f"gorae deploy: {ref} deleted; the deployed version keeps serving\n")
        return 0
    app = App(target.name)
    if not app.exists():
        app.create(git_dir)

    def waiting() -> None:
        out.write("gorae deploy: waiting for the deploy in progress to finish\n")
        out.flush()

    with app.lock(on_wait=waiting) as lock:
        if _parent_is_git():  # git receive-pack: held until this push's ref update is done
            lock.hold_until_exit(os.getppid())
        try:
            now = gitrepo.git(["rev-parse", "--verify", "-q", ref], git_dir=git_dir).strip()
        except gitrepo.GitError:
            now = gitrepo.ZERO
        if now != old:
            raise _fail(
                f"{ref} moved to {sha7(now)} while this push waited (another push deployed it); "
                f"fetch, merge and push again. Push refused; {target.name}:{sha7(now)} keeps serving"
            )
        blocked = gitrepo.checkout_blocks_push(git_dir, ref)
        if blocked:
            raise _fail(f"{blocked}; push refused (nothing was built)")
        d = _deployer(cli, app, target, out)
        try:
            try:
                image = d.build(git_dir, new, ref)
            except (DeployError, APIError, ConnectionFailed, ProtocolError) as e:
                msg = str(e) if isinstance(e, DeployError) else f"build failed: {e}"
                app.record({"seq": app.next_seq(), "commit": new, "image": f"{target.name}:{sha7(new)}",
                            "kind": "push", "result": "failed", "error": msg})  # fmt: skip
                raise DeployError(msg) from None
            line = d.release(image, new, "push")
        except DeployError as e:
            cur = app.current()
            keeps = f"{cur['image']} keeps serving" if cur else "nothing was deployed"
            raise _fail(f"{e}\ngorae deploy: push refused; {keeps}") from None
    out.write(line + "\n")
    return 0


def _deployer(cli: Cli, app: Any, target: Any, out: Any) -> Any:
    """The container-mode Deployer, or with --service the one that deploys a Swarm service."""
    from gorae.deploy.engine import Deployer
    from gorae.deploy.service import ServiceDeployer

    return (ServiceDeployer if target.service else Deployer)(cli.api, app, target, out)


def _parent_is_git() -> bool:
    try:
        with open(f"/proc/{os.getppid()}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip().startswith("git")
    except OSError:
        return False


def cmd_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.output import since, tabwrite
    from gorae.client.errors import APIError
    from gorae.deploy.state import all_apps

    rows = ["NAME\tIMAGE\tCOMMIT\tSTATE\tDEPLOYED\tREPOSITORY"]
    for app in all_apps():
        cur = app.current() or {}
        state = "-"
        if cur.get("service"):
            state = _service_state(cli, str(cur["service"]))
        elif cur.get("container"):
            try:
                info = cli.api.get_json(f"/containers/{cur['container']}/json")
                st = info.get("State") or {}
                state = str(st.get("Status") or "")
                if (st.get("Health") or {}).get("Status"):
                    state += f" ({st['Health']['Status']})"
            except APIError as e:
                state = "missing" if e.status == 404 else "?"
        rows.append(
            "\t".join(
                [
                    app.name,
                    str(cur.get("image") or "-"),
                    str(cur.get("commit") or "-")[:7],
                    state,
                    since(float(cur["time"])) if cur.get("time") else "-",
                    app.git_dir,
                ]
            )
        )
    cli.out.write(tabwrite(rows))
    return 0


def _service_state(cli: Cli, name: str) -> str:
    """`service (2/2)`: the service's running tasks out of its replicas, as `docker service ls` counts."""
    import json

    from gorae.client.errors import APIError

    try:
        svc = cli.api.get_json(f"/services/{name}")
        flt = json.dumps({"service": [svc["ID"]], "desired-state": ["running"]})
        tasks = cli.api.get_json("/tasks", {"filters": flt}) or []
    except APIError as e:
        return "missing" if e.status == 404 else "?"
    want = ((svc.get("Spec") or {}).get("Mode") or {}).get("Replicated", {}).get("Replicas", 0)
    running = sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "running")
    return f"service({running}/{want})"


def _app(name: str) -> Any:
    from gorae.deploy.state import App

    try:
        app = App(name)
    except ValueError as e:
        raise _fail(str(e)) from None
    if not app.exists():
        raise _fail(f"no such application: {name}")
    return app


def cmd_log(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.output import tabwrite

    app = _app(args[0])
    rows = ["TIME\tCOMMIT\tIMAGE\tKIND\tRESULT\tDETAIL"]
    for h in reversed(app.history()):
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h.get("time") or 0)))
        detail = str(h.get("error") or "").splitlines()[0] if h.get("error") else ""
        rows.append(
            "\t".join(
                [
                    t,
                    str(h.get("commit") or "")[:7],
                    str(h.get("image") or ""),
                    str(h.get("kind") or ""),
                    str(h.get("result") or ""),
                    detail[:100],
                ]
            )  # fmt: skip
        )
    cli.out.write(tabwrite(rows))
    return 0


def cmd_rollback(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.client.errors import APIError
    from gorae.deploy import gitrepo
    from gorae.deploy.engine import DeployError
    from gorae.deploy.state import App

    app: App = _app(args[0])
    try:
        target = target_from(gitrepo.get_config(app.git_dir))
    except (OptError, ValueError, gitrepo.GitError) as e:
        raise _fail(str(e)) from None
    with app.lock(on_wait=lambda: cli.eprint("gorae deploy: waiting for the deploy in progress to finish")):
        cur = app.current() or {}
        served = [h for h in reversed(app.history()) if h.get("result") in ("deployed", "rolled back")]
        to = v["to"] or ""
        pick = None
        for h in served:
            commit, image = str(h.get("commit") or ""), str(h.get("image") or "")
            if (to and commit.startswith(to)) or (not to and image != cur.get("image")):
                try:
                    cli.api.get_json(f"/images/{image}/json")
                except APIError:
                    continue
                pick = h
                break
        if pick is None:
            what = f"a kept image of commit {to}" if to else "a previous version whose image is kept"
            raise _fail(f"{app.name} has no {what}")
        d = _deployer(cli, app, target, cli.err)
        try:
            line = d.release(str(pick["image"]), str(pick["commit"]), "rollback")
        except DeployError as e:
            raise _fail(
                f"{e}\ngorae deploy: rollback failed; {cur.get('image') or 'nothing'} keeps serving"
            ) from None
    cli.print(line)
    return 0


COMMANDS = {
    "deploy init": (INIT, cmd_init),
    "deploy ls": (LS, cmd_ls),
    "deploy log": (LOG, cmd_log),
    "deploy rollback": (ROLLBACK, cmd_rollback),
    "deploy hook": (HOOK, cmd_hook),
}
