"""Swarm services on the managers: spec validation and defaults, the `/services` and `/tasks` control
operations, and the leader-only components that make tasks happen (orchestrator, scheduler, reaper)."""
