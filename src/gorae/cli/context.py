"""The per-invocation context handed to every command: global flags, a lazily built API client, the user's
~/.docker/config.json, and the error type that carries an exit status."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    from gorae.client.api import APIClient
    from gorae.client.dockerconfig import ConfigFile


class StatusError(Exception):
    """Stop the command with this exit status; `message` (if any) goes to stderr."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Cli:
    """What a command needs from its surroundings."""

    def __init__(self, gopts: dict[str, Any], out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.gopts = gopts
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._api: APIClient | None = None
        self._config: dict[str, Any] | None = None
        self._config_file: ConfigFile | None = None

    @property
    def api(self) -> APIClient:
        if self._api is None:
            from gorae.client.api import APIClient
            from gorae.client.host import resolve_host

            g = self.gopts
            try:
                host = resolve_host(
                    g.get("host") or None,
                    tls=bool(g.get("tls")),
                    tlsverify=True if g.get("tlsverify") else None,
                    tlscacert=g.get("tlscacert"),
                    tlscert=g.get("tlscert"),
                    tlskey=g.get("tlskey"),
                )
            except ValueError as e:
                raise StatusError(1, str(e)) from None
            self._api = APIClient(host)
        return self._api

    @property
    def config(self) -> dict[str, Any]:
        """~/.docker/config.json (or $DOCKER_CONFIG/config.json, or --config DIR); {} when absent or invalid."""
        if self._config is None:
            from gorae.client.host import environ, expand_home

            d = self.gopts.get("config") or environ().get("DOCKER_CONFIG") or expand_home("~/.docker")
            try:
                with open(d.rstrip("/") + "/config.json" if d else "config.json") as f:
                    text = f.read()
                from gorae.client.fastjson import loads

                doc = loads(text)
                self._config = doc if isinstance(doc, dict) else {}
            except (OSError, ValueError):
                self._config = {}
        return self._config

    @property
    def config_file(self) -> ConfigFile:
        """config.json as docker's ConfigFile (credentials, helpers); a parse problem is warned about once,
        with docker's text, and what did parse is kept."""
        if self._config_file is None:
            from gorae.client.dockerconfig import ConfigFile, config_dir

            self._config_file, warning = ConfigFile.load(config_dir(self.gopts.get("config")))
            if warning:
                self.eprint(f"WARNING: Error {warning}")
        return self._config_file

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def eprint(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()
