"""Swarm mode: the cluster store (etcd), the cluster CA and join tokens, and the manager that serves the
`/swarm` and `/nodes` routes. Orchestrator, scheduler, dispatcher and agent come later (issue 10)."""
