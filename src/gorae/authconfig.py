"""docker's AuthConfig: one registry's credentials, shared by the client side (the CLI's config file,
X-Registry-Auth) and the daemon side (pull/push/login). Owns the fields, their JSON form and reading
(username, password) out of them; the wire encodings (config file, headers) stay with their owners.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AuthConfig:
    """docker's types.AuthConfig; field order is the JSON order."""

    username: str = ""
    password: str = ""
    auth: str = ""
    email: str = ""
    serveraddress: str = ""
    identitytoken: str = ""
    registrytoken: str = ""

    def to_json(self) -> dict[str, str]:
        """The non-empty fields, in docker's order (what X-Registry-Auth and POST /auth carry)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def credentials(self) -> tuple[str, str] | None:
        """(username, password) from the fields or from `auth` (base64 "user:pass"); None when absent."""
        if self.username or self.password:
            return self.username, self.password
        if self.auth:
            try:
                user, _, pw = base64.b64decode(self.auth + "=" * (-len(self.auth) % 4)).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
            return user, pw
        return None

    @property
    def empty(self) -> bool:
        return not (self.credentials() or self.identitytoken or self.registrytoken)
