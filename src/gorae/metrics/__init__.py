"""Monitoring: the daemon's metrics in the formats monitoring tools already read.

`containers` is a prometheus-client collector that reads every running container's cgroup counters at scrape
time, under cAdvisor's metric names and labels (so a series exists from a container's first second and
Grafana's cAdvisor dashboards work unchanged); `engine` holds dockerd-style `engine_daemon_*` metrics (API
requests, container actions, events, containers by state, image pulls/builds through `sink.MetricsSink`);
`http` serves them on `--metrics-addr` (Prometheus text format); `graphite` pushes the same series to a
Graphite plaintext receiver (`--metrics-graphite`). Services layer: reads cgroups through `gorae.runtime.stats`,
serves through `gorae.httpserver`; the composition root (`gorae.cmd.wiring`) hands it the containers.
"""
