"""Regenerate the Go-template golden files from the real docker CLI and dockerd.

Run as root: `python tests/golden/gotemplate/capture.py` (starts a private dockerd on temporary
roots, imports a busybox image, creates containers, records `docker inspect -f` / `docker ps
--format` output together with the JSON they were computed from, then stops dockerd and deletes
its roots). templates.txt lists more templates (one a line, `\\n` for a newline) run on the
same container. `--docker-host unix:///...` uses an already running daemon instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

# (object, template, missingkey mode to replay with)
CONTAINER_CASES: list[tuple[str, str]] = [
    ("{{.Name}}", "inspect"),
    ("{{.State.Status}}", "inspect"),
    ("{{.Config.Image}} {{.Path}} {{.Args}}", "inspect"),
    ("{{.Config.Labels}}", "inspect"),
    ('{{index .Config.Labels "com.example.k"}}', "inspect"),
    ("{{.Config.Labels.a}}|{{.Config.Labels.nope}}", "inspect"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "inspect"),
    ("{{range .Config.Env}}{{println .}}{{end}}", "inspect"),
    ('{{join .Config.Env ","}}', "inspect"),
    ("{{json .Config.Labels}}", "inspect"),
    ("{{json .Config.Cmd}} {{json .Config.Entrypoint}}", "inspect"),
    ("{{json .HostConfig.PortBindings}}", "inspect"),
    ("{{range $p, $b := .HostConfig.PortBindings}}{{$p}}->{{(index $b 0).HostPort}} {{end}}", "inspect"),
    ("{{len .Config.Env}} {{len .Config.Labels}} {{len .Name}}", "inspect"),
    ('{{if eq .State.Status "created" "exited"}}stopped{{else}}live{{end}}', "inspect"),
    ("{{if .State.Running}}up{{else if .State.Dead}}dead{{else}}down{{end}}", "inspect"),
    ("{{with .Config}}{{.Hostname}}/{{.WorkingDir}}/{{.User}}{{end}}", "inspect"),
    ("{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}", "default"),
    ('{{printf "%s is %s" .Name .State.Status}}', "inspect"),
    (
        '{{printf "%-10s|%5d|%05d|%x|%q" .Config.Image .State.ExitCode .HostConfig.ShmSize 255 .Name}}',
        "inspect",
    ),
    ("{{upper .State.Status}} {{lower .Config.Image}} {{title .State.Status}}", "inspect"),
    ("[{{pad .State.Status 2 3}}][{{pad .Config.User 2 3}}]", "inspect"),
    ("{{truncate .Id 12}} {{slice .Id 0 6}}", "inspect"),
    ('{{split (index .Config.Env 0) "="}} {{index (split (index .Config.Env 0) "=") 1}}', "inspect"),
    ("{{range $i, $e := .Config.Cmd}}{{if $i}} {{end}}{{$e}}{{end}}", "inspect"),
    ('{{$name := .Name}}{{$st := .State.Status}}{{$name}}:{{$st}}{{$st = "x"}}:{{$st}}', "inspect"),
    ('{{- .Name -}}\n   trimmed   {{- "!" }}  {{/* gone */}} end', "inspect"),
    ('{{define "lbl"}}<{{.}}>{{end}}{{template "lbl" .Config.Image}}{{template "lbl" .Driver}}', "inspect"),
    ('{{block "b" .State}}{{.Status}}/{{.ExitCode}}/{{.OOMKilled}}{{end}}', "inspect"),
    ("{{range .Mounts}}{{.Source}}{{else}}no mounts{{end}}", "inspect"),
    ("{{range $n, $c := .NetworkSettings.Networks}}{{$n}} {{end}}", "inspect"),
    ("{{eq .State.ExitCode 0}} {{lt (len .Config.Env) 5}} {{ge .HostConfig.ShmSize 1}}", "inspect"),
    ('{{and .Config.Tty "tty"}} {{or .Config.User "root"}} {{not .State.Running}}', "inspect"),
    ('{{html "<b>&"}} {{js .Name}} {{urlquery .Config.Image "&x y"}}', "inspect"),
    (
        "{{json .State.Status}} {{json .State.Pid}} {{json .Config.Tty}} {{json .HostConfig.LogConfig}}",
        "inspect",
    ),
    ("{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}", "inspect"),
    ("{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}", "inspect"),
    ("{{.Config.Entrypoint}} {{.Config.Cmd}} {{index .Config.Cmd 1}}", "inspect"),
    ('{{range .Config.Cmd}}{{if eq . "-c"}}{{continue}}{{end}}[{{.}}]{{break}}{{end}}', "inspect"),
    ("{{with $c := .Config}}{{$c.Image}}{{end}} {{$.Name}} {{with .State}}{{$.Driver}}{{end}}", "inspect"),
    ('{{print .State.Pid .State.ExitCode "a" 1}} {{println .Name 2}}', "inspect"),
    ('{{(printf "%d-%s" 7 .Name) | len}} {{.State.Status | printf "%q"}}', "inspect"),
    ("{{range 3}}{{.}}{{end}} {{range $i := 2}}{{$i}}{{end}}", "inspect"),
    ("{{.Nope}}", "inspect"),
    ("{{.Config.Nope}}", "inspect"),
    ("{{index .Config.Cmd 9}}", "inspect"),
    ("{{.Config.Cmd.X}}", "inspect"),
    ("{{.Name}", "inspect"),
    ("{{if .Name}}", "inspect"),
    ("{{range $x, $y, $z := .Config.Env}}{{end}}", "inspect"),
    ("{{nope .Name}}", "inspect"),
    ("{{lt .Name 1}}", "inspect"),
]

IMAGE_CASES: list[tuple[str, str]] = [
    ("{{.Id}}", "inspect"),
    ("{{.RepoTags}} {{index .RepoTags 0}}", "inspect"),
    ("{{.Os}}/{{.Architecture}} {{.Size}}", "inspect"),
    ("{{json .RootFS}} {{len .RootFS.Layers}}", "inspect"),
    ("{{.Config.Env}} {{.Config.Cmd}} {{.Config.Labels}}", "inspect"),
    ("{{range .RepoTags}}{{.}};{{end}}", "inspect"),
    ('{{printf "%.12s" .Id}} {{truncate (index (split .Id ":") 1) 12}}', "inspect"),
    ('{{json .Config.Labels}} {{index .Config.Labels "org.x"}}', "inspect"),
]

PS_FORMATS = [
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}",
    "table {{.Names}}\t{{.Labels}}\t{{.State}}",
    "{{.Names}}: {{.Ports}}",
    "table {{.ID}}",
    "table {{.Image}}\\t{{.Names}}\\t{{upper .State}}",
    "table   {{.Names}}\t{{json .Labels}}\t{{.ID}}  ",
]


def _docker(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOCKER_HOST=host)
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)


def _api(host: str, path: str) -> Any:
    sock = urllib.parse.urlparse(host).path
    out = subprocess.run(
        ["curl", "-s", "--unix-socket", sock, f"http://localhost{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _case(host: str, kind: str, obj: str, tmpl: str, mode: str) -> dict[str, Any]:
    r = _docker(host, kind, "inspect", "-f", tmpl, obj)
    if r.returncode == 0:
        return {"template": tmpl, "missingkey": mode, "output": r.stdout[:-1]}
    err = r.stderr.strip().splitlines()[-1].removeprefix("template parsing error: ")
    return {"template": tmpl, "missingkey": mode, "error": err}


def _setup(host: str, root: Path) -> None:
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for app in ("sh", "echo", "sleep", "true"):
        os.symlink("busybox", rootfs / "bin" / app)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    env = dict(os.environ, DOCKER_HOST=host)
    subprocess.run(
        ["docker", "import", "-c", "ENV PATH=/bin", "-c", "LABEL org.x=y", "-c", 'CMD ["sh"]', "-", "gtbb"],
        stdin=tar.stdout,
        check=True,
        env=env,
        capture_output=True,
    )
    tar.wait()
    _docker(host, "rm", "-f", "gtc", "gtc2")
    r = _docker(
        host,
        "create",
        "--name",
        "gtc",
        "-l",
        "a=b",
        "-l",
        "zeta=last",
        "-l",
        "com.example.k=v w",
        "-e",
        "FOO=bar",
        "-p",
        "8080:80",
        "-p",
        "53:53/udp",
        "--expose",
        "5000-5002",
        "--entrypoint",
        "sh",
        "gtbb",
        "-c",
        "echo hi",
    )
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    _docker(host, "create", "--name", "gtc2", "-l", "only=one", "gtbb")


def capture(host: str, root: Path) -> None:
    _setup(host, root)
    container = json.loads(_docker(host, "inspect", "gtc").stdout)[0]
    image = json.loads(_docker(host, "image", "inspect", "gtbb").stdout)[0]
    cases = {
        "container": {
            "data": container,
            "cases": [_case(host, "container", "gtc", t, m) for t, m in CONTAINER_CASES],
        },
        "image": {"data": image, "cases": [_case(host, "image", "gtbb", t, m) for t, m in IMAGE_CASES]},
    }
    literals = [line.rstrip("\n").replace("\\n", "\n") for line in (HERE / "templates.txt").open()]
    cases["literals"] = {
        "data": container,
        "cases": [_case(host, "container", "gtc", t, "inspect") for t in literals if t.strip()],
    }
    listing = [c for c in _api(host, "/containers/json?all=1") if c["Names"][0] in ("/gtc", "/gtc2")]
    names = ",".join(c["Names"][0][1:] for c in listing)
    ps = []
    for fmt in PS_FORMATS:
        args = ["ps", "-a", "--format", fmt]
        for n in names.split(","):
            args += ["--filter", f"name=^{n}$"]
        ps.append({"format": fmt, "output": _docker(host, *args).stdout})
    cases["ps"] = {"data": listing, "cases": ps}
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    _docker(host, "rm", "-f", "gtc", "gtc2")
    _docker(host, "rmi", "gtbb")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docker-host")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dref-"))
    proc = None
    try:
        host = args.docker_host
        if not host:
            sock = f"{root}.sock"
            host = f"unix://{sock}"
            proc = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root",
                    str(root / "data"),
                    "--exec-root",
                    str(root / "exec"),
                    "-H",
                    host,
                    "--iptables=false",
                    "--ip-masq=false",
                    "--ip-forward=false",
                    "--bridge=none",
                    "--pidfile",
                    str(root / "dockerd.pid"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(100):
                if _docker(host, "version").returncode == 0:
                    break
                time.sleep(0.2)
        capture(host, root)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
            Path(f"{root}.sock").unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
