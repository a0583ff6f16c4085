"""Record the Go-template goldens (cases.json) from the real docker CLI and a private dockerd.

Re-record everything with one command, as root (needs `docker`, `dockerd`, `curl` and /bin/busybox):

    python tests/golden/gotemplate/capture.py

It starts its own dockerd on temporary roots (/tmp/dref-*, an empty --config-file; `--iptables=false
--ip-masq=false --ip-forward=false --bridge=none`, so the host's firewall and bridges are left alone), imports
a busybox image, creates two containers, and runs `docker container inspect -f T`, `docker image inspect -f T` and
`docker ps -a --format F` with an empty DOCKER_CONFIG. For every case it stores docker's whole stdout,
stderr and exit status, together with the inspect/list JSON the CLI rendered them from; the file's
"recorded" entry names the docker CLI and dockerd versions and this command. dockerd is stopped and its
roots are removed at the end, also on failure. `--docker-host unix:///...` uses an already running daemon
instead (the file then names that daemon's version).

The templates: CONTAINER_CASES and IMAGE_CASES below, and templates.txt (one template a line, run on the
container, taken verbatim: a backslash sequence such as `\\n` reaches docker as typed; blank lines are
skipped). tests/unit/test_gotemplate_golden.py replays every case through what `gorae inspect -f` and
`gorae ps --format` run.
"""

from __future__ import annotations

import argparse
import datetime
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

CONTAINER_CASES: list[str] = [
    "{{.Name}}",
    "{{.State.Status}}",
    "{{.Config.Image}} {{.Path}} {{.Args}}",
    "{{.Config.Labels}}",
    '{{index .Config.Labels "com.example.k"}}',
    "{{.Config.Labels.a}}|{{.Config.Labels.nope}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
    "{{range .Config.Env}}{{println .}}{{end}}",
    '{{join .Config.Env ","}}',
    "{{json .Config.Labels}}",
    "{{json .Config.Cmd}} {{json .Config.Entrypoint}}",
    "{{json .HostConfig.PortBindings}}",
    "{{range $p, $b := .HostConfig.PortBindings}}{{$p}}->{{(index $b 0).HostPort}} {{end}}",
    "{{len .Config.Env}} {{len .Config.Labels}} {{len .Name}}",
    '{{if eq .State.Status "created" "exited"}}stopped{{else}}live{{end}}',
    "{{if .State.Running}}up{{else if .State.Dead}}dead{{else}}down{{end}}",
    "{{with .Config}}{{.Hostname}}/{{.WorkingDir}}/{{.User}}{{end}}",
    "{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}",
    '{{printf "%s is %s" .Name .State.Status}}',
    '{{printf "%-10s|%5d|%05d|%x|%q" .Config.Image .State.ExitCode .HostConfig.ShmSize 255 .Name}}',
    "{{upper .State.Status}} {{lower .Config.Image}} {{title .State.Status}}",
    "[{{pad .State.Status 2 3}}][{{pad .Config.User 2 3}}]",
    "{{truncate .Id 12}} {{slice .Id 0 6}}",
    '{{split (index .Config.Env 0) "="}} {{index (split (index .Config.Env 0) "=") 1}}',
    "{{range $i, $e := .Config.Cmd}}{{if $i}} {{end}}{{$e}}{{end}}",
    '{{$name := .Name}}{{$st := .State.Status}}{{$name}}:{{$st}}{{$st = "x"}}:{{$st}}',
    '{{- .Name -}}\n   trimmed   {{- "!" }}  {{/* gone */}} end',
    '{{define "lbl"}}<{{.}}>{{end}}{{template "lbl" .Config.Image}}{{template "lbl" .Driver}}',
    '{{block "b" .State}}{{.Status}}/{{.ExitCode}}/{{.OOMKilled}}{{end}}',
    "{{range .Mounts}}{{.Source}}{{else}}no mounts{{end}}",
    "{{range $n, $c := .NetworkSettings.Networks}}{{$n}} {{end}}",
    "{{eq .State.ExitCode 0}} {{lt (len .Config.Env) 5}} {{ge .HostConfig.ShmSize 1}}",
    '{{and .Config.Tty "tty"}} {{or .Config.User "root"}} {{not .State.Running}}',
    '{{html "<b>&"}} {{js .Name}} {{urlquery .Config.Image "&x y"}}',
    "{{json .State.Status}} {{json .State.Pid}} {{json .Config.Tty}} {{json .HostConfig.LogConfig}}",
    "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
    "{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}",
    "{{.Config.Entrypoint}} {{.Config.Cmd}} {{index .Config.Cmd 1}}",
    '{{range .Config.Cmd}}{{if eq . "-c"}}{{continue}}{{end}}[{{.}}]{{break}}{{end}}',
    "{{with $c := .Config}}{{$c.Image}}{{end}} {{$.Name}} {{with .State}}{{$.Driver}}{{end}}",
    '{{print .State.Pid .State.ExitCode "a" 1}} {{println .Name 2}}',
    '{{(printf "%d-%s" 7 .Name) | len}} {{.State.Status | printf "%q"}}',
    "{{range 3}}{{.}}{{end}} {{range $i := 2}}{{$i}}{{end}}",
    "{{.Nope}}",
    "{{.Config.Nope}}",
    "{{index .Config.Cmd 9}}",
    "{{.Config.Cmd.X}}",
    "{{.Name}",
    "{{if .Name}}",
    "{{range $x, $y, $z := .Config.Env}}{{end}}",
    "{{nope .Name}}",
    "{{lt .Name 1}}",
]

IMAGE_CASES: list[str] = [
    "{{.Id}}",
    "{{.RepoTags}} {{index .RepoTags 0}}",
    "{{.Os}}/{{.Architecture}} {{.Size}}",
    "{{json .RootFS}} {{len .RootFS.Layers}}",
    "{{.Config.Env}} {{.Config.Cmd}} {{.Config.Labels}}",
    "{{range .RepoTags}}{{.}};{{end}}",
    '{{printf "%.12s" .Id}} {{truncate (index (split .Id ":") 1) 12}}',
    '{{json .Config.Labels}} {{index .Config.Labels "org.x"}}',
]

# (docker ps flags, --format): run on the two containers, in the API's order
PS_CASES: list[tuple[tuple[str, ...], str]] = [
    ((), "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}"),
    ((), "table {{.Names}}\t{{.Labels}}\t{{.State}}"),
    ((), "{{.Names}}: {{.Ports}}"),
    ((), "table {{.ID}}"),
    ((), "table {{.Image}}\\t{{.Names}}\\t{{upper .State}}"),
    ((), "table   {{.Names}}\t{{json .Labels}}\t{{.ID}}  "),
    ((), "{{.ID}} {{ .Names }}|{{.State}}\\t{{.Image}}"),
    ((), 'table {{.Names}}\t{{.Label "com.example.k"}}\t{{.Label "only"}}'),
    ((), "{{.Names}} {{.Mounts}} {{.LocalVolumes}} {{.Networks}} {{.Size}}"),
    (("--no-trunc",), "table {{.ID}}\t{{.Command}}\t{{.Names}}"),
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


def _result(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {"stdout": r.stdout, "stderr": r.stderr, "status": r.returncode}


def _case(host: str, kind: str, obj: str, tmpl: str) -> dict[str, Any]:
    return {"template": tmpl, **_result(_docker(host, kind, "inspect", "-f", tmpl, obj))}


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
    container = json.loads(_docker(host, "container", "inspect", "gtc").stdout)[0]
    image = json.loads(_docker(host, "image", "inspect", "gtbb").stdout)[0]
    literals = [line.rstrip("\n") for line in (HERE / "templates.txt").open(encoding="utf-8")]
    version = json.loads(_docker(host, "version", "--format", "{{json .}}").stdout)
    cases: dict[str, Any] = {
        "recorded": {
            "command": "python tests/golden/gotemplate/capture.py",
            "date": datetime.date.today().isoformat(),
            "docker": version["Client"]["Version"],
            "dockerd": version["Server"]["Version"],
            "api": version["Server"]["ApiVersion"],
        },
        "container": {
            "data": container,
            "cases": [_case(host, "container", "gtc", t) for t in CONTAINER_CASES],
        },
        "image": {"data": image, "cases": [_case(host, "image", "gtbb", t) for t in IMAGE_CASES]},
        "literals": {
            "data": container,
            "cases": [_case(host, "container", "gtc", t) for t in literals if t.strip()],
        },
    }
    listing = [c for c in _api(host, "/containers/json?all=1&size=1") if c["Names"][0] in ("/gtc", "/gtc2")]
    ps = []
    for flags, fmt in PS_CASES:
        args = ["ps", "-a", *flags, "--format", fmt]
        for c in listing:
            args += ["--filter", f"name=^{c['Names'][0][1:]}$"]
        ps.append({"flags": list(flags), "format": fmt, **_result(_docker(host, *args))})
    cases["ps"] = {"data": listing, "cases": ps}
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _docker(host, "rm", "-f", "gtc", "gtc2")
    _docker(host, "rmi", "gtbb")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docker-host", help="record against this running daemon instead of a private dockerd")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dref-"))
    os.environ["DOCKER_CONFIG"] = str(root / "docker-config")  # no psFormat etc. from ~/.docker
    (root / "docker-config").mkdir()
    os.environ.pop("DOCKER_CONTEXT", None)
    proc = None
    try:
        host = args.docker_host
        if not host:
            host = f"unix://{root}.sock"
            (root / "daemon.json").write_text("{}")
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
                    "--config-file",  # not the host's /etc/docker/daemon.json
                    str(root / "daemon.json"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(300):
                if _docker(host, "version").returncode == 0:
                    break
                if proc.poll() is not None:
                    raise SystemExit(f"dockerd exited with status {proc.returncode}")
                time.sleep(0.2)
            else:
                raise SystemExit("dockerd did not answer within 60 s")
        capture(host, root)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for sub in ("exec", "data"):
                subprocess.run(["umount", "-R", "-l", str(root / sub)], capture_output=True)
            Path(f"{root}.sock").unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
