"""--change lines for import/commit, and image model helpers."""

from __future__ import annotations

import pytest

from gorae.errors import InvalidParameter
from gorae.image.changes import apply_changes
from gorae.image.models import chain_ids, docker_config, unix_time


def test_cmd_entrypoint_forms() -> None:
    c = apply_changes({}, ['CMD ["sh", "-c", "echo hi"]'])
    assert c["Cmd"] == ["sh", "-c", "echo hi"]
    c = apply_changes({}, ["CMD echo hi there"])
    assert c["Cmd"] == ["/bin/sh", "-c", "echo hi there"]
    c = apply_changes({"Cmd": ["sh"]}, ['ENTRYPOINT ["/bin/app"]'])
    assert c["Entrypoint"] == ["/bin/app"] and c["Cmd"] is None
    c = apply_changes({"Cmd": ["sh"]}, ['CMD ["x"]', "ENTRYPOINT /bin/app"])
    assert c["Entrypoint"] == ["/bin/sh", "-c", "/bin/app"] and c["Cmd"] == ["x"]


def test_env_label_expose_volume_user_workdir() -> None:
    c = apply_changes(
        {"Env": ["A=1", "B=2"]},
        [
            "ENV A=10 C='x y'",
            "ENV D some value",
            'LABEL "com.x"="a b" k=v',
            "EXPOSE 80 53/udp 8000-8001",
            'VOLUME ["/data", "/logs"]',
            "VOLUME /more",
            "USER nobody",
            "WORKDIR /app",
            "WORKDIR sub",
            "STOPSIGNAL SIGINT",
            "HEALTHCHECK CMD curl -f x",
        ],
    )
    assert c["Env"] == ["B=2", "A=10", "C=x y", "D=some value"]
    assert c["Labels"] == {"com.x": "a b", "k": "v"}
    assert set(c["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert set(c["Volumes"]) == {"/data", "/logs", "/more"}
    assert c["User"] == "nobody"
    assert c["WorkingDir"] == "/app/sub"
    assert c["StopSignal"] == "SIGINT"
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f x"]}


@pytest.mark.parametrize(
    "line", ["RUN echo", "FROM x", "COPY a b", "EXPOSE abc", "EXPOSE 70000", "USER", "LABEL =x"]
)
def test_rejected(line: str) -> None:
    with pytest.raises(InvalidParameter):
        apply_changes({}, [line])


def test_input_not_mutated() -> None:
    base = {"Env": ["A=1"]}
    apply_changes(base, ["ENV B=2"])
    assert base == {"Env": ["A=1"]}


def test_chain_ids() -> None:
    a = "sha256:" + "a" * 64
    b = "sha256:" + "b" * 64
    ch = chain_ids([a, b])
    assert ch[0] == a
    import hashlib

    assert ch[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def test_times() -> None:
    assert unix_time("2024-01-02T03:04:05.123456789Z") == 1704164645
    assert unix_time("2024-01-02T03:04:05Z") == 1704164645
    assert unix_time(None) == 0 and unix_time("garbage") == 0


def test_docker_config_shape() -> None:
    c = docker_config({"Cmd": ["sh"], "ExposedPorts": {}, "StopSignal": "SIGINT"})
    assert list(c)[:3] == ["Hostname", "Domainname", "User"]
    assert c["Cmd"] == ["sh"] and c["Env"] is None
    assert "ExposedPorts" not in c and c["StopSignal"] == "SIGINT"
