"""The evaluator: one build, stage by stage, instruction by instruction, as dockerd's classic builder runs it.

Every step commits an image whose parent is the previous step's (metadata-only steps add no layer and are
marked `empty_layer`); RUN runs in a real container created through the container service on the previous
step's image, and its writable layer's diff becomes the layer; COPY/ADD/WORKDIR write into a created (never
started) container's rootfs through the in-root extraction of `docker cp`. A step is reused from the cache
(`BuildCache`) when its parent and recorded config match. Output goes to `emit` in the builder's JSON stream
shape; errors are raised (the caller reports them in-band)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, cast

from gorae.archive import tar_overlay_diff
from gorae.builder import context as ctx
from gorae.builder.cache import BuildCache
from gorae.builder.ctxindex import ContextIndex, Entry, content_hash
from gorae.builder.history import (
    PROXY_ARGS,
    go_quote,
    image_config,
    nop_cmd,
    nop_cmd_string,
    shell_of,
)
from gorae.builder.options import BuildOptions
from gorae.builder.parser import Dockerfile, Instruction, Stage
from gorae.builder.words import process_word, process_words
from gorae.container.service import ContainerService
from gorae.container.streams import LogOptions
from gorae.errors import GoraeError, InvalidParameter, NotFound
from gorae.image.service import ImageService
from gorae.snapshot.overlay import OverlaySnapshotter

Emit = Callable[[dict[str, Any]], Awaitable[None]]


class BuildContext(Protocol):
    """The received context: its index (names, checksums) and, on demand, its files on disk."""

    index: ContextIndex

    def files(self) -> str: ...


Puller = Callable[[str, Emit, dict[str, dict[str, str]]], Awaitable[None]]  # (image, emit, X-Registry-Config)


class StepFailed(GoraeError):
    """A RUN whose command exited non-zero (its code goes into errorDetail)."""

    status = 500

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StageState:
    image_id: str = ""
    parent_cfg: dict[str, Any] | None = None
    run: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in this stage
    name: str = ""
    author: str = ""  # MAINTAINER: the `author` of this and every later step's image
    cmd_set: bool = False  # a CMD in this stage (an ENTRYPOINT then keeps it; else it resets the base's)


def _env_dict(run: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in run.get("Env") or []:
        k, _, v = str(e).partition("=")
        out[k] = v
    return out


def _set_env(run: dict[str, Any], key: str, value: str) -> None:
    env = [e for e in (run.get("Env") or []) if str(e).partition("=")[0] != key]
    env.append(f"{key}={value}")
    run["Env"] = env


class Build:
    def __init__(
        self,
        *,
        images: ImageService,
        containers: ContainerService,
        snapshotter: OverlaySnapshotter,
        cache: BuildCache,
        context: BuildContext,
        dockerfile: Dockerfile,
        options: BuildOptions,
        emit: Emit,
        tmp: str,
        pull: Puller | None = None,
    ) -> None:
        self.images = images
        self.containers = containers
        self.snap = snapshotter
        self.cache = cache
        self.context = context
        self.df = dockerfile
        self.opts = options
        self._emit = emit
        self.tmp = tmp
        self.pull = pull
        self.stages: dict[str, StageState] = {}
        self.stage_list: list[StageState] = []
        self.meta_args: dict[str, str | None] = {}
        self.used_args: set[str] = set()
        self.made_containers: list[str] = []
        self.cache_from_ids: set[str] | None = None
        self.finished = False  # every step succeeded

    async def out(self, text: str) -> None:
        if not self.opts.quiet:
            await self._emit({"stream": text})

    # ---- the whole build -------------------------------------------------------------------------

    async def run(self) -> str:
        stages = list(self.df.stages)
        if self.opts.target:
            idx = [i for i, s in enumerate(stages) if s.name == self.opts.target.lower()]
            if not idx:
                raise InvalidParameter(f"failed to reach build target {self.opts.target} in Dockerfile")
            stages = stages[: idx[0] + 1]
        if self.opts.labels:
            label_args: list[str] = []
            for k, v in sorted(self.opts.labels.items()):
                label_args += [json.dumps(k), json.dumps(v)]
            text = "LABEL " + " ".join(f"{k}={v}" for k, v in sorted(self.opts.labels.items()))
            stages[-1] = Stage(
                stages[-1].source,
                stages[-1].base,
                stages[-1].name,
                stages[-1].platform,
                stages[-1].commands + [Instruction("LABEL", text, 0, tuple(label_args), {}, False)],
            )
        if self.opts.cache_from:
            self.cache_from_ids = set()
            for ref in self.opts.cache_from:
                with contextlib.suppress(NotFound):
                    self.cache_from_ids |= await asyncio.to_thread(self._ancestry, ref)
        total = len(self.df.meta_args) + len(stages) + sum(len(s.commands) for s in stages)
        n = 1
        for inst in self.df.meta_args:
            await self.out(f"Step {n}/{total} : {inst.original}")
            await self.out("\n")
            n += 1
            for k, v0 in self._arg_pairs(inst, self.meta_args):
                self.meta_args[k] = self.opts.build_args[k] if k in self.opts.build_args else v0
                if k in self.opts.build_args:
                    self.used_args.add(k)
        state = StageState()
        for stage in stages:
            await self.out(f"Step {n}/{total} : {stage.source.original}")
            await self.out("\n")
            n += 1
            state = await self._from(stage)
            await self.out(f" ---> {state.image_id.removeprefix('sha256:')[:12]}\n")
            for inst in stage.commands:
                await self.out(f"Step {n}/{total} : {inst.original}")
                await self.out("\n")
                n += 1
                await self.dispatch(state, inst)
                await self.out(f" ---> {state.image_id.removeprefix('sha256:')[:12]}\n")
            self.stage_list.append(state)
            if stage.name:
                self.stages[stage.name] = state
        unused = sorted(k for k in self.opts.build_args if k not in self.used_args and k not in PROXY_ARGS)
        if unused:
            await self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        if not state.image_id:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        self.finished = True
        return state.image_id

    def _ancestry(self, ref: str) -> set[str]:
        out: set[str] = set()
        img = self.images.resolve(ref)
        while True:
            out.add(img.id)
            if not img.parent:
                return out
            try:
                img = self.images.get(img.parent)
            except NotFound:
                return out

    # ---- FROM ------------------------------------------------------------------------------------

    async def _from(self, stage: Stage) -> StageState:
        meta_env = {k: v for k, v in self.meta_args.items() if v is not None}
        base = process_word(stage.base, meta_env, self.df.escape)
        state = StageState(name=stage.name)
        if base.lower() in self.stages:
            prev = self.stages[base.lower()]
            state.image_id, state.parent_cfg = prev.image_id, copy.deepcopy(prev.parent_cfg)
            state.run = copy.deepcopy(prev.run)
            # the previous stage's commits are this one's parent config
            if prev.image_id:
                state.parent_cfg = self.images.get(prev.image_id).config
            return state
        if base == "scratch":
            state.run = {}
            return state
        img = None
        if not self.opts.pull:
            with contextlib.suppress(NotFound):
                img = await asyncio.to_thread(self.images.resolve, base)
        if img is None:
            if self.pull is None:
                raise NotFound(
                    f"pull access denied for {base.split(':')[0]}, repository does not exist or may require "
                    "'docker login': gorae cannot pull from registries yet"
                )
            await self.pull(base, self._emit, self.opts.registry_auth)
            img = await asyncio.to_thread(self.images.resolve, base)
        state.image_id = img.id
        state.parent_cfg = img.config
        state.run = copy.deepcopy(img.config.get("config") or {})
        triggers = list(state.run.get("OnBuild") or [])
        state.run["OnBuild"] = None
        if triggers:
            from gorae.builder.parser import parse as parse_df

            await self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for t in triggers:
                parsed = parse_df("FROM scratch\n" + t + "\n").stages[0].commands
                for inst in parsed:
                    await self.dispatch(state, inst)
        return state

    # ---- dispatch --------------------------------------------------------------------------------

    def _scope(self, state: StageState) -> dict[str, str]:
        """Variables for substitution: the stage's ARG values (build args win), then ENV over them."""
        env: dict[str, str] = {}
        for k, v in state.args.items():
            if v is not None:
                env[k] = v
        env.update(_env_dict(state.run))
        return env

    def _sub(self, state: StageState, s: str) -> str:
        return process_word(s, self._scope(state), self.df.escape)

    async def dispatch(self, state: StageState, inst: Instruction) -> None:
        handler = getattr(self, "_i_" + inst.cmd.lower())
        await handler(state, inst)

    def _arg_pairs(self, inst: Instruction, _: dict[str, str | None]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for a in inst.args:
            k, eq, v = a.partition("=")
            if not k:
                raise InvalidParameter(f"dockerfile parse error line {inst.line}: ARG names can not be blank")
            out.append(
                (
                    k,
                    process_word(
                        v, {k2: v2 for k2, v2 in self.meta_args.items() if v2 is not None}, self.df.escape
                    )
                    if eq
                    else None,
                )
            )
        return out

    async def _commit_meta(self, state: StageState, comment: str) -> None:
        cc = copy.deepcopy(state.run)
        cc["Cmd"] = nop_cmd(state.run, comment)
        cc["Image"] = state.image_id
        if await self._probe(state, cc):
            return
        run = copy.deepcopy(state.run)
        run["Image"] = state.image_id
        await asyncio.to_thread(self._register, state, run, cc, None, 0, "")

    async def _probe(self, state: StageState, cc: dict[str, Any]) -> bool:
        if self.opts.no_cache:
            return False
        found = await asyncio.to_thread(self._cached, state.image_id, cc)
        if found is None:
            return False
        await self.out(" ---> Using cache\n")
        state.image_id, state.parent_cfg = found
        return True

    def _cached(self, parent: str, cc: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The cached image of a step and its config (one trip to the store's thread, blocking)."""
        hit = self.cache.probe(parent, cc, self.cache_from_ids)
        return None if hit is None else (hit, self.images.get(hit).config)

    def _register(
        self,
        state: StageState,
        run: dict[str, Any],
        cc: dict[str, Any],
        diff_id: str | None,
        size: int,
        cid: str,
    ) -> None:
        run = copy.deepcopy(run)
        run["Image"] = state.image_id
        empty = diff_id is None
        data = image_config(
            state.parent_cfg, run, cc, diff_id, container_id=cid, empty=empty, author=state.author
        )
        sizes: list[int] = []
        if state.image_id:
            sizes = list(self.images.get(state.image_id).layer_sizes)
        if not empty:
            sizes.append(size)
        iid = self.images.store.register(data, sizes, parent=state.image_id)
        self.cache.record(state.image_id, cc, iid)
        state.image_id = iid
        state.parent_cfg = self.images.get(iid).config

    # ---- metadata instructions ------------------------------------------------------------------

    async def _i_env(self, state: StageState, inst: Instruction) -> None:
        parts: list[str] = []
        a = list(inst.args)
        for i in range(0, len(a), 2):
            k = self._sub(state, a[i])
            v = self._sub(state, a[i + 1])
            if not k:
                raise InvalidParameter("ENV names can not be blank")
            _set_env(state.run, k, v)
            parts.append(f"{k}={v}")
        await self._commit_meta(state, "ENV " + " ".join(parts))

    async def _i_label(self, state: StageState, inst: Instruction) -> None:
        labels = dict(state.run.get("Labels") or {})
        a = list(inst.args)
        parts: list[str] = []
        if len(a) == 1:  # legacy `LABEL k v` arrives as one word
            k, _, v = a[0].partition(" ")
            a = [k, v]
        if len(a) % 2:
            raise InvalidParameter(f"dockerfile parse error line {inst.line}: LABEL must have two arguments")
        for i in range(0, len(a), 2):
            k, v = self._sub(state, a[i]), self._sub(state, a[i + 1])
            if not k:
                raise InvalidParameter("LABEL names can not be blank")
            labels[k] = v
            parts.append(f"{k}={v}")
        state.run["Labels"] = labels
        await self._commit_meta(state, "LABEL " + " ".join(parts))

    async def _i_maintainer(self, state: StageState, inst: Instruction) -> None:
        name = " ".join(inst.args)
        state.author = name
        await self._commit_meta(state, "MAINTAINER " + name)

    async def _i_expose(self, state: StageState, inst: Instruction) -> None:
        ports = dict(state.run.get("ExposedPorts") or {})
        specs: list[str] = []
        for word in inst.args:
            for p in process_words(word, self._scope(state), self.df.escape):
                port, _, proto = p.partition("/")
                proto = (proto or "tcp").lower()
                lo, _, hi = port.partition("-")
                if not lo.isdigit() or (hi and not hi.isdigit()):
                    raise InvalidParameter(f"Invalid containerPort: {port}")
                for n in range(int(lo), int(hi or lo) + 1):
                    ports[f"{n}/{proto}"] = {}
                specs.append(p)
        state.run["ExposedPorts"] = ports
        await self._commit_meta(state, "EXPOSE " + " ".join(sorted(f"{k}" for k in ports)))

    async def _i_volume(self, state: StageState, inst: Instruction) -> None:
        vols = dict(state.run.get("Volumes") or {})
        names: list[str] = []
        for word in inst.args:
            for v in (
                process_words(word, self._scope(state), self.df.escape)
                if not inst.json
                else [self._sub(state, word)]
            ):
                if not v.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                vols[v] = {}
                names.append(v)
        state.run["Volumes"] = vols
        await self._commit_meta(state, f"VOLUME [{' '.join(names)}]")

    async def _i_user(self, state: StageState, inst: Instruction) -> None:
        user = self._sub(state, inst.args[0])
        state.run["User"] = user
        await self._commit_meta(state, "USER " + user)

    async def _i_stopsignal(self, state: StageState, inst: Instruction) -> None:
        sig = self._sub(state, inst.args[0])
        state.run["StopSignal"] = sig
        await self._commit_meta(state, "STOPSIGNAL " + sig)

    async def _i_shell(self, state: StageState, inst: Instruction) -> None:
        state.run["Shell"] = list(inst.args)
        await self._commit_meta(state, "SHELL [" + " ".join(inst.args) + "]")  # Go's %v

    def _command(self, state: StageState, inst: Instruction) -> list[str]:
        if inst.json:
            return list(inst.args)
        return shell_of(state.run) + [" ".join(inst.args)]

    async def _i_cmd(self, state: StageState, inst: Instruction) -> None:
        cmd = self._command(state, inst)
        state.run["Cmd"] = cmd
        if not inst.json:
            state.run["ArgsEscaped"] = True
        await self._commit_meta(state, "CMD " + go_quote(cmd))
        state.cmd_set = True

    async def _i_entrypoint(self, state: StageState, inst: Instruction) -> None:
        ep = self._command(state, inst)
        if not inst.json and inst.args == ("",):
            ep = []
        state.run["Entrypoint"] = ep or None
        # docker: an ENTRYPOINT resets a CMD inherited from the base image (not one set in this Dockerfile)
        if not state.cmd_set:
            state.run["Cmd"] = None
        await self._commit_meta(state, "ENTRYPOINT " + go_quote(ep))

    async def _i_healthcheck(self, state: StageState, inst: Instruction) -> None:
        kind = inst.args[0].upper()
        if kind == "NONE":
            state.run["Healthcheck"] = {"Test": ["NONE"]}
        else:
            rest = list(inst.args[1:])
            test = ["CMD", *rest] if inst.json else ["CMD-SHELL", " ".join(rest)]
            hc: dict[str, Any] = {"Test": test}
            for flag, key in (
                ("interval", "Interval"),
                ("timeout", "Timeout"),
                ("start-period", "StartPeriod"),
                ("start-interval", "StartInterval"),
            ):
                if flag in inst.flags:
                    hc[key] = _duration_ns(inst.flags[flag], flag)
            if "retries" in inst.flags:
                try:
                    hc["Retries"] = int(inst.flags["retries"])
                except ValueError:
                    raise InvalidParameter(f"invalid retries: {inst.flags['retries']}") from None
            state.run["Healthcheck"] = hc
        h = state.run["Healthcheck"]
        await self._commit_meta(
            state,
            f'HEALTHCHECK &{{{go_quote(h["Test"])} "{_go_duration(h.get("Interval", 0))}" '
            f'"{_go_duration(h.get("Timeout", 0))}" "{_go_duration(h.get("StartPeriod", 0))}" '
            f"'\\x{h.get('Retries', 0):02x}'}}",
        )

    async def _i_onbuild(self, state: StageState, inst: Instruction) -> None:
        expr = inst.original.split(None, 1)[1].strip()
        state.run["OnBuild"] = list(state.run.get("OnBuild") or []) + [expr]
        await self._commit_meta(state, "ONBUILD " + expr)

    async def _i_arg(self, state: StageState, inst: Instruction) -> None:
        parts: list[str] = []
        for a in inst.args:
            k, eq, v = a.partition("=")
            value: str | None = self._sub(state, v) if eq else None
            if value is None and k in self.meta_args:
                value = self.meta_args[k]
            if k in self.opts.build_args:
                self.used_args.add(k)
                value = self.opts.build_args[k] if self.opts.build_args[k] is not None else value
            state.args[k] = value
            parts.append(f"{k}={v}" if eq else k)
        await self._commit_meta(state, "ARG " + " ".join(parts))

    # ---- RUN -------------------------------------------------------------------------------------

    def _build_arg_env(self, state: StageState) -> list[str]:
        env = _env_dict(state.run)
        out: list[str] = []
        for k, v in sorted(state.args.items()):
            if v is not None and k not in env:
                out.append(f"{k}={v}")
        for k in PROXY_ARGS:
            if k in self.opts.build_args and k not in state.args and self.opts.build_args[k] is not None:
                out.append(f"{k}={self.opts.build_args[k]}")
        return out

    async def _i_run(self, state: StageState, inst: Instruction) -> None:
        if not state.image_id:
            raise InvalidParameter("Please provide a source image with `from` prior to run")
        if inst.heredocs and not inst.json and inst.args and inst.args[0].startswith("<<"):
            cmd = shell_of(state.run) + [inst.heredocs[0][1]]  # `RUN <<EOF`: the body is the script
        elif inst.heredocs and not inst.json:
            # `RUN cat <<EOF > f`: the shell reads its own here-documents
            script = inst.args[0] + "\n" + "".join(body + name + "\n" for name, body in inst.heredocs)
            cmd = shell_of(state.run) + [script]
        else:
            cmd = self._command(state, inst)
        arg_env = self._build_arg_env(state)
        # the proxy args reach the RUN but, unless declared, neither its history nor its cache key (dockerd)
        saved = [e for e in arg_env if e.partition("=")[0] in state.args]
        save_cmd = ([f"|{len(saved)}", *saved] if saved else []) + cmd
        cc = copy.deepcopy(state.run)
        cc["Cmd"] = save_cmd
        cc["Image"] = state.image_id
        cc["Entrypoint"] = None
        if not inst.json:
            cc["ArgsEscaped"] = True
        if await self._probe(state, cc):
            return
        body = {
            "Image": state.image_id,
            "Cmd": cmd,
            "Entrypoint": [],
            "Env": list(state.run.get("Env") or []) + arg_env,
            "WorkingDir": state.run.get("WorkingDir") or "",
            "User": state.run.get("User") or "",
            "Labels": {},
            "Healthcheck": {"Test": ["NONE"]},
            "HostConfig": self._host_config(),
        }
        cid = await self._create(body)
        await self.out(f" ---> Running in {cid[:12]}\n")
        exited = self.containers.wait(cid, "next-exit")
        await self.containers.start(cid)
        stream = self.containers.logs(cid, LogOptions(follow=True))
        async for _, data in stream.chunks:
            await self.out(data.decode(errors="replace"))
        result = await exited
        code = int(result.get("StatusCode") or 0)
        if code:
            raise StepFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code)
        await self._commit_container(state, cid, cc)

    def _host_config(self) -> dict[str, Any]:
        hc: dict[str, Any] = {"NetworkMode": self.opts.network_mode or "default"}
        if self.opts.extra_hosts:
            hc["ExtraHosts"] = list(self.opts.extra_hosts)
        if self.opts.shm_size:
            hc["ShmSize"] = self.opts.shm_size
        return hc

    async def _create(self, body: dict[str, Any]) -> str:
        res = await self.containers.create(body)
        cid = str(res["Id"])
        self.made_containers.append(cid)
        return cid

    async def remove_container(self, cid: str) -> None:
        with contextlib.suppress(GoraeError):
            await self.containers.remove(cid, force=True)
        with contextlib.suppress(ValueError):
            self.made_containers.remove(cid)

    async def _commit_container(
        self, state: StageState, cid: str, cc: dict[str, Any], *, announce: bool = True
    ) -> None:
        ct = self.containers.get(cid)
        record = cid if announce else ""
        upper = self.snap.upper_dir(ct.book.snapshot)
        chains = self.images.get(state.image_id).chain_ids if state.image_id else []

        def commit() -> None:
            fd, path = tempfile.mkstemp(dir=self.tmp, prefix="build-")
            try:
                with os.fdopen(fd, "w+b") as f:
                    tar_overlay_diff(upper, f)
                    f.seek(0)
                    empty = _tar_empty(f)
                    f.seek(0)
                    if empty:
                        self._register(state, state.run, cc, None, 0, record)
                    else:
                        layer = self.images.layers.register(f, chains[-1] if chains else None)
                        self._register(state, state.run, cc, layer.diff_id, layer.size, record)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)

        await asyncio.to_thread(commit)
        if not announce:
            await self.remove_container(cid)
        elif self.opts.rm or self.opts.force_rm:
            await self.out(f"Removing intermediate container {cid[:12]}\n")
            await self.remove_container(cid)

    # ---- WORKDIR, COPY, ADD ------------------------------------------------------------------------

    async def _i_workdir(self, state: StageState, inst: Instruction) -> None:
        wd = self._sub(state, inst.args[0])
        wd = posixpath.normpath(posixpath.join(state.run.get("WorkingDir") or "/", wd))
        state.run["WorkingDir"] = wd
        if not state.image_id:
            await self._commit_meta(state, "WORKDIR " + wd)
            return
        cc = copy.deepcopy(state.run)
        cc["Cmd"] = nop_cmd_string(state.run, "WORKDIR " + wd)
        cc["Image"] = state.image_id
        if await self._probe(state, cc):
            return
        cid = await self._create(
            {
                "Image": state.image_id,
                "Cmd": cc["Cmd"],
                "Entrypoint": [],
                "HostConfig": {"NetworkMode": "none"},
            }
        )
        await self.out(f" ---> Running in {cid[:12]}\n")
        async with self.containers.rootfs(cid) as root:
            await asyncio.to_thread(_mkdir_in, root, wd)
        await self._commit_container(state, cid, cc)

    async def _i_copy(self, state: StageState, inst: Instruction) -> None:
        await self._copy(state, inst, add=False)

    async def _i_add(self, state: StageState, inst: Instruction) -> None:
        await self._copy(state, inst, add=True)

    async def _copy(self, state: StageState, inst: Instruction, *, add: bool) -> None:
        name = "ADD" if add else "COPY"
        words = [self._sub(state, w) for w in inst.args]
        chown = self._sub(state, inst.flags["chown"]) if "chown" in inst.flags else ""
        chmod = inst.flags.get("chmod", "")
        mode: int | None = None
        if chmod:
            try:
                mode = int(chmod, 8)
            except ValueError:
                raise InvalidParameter(f"invalid chmod parameter: {chmod}") from None
        heredoc_files: list[tuple[str, bytes]] = []
        if inst.heredocs:
            srcs = [w for w in words[:-1] if not w.startswith("<<")]
            heredoc_files = [(h[0], h[1].encode()) for h in inst.heredocs]
        else:
            srcs = words[:-1]
        dest = words[-1] if words else "/"
        if len(srcs) + len(heredoc_files) > 1 and not dest.endswith("/"):
            raise InvalidParameter(
                f"When using {name} with more than one source file, the destination must be a directory and end with a /"
            )
        wd = state.run.get("WorkingDir") or "/"
        abs_dest = dest if dest.startswith("/") else posixpath.join(wd, dest)
        if dest.endswith("/") or dest in (".", "./"):
            abs_dest = abs_dest.rstrip("/") + "/"
        src_from = inst.flags.get("from", "")
        from_context = not src_from and not (
            add and any(urllib.parse.urlparse(x).scheme in ("http", "https") for x in srcs)
        )
        index_hash = ""
        if from_context:  # the cache probe needs no files: checksums come from the context's index
            index_hash = await asyncio.to_thread(_index_hash, self.context.index, srcs, heredoc_files)
        async with contextlib.AsyncExitStack() as stack:
            if from_context:
                comment = f"{name} {'--chown=' + chown + ' ' if chown else ''}{index_hash} in {dest} "
                cc = copy.deepcopy(state.run)
                cc["Cmd"] = nop_cmd_string(
                    state.run, comment + (f"chmod={chmod} " if mode is not None else "")
                )
                cc["Image"] = state.image_id
                if await self._probe(state, cc):
                    return
            src_root = await asyncio.to_thread(self.context.files) if not src_from else ""
            if src_from:
                img_id = self._from_image(src_from)
                src_cid = await self._create(
                    {
                        "Image": img_id,
                        "Cmd": ["true"],
                        "Entrypoint": [],
                        "HostConfig": {"NetworkMode": "none"},
                    }
                )
                stack.push_async_callback(self.remove_container, src_cid)
                src_root = await stack.enter_async_context(self.containers.rootfs(src_cid))
            plan = await asyncio.to_thread(
                _Plan.make, src_root, srcs, heredoc_files, abs_dest, add and not src_from, self.tmp
            )
            stack.callback(plan.cleanup)
            if from_context:
                plan.hash = index_hash
            comment = f"{name} {'--chown=' + chown + ' ' if chown else ''}{plan.hash} in {dest} "
            run_cmd = nop_cmd_string(state.run, comment)
            cc = copy.deepcopy(state.run)
            cc["Cmd"] = run_cmd
            cc["Image"] = state.image_id
            if mode is not None:
                cc["Cmd"] = nop_cmd_string(state.run, comment + f"chmod={chmod} ")
            if not from_context and await self._probe(state, cc):
                return
            if not state.image_id:
                data = await asyncio.to_thread(plan.tar, None, chown, mode, None)
                layer = await asyncio.to_thread(self.images.layers.register, data, None)
                data.close()
                run = copy.deepcopy(state.run)
                await asyncio.to_thread(self._register, state, run, cc, layer.diff_id, layer.size, "")
                return
            cid = await self._create(
                {
                    "Image": state.image_id,
                    "Cmd": run_cmd,
                    "Entrypoint": [],
                    "HostConfig": {"NetworkMode": "none"},
                }
            )
            async with self.containers.rootfs(cid) as root:
                data = await asyncio.to_thread(plan.tar, root, chown, mode, root)
                try:
                    async with self.containers.extract_into(cid, "/") as extract:
                        await asyncio.to_thread(extract, data)
                finally:
                    data.close()
                for archive, into in plan.archives:
                    await asyncio.to_thread(_ensure_dir, root, into)
                    with open(archive, "rb") as f:
                        async with self.containers.extract_into(cid, into) as extract:
                            await asyncio.to_thread(extract, cast(BinaryIO, f))
            # COPY/ADD: no container recorded or announced (dockerd copies into a mount, not a container)
            await self._commit_container(state, cid, cc, announce=False)

    def _from_image(self, ref: str) -> str:
        if ref.lower() in self.stages:
            sid = self.stages[ref.lower()].image_id
            if not sid:
                raise InvalidParameter(f"stage {ref} has no image")
            return sid
        if ref.isdigit() and int(ref) < len(self.stage_list):
            return self.stage_list[int(ref)].image_id
        return self.images.resolve(ref).id


@dataclass
class _Plan:
    """What one COPY/ADD writes: (host source, destination path, is-dir-contents) items, local archives
    to extract (ADD), and the checksum that keys the cache."""

    items: list[tuple[str, str]]
    archives: list[tuple[str, str]]
    hash: str
    temp: list[str]

    @staticmethod
    def make(
        root: str, srcs: list[str], heredocs: list[tuple[str, bytes]], dest: str, add: bool, tmp: str
    ) -> _Plan:
        items: list[tuple[str, str]] = []
        archives: list[tuple[str, str]] = []
        hashes: list[str] = []
        temp: list[str] = []
        dest_is_dir = dest.endswith("/")
        for src in srcs:
            if add and urllib.parse.urlparse(src).scheme in ("http", "https"):
                path, fname = _download(src, tmp)
                temp.append(path)
                target = posixpath.join(dest, fname) if dest_is_dir else dest
                items.append((path, target))
                hashes.append(ctx.checksum(path))
                continue
            matched = ctx.match_sources(root, src)
            for rel in matched:
                host = ctx.resolve_in(root, rel)
                hashes.append(ctx.checksum(host))
                st = os.stat(host) if os.path.exists(host) else os.lstat(host)
                if stat.S_ISDIR(st.st_mode):
                    items.append((host + "/", dest.rstrip("/") or "/"))
                elif add and _is_archive(host):
                    archives.append((host, dest.rstrip("/") or "/"))
                else:
                    target = (
                        posixpath.join(dest, posixpath.basename(rel))
                        if dest_is_dir or len(matched) > 1
                        else dest
                    )
                    items.append((host, target))
        for name, content in heredocs:
            fd, path = tempfile.mkstemp(dir=tmp, prefix="heredoc-")
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(path, 0o644)
            temp.append(path)
            target = posixpath.join(dest, name) if dest_is_dir else dest
            items.append((path, target))
            hashes.append(ctx.checksum(path))
        h = hashes[0] if len(hashes) == 1 else "multi:" + hashlib.sha256("".join(hashes).encode()).hexdigest()
        return _Plan(items, archives, h, temp)

    def cleanup(self) -> None:
        for p in self.temp:
            with contextlib.suppress(OSError):
                os.unlink(p)

    def tar(self, dest_root: str | None, chown: str, mode: int | None, id_root: str | None) -> BinaryIO:
        uid, gid = _ids(chown, id_root) if chown else (0, 0)
        out = tempfile.TemporaryFile(dir=os.path.dirname(self.temp[0]) if self.temp else None)
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
            made: set[str] = set()

            def add_parents(rel: str) -> None:
                parts = rel.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d in made:
                        continue
                    made.add(d)
                    if dest_root is not None and os.path.lexists(ctx.resolve_in(dest_root, d)):
                        continue
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = (
                        tarfile.DIRTYPE,
                        0o755,
                        uid,
                        gid,
                        int(time.time()),
                    )
                    tf.addfile(ti)

            def add_one(host: str, rel: str) -> None:
                ti = tf.gettarinfo(host, arcname=rel)
                ti.uid, ti.gid, ti.uname, ti.gname = uid, gid, "", ""
                if mode is not None and not ti.issym():
                    ti.mode = mode
                if ti.isreg():
                    with open(host, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)

            for host, target in self.items:
                rel = target.lstrip("/")
                if host.endswith("/"):  # a directory: its contents under target
                    base = host.rstrip("/")
                    if rel:
                        add_parents(rel + "/x")
                        if dest_root is None or not os.path.isdir(ctx.resolve_in(dest_root, rel)):
                            add_one(base, rel)
                    for dirpath, dirnames, filenames in os.walk(base):
                        dirnames.sort()
                        for name in sorted(dirnames + filenames):
                            p = os.path.join(dirpath, name)
                            sub = os.path.relpath(p, base)
                            add_one(p, posixpath.join(rel, sub) if rel else sub)
                    continue
                if dest_root is not None and rel and not target.endswith("/"):
                    existing = ctx.resolve_in(dest_root, rel)
                    if os.path.isdir(existing) and not os.path.islink(existing):
                        rel = posixpath.join(rel, os.path.basename(host))
                add_parents(rel)
                add_one(host, rel)
        out.seek(0)
        return cast(BinaryIO, out)


def _index_hash(index: ContextIndex, srcs: list[str], heredocs: list[tuple[str, bytes]]) -> str:
    """A COPY/ADD's source checksum from the context's index (what `_Plan.make` would key the step by)."""
    hashes: list[str] = []
    for src in srcs:
        for rel in index.match(src):
            hashes.append(index.checksum(rel))
    for _, content in heredocs:
        e = Entry("file", 0o644, digest=content_hash(content).hexdigest())
        hashes.append("file:" + ContextIndex._entry_hash(e))
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256("".join(hashes).encode()).hexdigest()


def _ids(chown: str, root: str | None) -> tuple[int, int]:
    user, _, group = chown.partition(":")

    def lookup(name: str, path: str) -> int:
        if name.isdigit():
            return int(name)
        if root is not None:
            with contextlib.suppress(OSError):
                with open(ctx.resolve_in(root, path), encoding="utf-8", errors="replace") as f:
                    for line in f:
                        fields = line.rstrip("\n").split(":")
                        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
                            return int(fields[2])
        raise InvalidParameter(
            f"unable to convert uid/gid chown string to host mapping: can't find uid for user {name}"
        )

    uid = lookup(user, "/etc/passwd")
    gid = lookup(group, "/etc/group") if group else uid
    return uid, gid


def _is_archive(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _download(url: str, tmp: str) -> tuple[str, str]:
    name = posixpath.basename(urllib.parse.urlparse(url).path) or "index.html"
    fd, path = tempfile.mkstemp(dir=tmp, prefix="add-")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, os.fdopen(fd, "wb") as f:  # noqa: S310
            shutil.copyfileobj(resp, f)
            lm = resp.headers.get("Last-Modified")
        os.chmod(path, 0o600)
        if lm:
            with contextlib.suppress(TypeError, ValueError):
                t = email.utils.parsedate_to_datetime(lm).timestamp()
                os.utime(path, (t, t))
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise InvalidParameter(f"failed to GET {url}: {getattr(e, 'reason', None) or e}") from None
    return path, name


def _mkdir_in(root: str, path: str) -> None:
    host = ctx.resolve_in(root, path)
    os.makedirs(host, mode=0o755, exist_ok=True)


def _ensure_dir(root: str, path: str) -> None:
    _mkdir_in(root, path)


def _tar_empty(f: BinaryIO) -> bool:
    head = f.read(1024)
    return not head.strip(b"\0")


_UNITS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _duration_ns(text: str, flag: str) -> int:
    import re

    total = 0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise InvalidParameter(f'time: invalid duration "{text}"')
    return total


def _go_duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    s = ns / 1e9
    if s >= 60 and s % 60 == 0:
        m = int(s // 60)
        return f"{m // 60}h{m % 60}m0s" if m >= 60 else f"{m}m0s"
    return f"{s:g}s"
