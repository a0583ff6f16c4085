"""`service inspect --pretty`: docker's template (service/formatter.go) and the serviceInspectContext it reads
(durations printed as Go does, pointers that are set counting as true even when zero)."""

from __future__ import annotations

from typing import Any

from gorae.cli.swarmfmt import ago
from gorae.cli.swarmopts import GoDuration

PRETTY = """
ID:		{{.ID}}
Name:		{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Service Mode:
{{- if .IsModeGlobal }}	Global
{{- else if .IsModeReplicated }}	Replicated
{{- if .ModeReplicatedReplicas }}
 Replicas:	{{ .ModeReplicatedReplicas }}
{{- end }}{{ end }}
{{- if .HasUpdateStatus }}
UpdateStatus:
 State:		{{ .UpdateStatusState }}
{{- if .HasUpdateStatusStarted }}
 Started:	{{ .UpdateStatusStarted }}
{{- end }}
{{- if .UpdateIsCompleted }}
 Completed:	{{ .UpdateStatusCompleted }}
{{- end }}
 Message:	{{ .UpdateStatusMessage }}
{{- end }}
Placement:
{{- if .TaskPlacementConstraints }}
 Constraints:	{{ .TaskPlacementConstraints }}
{{- end }}
{{- if .TaskPlacementPreferences }}
 Preferences:   {{ .TaskPlacementPreferences }}
{{- end }}
{{- if .MaxReplicas }}
 Max Replicas Per Node:   {{ .MaxReplicas }}
{{- end }}
{{- if .HasUpdateConfig }}
UpdateConfig:
 Parallelism:	{{ .UpdateParallelism }}
{{- if .HasUpdateDelay}}
 Delay:		{{ .UpdateDelay }}
{{- end }}
 On failure:	{{ .UpdateOnFailure }}
{{- if .HasUpdateMonitor}}
 Monitoring Period: {{ .UpdateMonitor }}
{{- end }}
 Max failure ratio: {{ .UpdateMaxFailureRatio }}
 Update order:      {{ .UpdateOrder }}
{{- end }}
{{- if .HasRollbackConfig }}
RollbackConfig:
 Parallelism:	{{ .RollbackParallelism }}
{{- if .HasRollbackDelay}}
 Delay:		{{ .RollbackDelay }}
{{- end }}
 On failure:	{{ .RollbackOnFailure }}
{{- if .HasRollbackMonitor}}
 Monitoring Period: {{ .RollbackMonitor }}
{{- end }}
 Max failure ratio: {{ .RollbackMaxFailureRatio }}
 Rollback order:    {{ .RollbackOrder }}
{{- end }}
ContainerSpec:
 Image:		{{ .ContainerImage }}
{{- if .ContainerArgs }}
 Args:		{{ range $arg := .ContainerArgs }}{{ $arg }} {{ end }}
{{- end -}}
{{- if .ContainerEnv }}
 Env:		{{ range $env := .ContainerEnv }}{{ $env }} {{ end }}
{{- end -}}
{{- if .ContainerWorkDir }}
 Dir:		{{ .ContainerWorkDir }}
{{- end -}}
{{- if .HasContainerInit }}
 Init:		{{ .ContainerInit }}
{{- end -}}
{{- if .ContainerUser }}
 User: {{ .ContainerUser }}
{{- end }}
{{- if .HasCapabilities }}
Capabilities:
{{- if .HasCapabilityAdd }}
 Add: {{ .CapabilityAdd }}
{{- end }}
{{- if .HasCapabilityDrop }}
 Drop: {{ .CapabilityDrop }}
{{- end }}
{{- end }}
{{- if .ContainerSysCtls }}
SysCtls:
{{- range $k, $v := .ContainerSysCtls }}
 {{ $k }}{{if $v }}: {{ $v }}{{ end }}
{{- end }}{{ end }}
{{- if .ContainerUlimits }}
Ulimits:
{{- range $k, $v := .ContainerUlimits }}
 {{ $k }}: {{ $v }}
{{- end }}{{ end }}
{{- if .ContainerMounts }}
Mounts:
{{- end }}
{{- range $mount := .ContainerMounts }}
 Target:	{{ $mount.Target }}
  Source:	{{ $mount.Source }}
  ReadOnly:	{{ $mount.ReadOnly }}
  Type:		{{ $mount.Type }}
{{- end -}}
{{- if .Configs}}
Configs:
{{- range $config := .Configs }}
 Target:	{{$config.File.Name}}
  Source:	{{$config.ConfigName}}
{{- end }}{{ end }}
{{- if .Secrets }}
Secrets:
{{- range $secret := .Secrets }}
 Target:	{{$secret.File.Name}}
  Source:	{{$secret.SecretName}}
{{- end }}{{ end }}
{{- if .HasLogDriver }}
Log Driver:
{{- if .HasLogDriverName }}
 Name:		{{ .LogDriverName }}
{{- end }}
{{- if .LogOpts }}
 LogOpts:
{{- range $k, $v := .LogOpts }}
  {{ $k }}{{if $v }}:       {{ $v }}{{ end }}
{{- end }}{{ end }}
{{ end }}
{{- if .HasResources }}
Resources:
{{- if .HasResourceReservations }}
 Reservations:
{{- if gt .ResourceReservationNanoCPUs 0.0 }}
  CPU:		{{ .ResourceReservationNanoCPUs }}
{{- end }}
{{- if .ResourceReservationMemory }}
  Memory:	{{ .ResourceReservationMemory }}
{{- end }}{{ end }}
{{- if .HasResourceLimits }}
 Limits:
{{- if gt .ResourceLimitsNanoCPUs 0.0 }}
  CPU:		{{ .ResourceLimitsNanoCPUs }}
{{- end }}
{{- if .ResourceLimitMemory }}
  Memory:	{{ .ResourceLimitMemory }}
{{- end }}{{ end }}{{ end }}
{{- if gt .ResourceLimitPids 0 }}
  PIDs:		{{ .ResourceLimitPids }}
{{- end }}
{{- if .Networks }}
Networks:
{{- range $network := .Networks }} {{ $network }}{{ end }} {{ end }}
Endpoint Mode:	{{ .EndpointMode }}
{{- if .Ports }}
Ports:
{{- range $port := .Ports }}
 PublishedPort = {{ $port.PublishedPort }}
  Protocol = {{ $port.Protocol }}
  TargetPort = {{ $port.TargetPort }}
  PublishMode = {{ $port.PublishMode }}
{{- end }} {{ end -}}
{{- if .Healthcheck }}
 Healthcheck:
  Interval = {{ .Healthcheck.Interval }}
  Retries = {{ .Healthcheck.Retries }}
  StartPeriod =	{{ .Healthcheck.StartPeriod }}
  Timeout =	{{ .Healthcheck.Timeout }}
  {{- if .Healthcheck.Test }}
  Tests:
	{{- range $test := .Healthcheck.Test }}
<TAB> Test = {{ $test }}
  {{- end }} {{ end -}}
{{- end }}
""".replace("<TAB>", "\t")  # a tab then a space: spelt out for the linters


class GoValue:
    """A set pointer (*uint64, *bool) inside a template: true for `if` whatever its value, printed as it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        v = self.value
        return ("true" if v else "false") if isinstance(v, bool) else str(v)


class Obj:
    """A Go struct from a JSON object: the listed fields with their zero values when absent."""

    File: Any

    def __init__(self, doc: dict[str, Any] | None, **fields: Any) -> None:
        doc = doc or {}
        for k, zero in fields.items():
            val = doc.get(k, zero)
            setattr(self, k, zero if val is None else val)


def _mem(n: int) -> str:
    from gorae.cli.output import bytes_size

    return bytes_size(n) if n else ""


class ServicePretty:
    def __init__(self, s: dict[str, Any], network_names: dict[str, str]) -> None:
        spec = s.get("Spec") or {}
        task = spec.get("TaskTemplate") or {}
        cs = task.get("ContainerSpec") or {}
        mode = spec.get("Mode") or {}
        us = s.get("UpdateStatus") or {}
        placement = task.get("Placement")
        res = task.get("Resources")
        self.ID = s.get("ID", "")
        self.Name = spec.get("Name", "")
        self.Labels = spec.get("Labels") or {}
        log = task.get("LogDriver")
        self.HasLogDriver = log is not None
        self.HasLogDriverName = bool((log or {}).get("Name"))
        self.LogDriverName = (log or {}).get("Name", "")
        self.LogOpts = (log or {}).get("Options") or {}
        self.Configs = []
        for raw in cs.get("Configs") or []:
            c = Obj(raw, ConfigName="")
            c.File = Obj(raw.get("File"), Name="")
            self.Configs.append(c)
        self.Secrets = []
        for raw in cs.get("Secrets") or []:
            x = Obj(raw, SecretName="")
            x.File = Obj(raw.get("File"), Name="")
            self.Secrets.append(x)
        hc = cs.get("Healthcheck")
        self.Healthcheck = (
            Obj(
                {
                    **hc,
                    **{k: GoDuration(hc.get(k) or 0) for k in ("Interval", "StartPeriod", "Timeout")},
                },
                Interval=GoDuration(0),
                Retries=0,
                StartPeriod=GoDuration(0),
                Timeout=GoDuration(0),
                Test=[],
            )
            if hc is not None
            else None
        )
        self.IsModeGlobal = "Global" in mode
        self.IsModeReplicated = "Replicated" in mode
        replicas = (mode.get("Replicated") or {}).get("Replicas")
        self.ModeReplicatedReplicas = GoValue(replicas) if replicas is not None else None
        self.HasUpdateStatus = bool(us.get("State"))
        self.UpdateStatusState = us.get("State", "")
        self.HasUpdateStatusStarted = us.get("StartedAt") is not None
        self.UpdateStatusStarted = ago(us.get("StartedAt")) if us.get("StartedAt") else ""
        self.UpdateIsCompleted = us.get("State") == "completed" and us.get("CompletedAt") is not None
        self.UpdateStatusCompleted = ago(us.get("CompletedAt")) if us.get("CompletedAt") else ""
        self.UpdateStatusMessage = us.get("Message", "")
        self.TaskPlacementConstraints = (placement or {}).get("Constraints") or []
        self.TaskPlacementPreferences = [
            "spread=" + p["Spread"].get("SpreadDescriptor", "")
            for p in (placement or {}).get("Preferences") or []
            if p.get("Spread") is not None
        ]
        self.MaxReplicas = int((placement or {}).get("MaxReplicas") or 0)
        for prefix, key in (("Update", "UpdateConfig"), ("Rollback", "RollbackConfig")):
            cfg = spec.get(key)
            uc = cfg or {}
            setattr(self, f"Has{prefix}Config", cfg is not None)
            setattr(self, f"{prefix}Parallelism", int(uc.get("Parallelism") or 0))
            setattr(self, f"Has{prefix}Delay", int(uc.get("Delay") or 0) > 0)
            setattr(self, f"{prefix}Delay", GoDuration(uc.get("Delay") or 0))
            setattr(self, f"{prefix}OnFailure", uc.get("FailureAction", ""))
            setattr(self, f"{prefix}Order", uc.get("Order", ""))
            setattr(self, f"Has{prefix}Monitor", int(uc.get("Monitor") or 0) > 0)
            setattr(self, f"{prefix}Monitor", GoDuration(uc.get("Monitor") or 0))
            setattr(self, f"{prefix}MaxFailureRatio", float(uc.get("MaxFailureRatio") or 0))
        self.ContainerImage = cs.get("Image", "")
        self.ContainerArgs = cs.get("Args") or []
        self.ContainerEnv = cs.get("Env") or []
        self.ContainerWorkDir = cs.get("Dir", "")
        self.ContainerUser = cs.get("User", "")
        self.HasContainerInit = cs.get("Init") is not None
        self.ContainerInit = bool(cs.get("Init"))
        self.ContainerMounts = [
            Obj(m, Target="", Source="", ReadOnly=False, Type="") for m in cs.get("Mounts") or []
        ]
        self.ContainerSysCtls = cs.get("Sysctls") or {}
        self.HasContainerSysCtls = bool(self.ContainerSysCtls)
        self.ContainerUlimits = {
            u.get("Name", ""): f"{u.get('Soft', 0)}:{u.get('Hard', 0)}" for u in cs.get("Ulimits") or []
        }
        self.HasContainerUlimits = bool(self.ContainerUlimits)
        self.HasResources = res is not None
        limits = (res or {}).get("Limits")
        resv = (res or {}).get("Reservations")
        self.HasResourceReservations = resv is not None and (
            int(resv.get("NanoCPUs") or 0) > 0 or int(resv.get("MemoryBytes") or 0) > 0
        )
        self.ResourceReservationNanoCPUs = int((resv or {}).get("NanoCPUs") or 0) / 1e9
        self.ResourceReservationMemory = _mem(int((resv or {}).get("MemoryBytes") or 0))
        self.HasResourceLimits = limits is not None and any(
            int(limits.get(k) or 0) > 0 for k in ("NanoCPUs", "MemoryBytes", "Pids")
        )
        self.ResourceLimitsNanoCPUs = int((limits or {}).get("NanoCPUs") or 0) / 1e9
        self.ResourceLimitMemory = _mem(int((limits or {}).get("MemoryBytes") or 0))
        self.ResourceLimitPids = int((limits or {}).get("Pids") or 0)
        self.Networks = [
            network_names.get(n.get("Target", "")) or n.get("Target", "") for n in task.get("Networks") or []
        ]
        endpoint = spec.get("EndpointSpec")
        self.EndpointMode = (endpoint or {}).get("Mode", "") if endpoint is not None else ""
        self.Ports = [
            Obj(p, PublishedPort=0, Protocol="", TargetPort=0, PublishMode="")
            for p in (s.get("Endpoint") or {}).get("Ports") or []
        ]
        add, drop = cs.get("CapabilityAdd") or [], cs.get("CapabilityDrop") or []
        self.HasCapabilities = bool(add or drop)
        self.HasCapabilityAdd = bool(add)
        self.HasCapabilityDrop = bool(drop)
        self.CapabilityAdd = ", ".join(add)
        self.CapabilityDrop = ", ".join(drop)
