"""Restart policies: parsing and validation of `RestartPolicy`, and docker's restart decision with back-off.

Owns the policy rules (`no`, `always`, `on-failure[:N]`, `unless-stopped`) and the delay: 100 ms, doubling
after each restart up to one minute, back to 100 ms once the container has run for 10 s. The decision is a
pure function of the policy, the exit, the restart count and the previous delay, so it survives a daemon
restart (the service persists `RestartCount` and the delay). Never starts or sleeps itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gorae.errors import InvalidParameter

POLICIES = ("no", "always", "on-failure", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
BACKOFF_MULTIPLIER = 2
RESET_AFTER = 10.0


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0

    @property
    def is_none(self) -> bool:
        return self.name in ("", "no")

    def to_doc(self) -> dict[str, Any]:
        return {"Name": self.name, "MaximumRetryCount": self.maximum_retry_count}


def parse_policy(doc: dict[str, Any] | None) -> RestartPolicy:
    """`HostConfig.RestartPolicy` validated with docker's messages (InvalidParameter)."""
    if not doc:
        return RestartPolicy()
    name = str(doc.get("Name") or "")
    try:
        count = int(doc.get("MaximumRetryCount") or 0)
    except (TypeError, ValueError):
        raise InvalidParameter("invalid restart policy: maximum retry count must be an integer") from None
    if name == "":
        name = "no"
    if name not in POLICIES:
        raise InvalidParameter(
            f"invalid restart policy: unknown policy '{name}'; "
            "use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )
    if count < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise InvalidParameter(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    return RestartPolicy(name, count)


def parse_policy_string(text: str) -> RestartPolicy:
    """The CLI form "on-failure:3" (used by tests and the gorae CLI)."""
    name, _, count = text.partition(":")
    return parse_policy({"Name": name, "MaximumRetryCount": int(count) if count else 0})


@dataclass(frozen=True)
class Decision:
    restart: bool
    delay: float  # seconds to wait before starting again
    next_delay_state: float  # what to persist as the back-off state for the next exit


def decide(
    policy: RestartPolicy,
    *,
    exit_code: int,
    restart_count: int,
    manually_stopped: bool,
    ran_for: float,
    previous_delay: float,
    cancelled: bool | None = None,
) -> Decision:
    """Should a container that just exited be started again, and after how long?

    `restart_count` is the number of automatic restarts so far; `previous_delay` the last delay used
    (0 when none). While the daemon runs, a manual stop (stop, or kill with the stop signal) cancels
    any restart, as docker's cancelled restart manager does (`cancelled` defaults to
    `manually_stopped`); at daemon start nothing is cancelled and only `unless-stopped` looks at the
    manual stop.
    """
    if cancelled is None:
        cancelled = manually_stopped
    if policy.is_none or cancelled:
        return Decision(False, 0.0, 0.0)
    delay = 0.0 if ran_for >= RESET_AFTER else previous_delay
    if delay == 0.0:
        delay = FIRST_DELAY
    elif delay < MAX_DELAY:
        delay *= BACKOFF_MULTIPLIER
    delay = min(delay, MAX_DELAY)
    if policy.name == "always":
        restart = True
    elif policy.name == "unless-stopped":
        restart = not manually_stopped
    else:  # on-failure
        limit = policy.maximum_retry_count
        restart = exit_code != 0 and (limit == 0 or restart_count < limit)
    if not restart:
        return Decision(False, 0.0, 0.0)
    return Decision(True, delay, delay)


def restart_on_daemon_start(
    policy: RestartPolicy, *, exit_code: int, manually_stopped: bool, restart_count: int, started_before: bool
) -> bool:
    """Docker restarts stopped containers at daemon start when their policy says so."""
    if not started_before:
        return False
    return decide(
        policy,
        exit_code=exit_code,
        restart_count=restart_count,
        manually_stopped=manually_stopped,
        ran_for=0.0,
        previous_delay=0.0,
        cancelled=False,
    ).restart
