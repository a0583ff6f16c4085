"""`gorae build`: the context (a directory with its .dockerignore applied as the docker CLI applies it, a
tar on stdin, or a Dockerfile on stdin) sent to `POST /build`, and the classic builder's output shown as
`docker build` (with `DOCKER_BUILDKIT=0`) shows it."""

from __future__ import annotations

import json
import os
import secrets
import sys
import tarfile
import tempfile

from gorae.cli.context import StatusError
from gorae.cli.flags import O, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any

    from gorae.cli.context import Cli

BUILD = Spec(
    "build",
    "[OPTIONS] PATH | URL | -",
    "Build an image from a Dockerfile",
    [
        O("build-arg", None, "list", "Set build-time variables"),
        O("cache-from", None, "list", "Images to consider as cache sources", type_name="strings"),
        O("compress", None, help="Compress the build context using gzip"),
        O("file", "f", "string", "Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
        O("force-rm", None, help="Always remove intermediate containers"),
        O("iidfile", None, "string", "Write the image ID to the file"),
        O("isolation", None, "string", "Container isolation technology"),
        O("label", None, "list", "Set metadata for an image"),
        O(
            "network",
            None,
            "string",
            "Set the networking mode for the RUN instructions during build",
            default_text='"default"',
        ),
        O("no-cache", None, help="Do not use cache when building the image"),
        O("platform", None, "string", "Set platform if server is multi-platform capable"),
        O("pull", None, help="Always attempt to pull a newer version of the image"),
        O("quiet", "q", help="Suppress the build output and print image ID on success"),
        O(
            "rm",
            None,
            help="Remove intermediate containers after a successful build",
            default=True,
            default_text="true",
        ),
        O("shm-size", None, "string", "Size of /dev/shm", type_name="bytes"),
        O("tag", "t", "list", "Name and optionally a tag in the 'name:tag' format"),
        O("target", None, "string", "Set the target build stage to build."),
        O("add-host", None, "list", "Add a custom host-to-IP mapping (host:ip)"),
    ],
    min_args=1,
    max_args=1,
)


def _patterns(ctx: str) -> list[Any]:
    from gorae.dockerignore import parse

    try:
        with open(os.path.join(ctx, ".dockerignore"), encoding="utf-8", errors="replace") as f:
            return parse(f.read())
    except OSError:
        return []


def context_tar(
    ctx: str, dockerfile_rel: str | None, extra: tuple[str, bytes] | None, out: IO[bytes], gz: bool
) -> None:
    """Write the build context of directory `ctx` as a tar to `out` (the docker CLI's rules: .dockerignore
    applied, the Dockerfile and .dockerignore always sent)."""
    from gorae.dockerignore import excluded

    pats = _patterns(ctx)
    keep = {"Dockerfile", ".dockerignore"}
    if dockerfile_rel:
        keep.add(dockerfile_rel)
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(ctx):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, ctx).replace(os.sep, "/")
                if rel not in keep and pats and excluded(pats, rel):
                    if name in dirnames and not any(p.exclusion for p in pats):
                        dirnames.remove(name)
                    continue
                try:
                    ti = tf.gettarinfo(full, arcname=rel)
                except OSError as e:
                    raise StatusError(1, f"error checking context: '{e.strerror}'.") from None
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                if ti.isreg():
                    try:
                        with open(full, "rb") as f:
                            tf.addfile(ti, f)
                    except PermissionError:
                        raise StatusError(1, f"error checking context: 'can't stat '{full}''.") from None
                elif ti.isdir() or ti.issym() or ti.islnk():
                    tf.addfile(ti)
        if extra is not None:
            ti = tarfile.TarInfo(extra[0])
            ti.size, ti.mode = len(extra[1]), 0o600
            import io

            tf.addfile(ti, io.BytesIO(extra[1]))


def _git_clone(url: str) -> tuple[str, str]:
    """Clone `url` (`#ref:subdir` as docker reads it) into a temporary directory, as the docker CLI does:
    (the clone, the context in it)."""
    from gorae import gitcontext
    from gorae.errors import GoraeError

    try:
        return gitcontext.clone(url)
    except GoraeError as e:
        raise StatusError(
            1, f"unable to prepare context: unable to 'git clone' to temporary context directory: {e.message}"
        ) from None


def _download(url: str, cli: Cli) -> bytes:
    """A remote context (a tar, maybe compressed, or a Dockerfile), fetched here as the docker CLI does."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - the user's URL
            if resp.status >= 400:
                raise StatusError(
                    1, f"unable to prepare context: unable to download remote context {url}: {resp.status}"
                )
            return bytes(resp.read())
    except urllib.error.HTTPError as e:
        raise StatusError(
            1, f"unable to prepare context: unable to download remote context {url}: {e.code} {e.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as e:
        raise StatusError(
            1, f"unable to prepare context: unable to download remote context {url}: {e}"
        ) from None


def _kv_list(items: list[str], env: bool) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        k, eq, v = item.partition("=")
        out[k] = v if eq else (os.environ.get(k) if env else "")
    return out


def _messages(stream: Iterator[Any], codes: list[int], texts: list[str]) -> Iterator[Any]:
    for msg in stream:
        if isinstance(msg, dict) and isinstance(msg.get("stream"), str):
            texts.append(msg["stream"])
        if isinstance(msg, dict) and isinstance(msg.get("errorDetail"), dict):
            code = msg["errorDetail"].get("code")
            if isinstance(code, int) and code > 0:
                codes.append(code)
        yield msg


def cmd_build(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.progress import show_progress
    from gorae.client.errors import StreamError

    src = args[0]
    params: list[tuple[str, Any]] = []
    dockerfile = v["file"] or ""
    body = tempfile.TemporaryFile()
    clone_dir = ""
    try:
        remote_data: bytes | None = None
        from gorae.gitcontext import is_git_url

        if is_git_url(src):  # as the docker CLI: cloned here, sent as a directory context
            clone_dir, src = _git_clone(src)
        elif src.startswith(("http://", "https://")):
            remote_data = _download(src, cli)
        if src == "-" or remote_data is not None:
            data = sys.stdin.buffer.read() if remote_data is None else remote_data
            if (
                data[257:262] == b"ustar"
                or data[:2] == b"\x1f\x8b"
                or data[:3] == b"BZh"
                or data[:6] == b"\xfd7zXZ\x00"
            ):
                body.write(data)
            else:  # a Dockerfile on stdin: an empty context
                with tarfile.open(fileobj=body, mode="w") as tf:
                    import io

                    ti = tarfile.TarInfo("Dockerfile")
                    ti.size, ti.mode = len(data), 0o600
                    tf.addfile(ti, io.BytesIO(data))
                dockerfile = "Dockerfile"
        else:
            if not os.path.isdir(src):
                raise StatusError(1, f'unable to prepare context: path "{src}" not found')
            extra = None
            rel = None
            if dockerfile == "-":
                name = ".dockerfile." + secrets.token_hex(10)
                extra, dockerfile = (name, sys.stdin.buffer.read()), name
            elif dockerfile:
                abs_df = os.path.abspath(dockerfile)
                abs_ctx = os.path.abspath(src)
                if not os.path.isfile(abs_df):
                    raise StatusError(
                        1,
                        f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {abs_df}: no such file or directory",
                    )
                if abs_df.startswith(abs_ctx + os.sep):
                    rel = os.path.relpath(abs_df, abs_ctx).replace(os.sep, "/")
                    dockerfile = rel
                else:
                    name = ".dockerfile." + secrets.token_hex(10)
                    with open(abs_df, "rb") as f:
                        extra = (name, f.read())
                    dockerfile = name
            elif not os.path.exists(os.path.join(src, "Dockerfile")):
                raise StatusError(
                    1,
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat "
                    f"{os.path.join(os.path.abspath(src), 'Dockerfile')}: no such file or directory",
                )
            context_tar(src, rel, extra, body, v["compress"])
        size = body.tell()
        body.seek(0)
        if not v["quiet"]:
            from gorae.cli.formatting import human_size

            cli.out.write(f"Sending build context to Docker daemon  {human_size(size)}\n")
        if dockerfile:
            params.append(("dockerfile", dockerfile))
        for t in v["tag"]:
            params.append(("t", t))
        if v["build_arg"]:
            params.append(("buildargs", json.dumps(_kv_list(v["build_arg"], env=True))))
        if v["label"]:
            params.append(("labels", json.dumps(_kv_list(v["label"], env=False))))
        if v["cache_from"]:
            params.append(("cachefrom", json.dumps(v["cache_from"])))
        for key, flag in (("target", "target"), ("networkmode", "network"), ("platform", "platform"),
                          ("isolation", "isolation")):  # fmt: skip
            if v[flag]:
                params.append((key, v[flag]))
        if v["shm_size"]:
            from gorae.cli.opts import ram_in_bytes

            params.append(("shmsize", ram_in_bytes(v["shm_size"])))
        if v["add_host"]:
            params.append(("extrahosts", ",".join(v["add_host"])))
        params += [
            ("nocache", 1 if v["no_cache"] else None),
            ("pull", 1 if v["pull"] else None),
            ("q", 1 if v["quiet"] else None),
            ("rm", 1 if v["rm"] else 0),
            ("forcerm", 1 if v["force_rm"] else None),
        ]
        image_id: list[str] = []

        def on_aux(aux: Any) -> None:
            if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                image_id.append(aux["ID"])

        resp = cli.api.request(
            "POST",
            "/build",
            [(k, val) for k, val in params if val is not None],
            data=body,
            headers={"Content-Type": "application/x-tar"},
        )
        codes: list[int] = []
        quiet_out: list[str] = []  # docker -q: the daemon's stream text (the image ID) printed at the end
        try:
            show_progress(
                _messages(resp.iter_json(), codes, quiet_out), cli.out, quiet=v["quiet"], on_aux=on_aux
            )
        except StreamError as e:
            raise StatusError(codes[-1] if codes else 1, str(e)) from None
    finally:
        body.close()
        if clone_dir:
            import shutil

            shutil.rmtree(clone_dir, ignore_errors=True)
    if v["quiet"]:
        text = "".join(quiet_out)
        cli.out.write(text)
        if not image_id and text.strip().startswith("sha256:"):
            image_id.append(text.strip())
    if v["iidfile"] and image_id:
        with open(v["iidfile"], "w", encoding="ascii") as idf:
            idf.write(image_id[-1])
    return 0


BUILDER_PRUNE = Spec(
    "builder prune",
    "",
    "Remove build cache",
    [
        O("all", "a", help="Remove all unused build cache, not just dangling ones"),
        O("filter", None, "list", 'Provide filter values (e.g. "until=24h")', type_name="filter"),
        O("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)


def cmd_builder_prune(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.lifecycle import confirm
    from gorae.cli.formatting import human_size

    text = (
        "WARNING! This will remove all build cache."
        if v["all"]
        else "WARNING! This will remove all dangling build cache."
    ) + "\nAre you sure you want to continue?"
    if not v["force"] and not confirm(cli, text):
        return 0
    doc = cli.api.post_json("/build/prune", {"all": 1 if v["all"] else None}) or {}
    deleted = doc.get("CachesDeleted") or []
    if deleted:
        cli.print("Deleted build cache objects:")
        for d in deleted:
            cli.print(d)
        cli.print()
    cli.print(f"Total reclaimed space: {human_size(doc.get('SpaceReclaimed') or 0)}")
    return 0


COMMANDS = {"build": (BUILD, cmd_build), "builder prune": (BUILDER_PRUNE, cmd_builder_prune)}
