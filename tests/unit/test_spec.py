"""build_spec: Docker Config/HostConfig -> OCI spec, as a pure function of inputs and rootfs files."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.runtime import seccomp
from gorae.runtime.caps import ALL_CAPS, DEFAULT_CAPS, compute_caps
from gorae.runtime.rootfs_files import read_in_root, resolve_in_root
from gorae.runtime.spec import DEFAULT_PATH, build_spec, cgroup_rules, default_nofile
from gorae.runtime.users import resolve_user


@pytest.fixture
def rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
        "# comment\n"
        "broken-line\n"
    )
    (r / "etc" / "group").write_text(
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app,root\nstaff:x:50:app\n"
    )
    return str(r)


def spec(rootfs, config=None, hc=None, **kw):
    args = dict(
        rootfs=rootfs,
        hostname_path="/h/hostname",
        hosts_path="/h/hosts",
        resolv_path="/h/resolv.conf",
        cgroups_path="/gorae/abc",
        netns_path=None,
        extra_mounts=[],
    )
    args.update(kw)
    return build_spec({"Cmd": ["sh"], **(config or {})}, hc or {}, **args)


def mount(s, dest):
    found = [m for m in s["mounts"] if m["destination"] == dest]
    assert len(found) <= 1
    return found[0] if found else None


def test_defaults(rootfs):
    s = spec(rootfs, {"Hostname": "h1"})
    p = s["process"]
    assert p["args"] == ["sh"]
    assert p["cwd"] == "/"
    assert p["terminal"] is False
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}
    assert p["env"] == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h1", "HOME=/root"]
    assert p["capabilities"]["bounding"] == list(DEFAULT_CAPS) and len(DEFAULT_CAPS) == 14
    assert p["noNewPrivileges"] is False
    assert {"type": "RLIMIT_NOFILE", "soft": default_nofile(), "hard": default_nofile()} in p["rlimits"]
    assert s["hostname"] == "h1"
    assert s["root"] == {"path": rootfs, "readonly": False}
    lx = s["linux"]
    assert [n["type"] for n in lx["namespaces"]] == ["pid", "ipc", "uts", "mount", "network"]
    assert lx["cgroupsPath"] == "/gorae/abc"
    assert "/proc/kcore" in lx["maskedPaths"] and "/proc/sys" in lx["readonlyPaths"]
    assert lx["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert mount(s, "/dev/shm")["options"][-1] == f"size={64 * 1024 * 1024}"
    assert "ro" in mount(s, "/sys")["options"] and "ro" in mount(s, "/sys/fs/cgroup")["options"]
    assert mount(s, "/dev/pts")["type"] == "devpts" and mount(s, "/dev/mqueue")["type"] == "mqueue"
    assert mount(s, "/etc/hosts") == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/h/hosts",
        "options": ["rbind", "rprivate"],
    }
    assert mount(s, "/etc/resolv.conf")["source"] == "/h/resolv.conf"
    assert mount(s, "/etc/hostname")["source"] == "/h/hostname"
    assert lx["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    json.dumps(s)  # serialisable


def test_entrypoint_cmd_combination(rootfs):
    assert spec(rootfs, {"Entrypoint": ["/bin/echo"], "Cmd": ["a", "b"]})["process"]["args"] == [
        "/bin/echo",
        "a",
        "b",
    ]
    assert spec(rootfs, {"Entrypoint": ["/e"], "Cmd": None})["process"]["args"] == ["/e"]
    with pytest.raises(InvalidParameter, match="No command specified"):
        build_spec(
            {"Cmd": [], "Entrypoint": None},
            {},
            rootfs=rootfs,
            hostname_path=None,
            hosts_path=None,
            resolv_path=None,
            cgroups_path="x",
            netns_path=None,
            extra_mounts=[],
        )


def test_env_override_tty_and_home(rootfs):
    s = spec(rootfs, {"Tty": True, "Env": ["PATH=/x", "A=1", "HOME=/h", "NOEQ"], "User": "app"})
    assert s["process"]["env"] == ["PATH=/x", "TERM=xterm", "A=1", "HOME=/h"]
    assert s["process"]["terminal"] is True


@pytest.mark.parametrize(
    "user,expect",
    [
        # moby: the primary gid first, then /etc/group memberships (implicit form only)
        ("", (0, 0, [0, 10], "/root")),
        ("app", (1000, 1000, [1000, 10, 50], "/home/app")),
        ("1000", (1000, 1000, [1000, 10, 50], "/home/app")),
        ("4242", (4242, 0, [0], "/")),
        ("4242:77", (4242, 77, [77], "/")),
        ("app:staff", (1000, 50, [50], "/home/app")),
        ("nobody:nogroup", (65534, 65534, [65534], "/nonexistent")),
        ("0:0", (0, 0, [0], "/root")),
    ],
)
def test_users(rootfs, user, expect):
    u = resolve_user(rootfs, user)
    assert (u.uid, u.gid, u.additional_gids, u.home) == expect


def test_user_errors_and_group_add(rootfs):
    with pytest.raises(InvalidParameter, match="unable to find user ghost"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(InvalidParameter, match="unable to find group nope"):
        resolve_user(rootfs, "app:nope")
    assert resolve_user(rootfs, "nobody", ["staff", "99"]).additional_gids == [65534, 50, 99]
    # --group-add keeps the primary gid (docker: `-u 1000:1000 --group-add 50` gives groups=50,1000)
    assert resolve_user(rootfs, "1000:1000", ["50"]).additional_gids == [1000, 50]


def test_passwd_symlink_cannot_escape(tmp_path):
    outside = tmp_path / "host-passwd"
    outside.write_text("evil:x:0:0::/evil:/bin/sh\n")
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    os.symlink(str(outside), r / "etc" / "passwd")  # absolute: must resolve inside the rootfs
    (r / "etc" / "group").symlink_to("../../../../../../host-passwd")
    assert read_in_root(str(r), "/etc/passwd") is None
    assert resolve_in_root(str(r), "/etc/passwd") == str(r) + str(outside)
    assert resolve_in_root(str(r), "/etc/group").startswith(str(r))
    with pytest.raises(InvalidParameter):
        resolve_user(str(r), "evil")
    # a symlink that stays inside works
    (r / "real").mkdir()
    (r / "real" / "passwd").write_text("x:x:5:6::/home/x:/bin/sh\n")
    os.remove(r / "etc" / "passwd")
    os.symlink("/real/passwd", r / "etc" / "passwd")
    u = resolve_user(str(r), "x")
    assert (u.uid, u.gid) == (5, 6)


def test_symlink_loop(tmp_path):
    r = tmp_path / "r"
    (r / "etc").mkdir(parents=True)
    os.symlink("passwd", r / "etc" / "passwd")
    assert read_in_root(str(r), "/etc/passwd") is None


def test_caps():
    assert compute_caps(["net_admin"], ["CAP_CHOWN", "mknod"], False)[-1] == "CAP_NET_ADMIN"
    c = compute_caps(["NET_ADMIN"], ["chown"], False)
    assert "CAP_CHOWN" not in c and "CAP_NET_ADMIN" in c
    assert compute_caps(["ALL"], [], False) == list(ALL_CAPS)
    assert compute_caps(["kill"], ["all"], False) == ["CAP_KILL"]
    assert compute_caps([], [], True) == list(ALL_CAPS)
    with pytest.raises(InvalidParameter, match="unknown capability"):
        compute_caps(["bogus"], [], False)


def test_privileged(rootfs):
    s = spec(rootfs, hc={"Privileged": True})
    lx = s["linux"]
    assert "seccomp" not in lx and "maskedPaths" not in lx and "readonlyPaths" not in lx
    assert lx["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert any(d["path"] == "/dev/null" for d in lx["devices"])
    assert s["process"]["capabilities"]["bounding"] == list(ALL_CAPS)
    assert "ro" not in mount(s, "/sys")["options"]


def test_resources(rootfs):
    hc = {
        "Memory": 100 << 20,
        "MemoryReservation": 50 << 20,
        "NanoCpus": 1_500_000_000,
        "CpuShares": 512,
        "CpusetCpus": "0",
        "PidsLimit": 42,
        "OomKillDisable": True,
        "OomScoreAdj": 500,
        "ShmSize": 1 << 20,
        "Ulimits": [{"Name": "nproc", "Soft": 10, "Hard": 20}, {"Name": "nofile", "Soft": 100, "Hard": 200}],
        "Sysctls": {"net.ipv4.ip_forward": "1"},
        "ReadonlyRootfs": True,
        "BlkioWeight": 300,
    }
    s = spec(rootfs, hc=hc)
    r = s["linux"]["resources"]
    assert r["memory"] == {
        "limit": 100 << 20,
        "swap": 200 << 20,
        "reservation": 50 << 20,
        "disableOOMKiller": True,
    }
    assert r["cpu"] == {"period": 100000, "quota": 150000, "shares": 512, "cpus": "0"}
    assert r["pids"] == {"limit": 42}
    assert r["blockIO"] == {"weight": 300}
    assert s["process"]["oomScoreAdj"] == 500
    assert {"type": "RLIMIT_NPROC", "soft": 10, "hard": 20} in s["process"]["rlimits"]
    assert {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200} in s["process"]["rlimits"]
    assert mount(s, "/dev/shm")["options"][-1] == f"size={1 << 20}"
    assert s["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}
    assert s["root"]["readonly"] is True
    assert (
        spec(rootfs, hc={"Memory": 10 << 20, "MemorySwap": -1})["linux"]["resources"]["memory"]["swap"] == -1
    )
    assert spec(rootfs, hc={"CpuQuota": 5000, "CpuPeriod": 10000})["linux"]["resources"]["cpu"] == {
        "quota": 5000,
        "period": 10000,
    }


@pytest.mark.parametrize(
    "hc,msg",
    [
        ({"Memory": 1024}, "Minimum memory limit"),
        ({"Memory": 10 << 20, "MemorySwap": 5 << 20}, "memoryswap"),
        ({"MemorySwap": 5 << 20}, "Memory limit"),
        ({"NanoCpus": 1, "CpuQuota": 1}, "Conflicting options"),
        ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit"),
        ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 1}]}, "soft limit"),
        ({"SecurityOpt": ["weird"]}, "security-opt"),
        ({"Tmpfs": {"relative": ""}}, "tmpfs"),
        ({"CapAdd": ["NOPE"]}, "unknown capability"),
    ],
)
def test_invalid_host_config(rootfs, hc, msg):
    with pytest.raises(InvalidParameter, match=msg):
        spec(rootfs, hc=hc)


def test_security_opts(rootfs):
    s = spec(rootfs, hc={"SecurityOpt": ["no-new-privileges"]})
    assert s["process"]["noNewPrivileges"] is True
    assert spec(rootfs, hc={"SecurityOpt": ["no-new-privileges:true"]})["process"]["noNewPrivileges"] is True
    assert (
        spec(rootfs, hc={"SecurityOpt": ["no-new-privileges=false"]})["process"]["noNewPrivileges"] is False
    )
    assert "seccomp" not in spec(rootfs, hc={"SecurityOpt": ["seccomp=unconfined"]})["linux"]
    assert "seccomp" not in spec(rootfs, hc={"SecurityOpt": ["seccomp:unconfined"]})["linux"]
    custom = json.dumps(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    )
    sc = spec(rootfs, hc={"SecurityOpt": [f"seccomp={custom}"]})["linux"]["seccomp"]
    assert sc == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    with pytest.raises(InvalidParameter, match="seccomp"):
        spec(rootfs, hc={"SecurityOpt": ["seccomp={not json"]})


def test_init_namespaces_and_mounts(rootfs):
    extra = [
        {"destination": "/data/sub", "type": "bind", "source": "/s2", "options": ["rbind"]},
        {"destination": "/data", "type": "bind", "source": "/s1", "options": ["rbind"]},
        {"destination": "/dev/shm", "type": "bind", "source": "/host-shm", "options": ["rbind"]},
    ]
    s = spec(
        rootfs,
        {"Entrypoint": ["/e"], "Cmd": ["x"]},
        {"Init": True, "NetworkMode": "host", "Tmpfs": {"/run": "rw,exec,size=1m"}},
        extra_mounts=extra,
    )
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "/e", "x"]
    init = mount(s, "/sbin/docker-init")
    assert init["source"] == "/usr/bin/tini-static" and "ro" in init["options"]
    assert "network" not in [n["type"] for n in s["linux"]["namespaces"]]
    assert mount(s, "/dev/shm")["source"] == "/host-shm"  # a user mount replaces the default
    dests = [m["destination"] for m in s["mounts"]]
    assert dests.index("/data") < dests.index("/data/sub")
    assert mount(s, "/run")["options"] == ["nosuid", "nodev", "rw", "exec", "size=1m"]
    s2 = spec(rootfs, netns_path="/run/netns/x")
    assert {"type": "network", "path": "/run/netns/x"} in s2["linux"]["namespaces"]
    s3 = spec(rootfs, hc={"PidMode": "host", "IpcMode": "host", "UTSMode": "host"}, **{"hostname_path": None})
    assert [n["type"] for n in s3["linux"]["namespaces"]] == ["mount", "network"]
    assert mount(s3, "/etc/hostname") is None


def test_working_dir(rootfs):
    assert spec(rootfs, {"WorkingDir": "/srv"})["process"]["cwd"] == "/srv"
    with pytest.raises(InvalidParameter, match="absolute"):
        spec(rootfs, {"WorkingDir": "rel"})


# ---- seccomp translation --------------------------------------------------------------------


PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "includes": {}, "excludes": {}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {
            "names": ["bpf"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {"names": ["newfuture"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.1"}},
        {"names": ["oldthing"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["notx86"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        },
        {"name": "legacy", "action": "SCMP_ACT_ALLOW"},
    ],
}


def test_seccomp_translation():
    out = seccomp.to_oci(PROFILE, list(DEFAULT_CAPS), machine="x86_64", kernel="6.1.0-13-amd64")
    assert out["defaultAction"] == "SCMP_ACT_ERRNO" and out["defaultErrnoRet"] == 38
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = [tuple(c["names"]) for c in out["syscalls"]]
    assert ("arch_prctl",) in names and ("arm_fadvise64_64",) not in names
    assert ("newfuture",) not in names and ("oldthing",) in names and ("notx86",) not in names
    bpf = [c for c in out["syscalls"] if c["names"] == ["bpf"]]
    assert bpf == [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    pers = [c for c in out["syscalls"] if c["names"] == ["personality"]][0]
    assert pers["args"] == [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
    assert ("legacy",) in names
    admin = seccomp.to_oci(PROFILE, [*DEFAULT_CAPS, "CAP_SYS_ADMIN"], machine="x86_64", kernel="6.1")
    assert [c for c in admin["syscalls"] if c["names"] == ["bpf"]] == [
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW"}
    ]
    arm = seccomp.to_oci(PROFILE, [], machine="aarch64", kernel="7.2")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    arm_names = [tuple(c["names"]) for c in arm["syscalls"]]
    assert (
        ("arm_fadvise64_64",) in arm_names
        and ("newfuture",) in arm_names
        and ("arch_prctl",) not in arm_names
    )


@pytest.mark.skipif(not os.path.exists(seccomp.DEFAULT_PROFILE), reason="no seccomp profile installed")
def test_real_profile_follows_caps(rootfs):
    def calls(hc):
        sc = spec(rootfs, hc=hc)["linux"]["seccomp"]
        return {(n, c["action"]) for c in sc["syscalls"] for n in c["names"]}

    default = calls({})
    assert ("read", "SCMP_ACT_ALLOW") in default
    assert ("chroot", "SCMP_ACT_ALLOW") in default  # CAP_SYS_CHROOT is a default cap
    assert ("ptrace", "SCMP_ACT_ALLOW") in default
    assert ("kcmp", "SCMP_ACT_ALLOW") not in default  # left to the default action (ERRNO)
    with_ptrace = calls({"CapAdd": ["SYS_PTRACE"]})
    assert ("kcmp", "SCMP_ACT_ALLOW") in with_ptrace and ("kcmp", "SCMP_ACT_ERRNO") not in with_ptrace
    dropped = calls({"CapDrop": ["SYS_CHROOT"]})
    assert ("chroot", "SCMP_ACT_ALLOW") not in dropped


def test_devices_and_cgroup_rules(rootfs):
    s = spec(
        rootfs,
        hc={
            "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}],
            "DeviceCgroupRules": ["c 1:42 rwm", "b *:* m"],
        },
    )
    (node,) = s["linux"]["devices"]
    assert {k: node[k] for k in ("path", "type", "major", "minor")} == {
        "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
    }
    rules = s["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert rules[-3:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 42, "access": "rwm"},
        {"allow": True, "type": "b", "access": "m"},
    ]
    with pytest.raises(InvalidParameter, match="not a device node"):
        spec(rootfs, hc={"Devices": [{"PathOnHost": rootfs + "/etc/passwd"}]})


@given(st.text(max_size=30))
def test_cgroup_rule_parser_hostile(rule):
    try:
        out = cgroup_rules([rule])
    except InvalidParameter as e:
        assert "invalid device cgroup rule format" in str(e)
    else:
        assert out[0]["allow"] is True and out[0]["type"] in "acb" and set(out[0]["access"]) <= set("rwm")
