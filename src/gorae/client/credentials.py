"""Where registry credentials live, as docker 28 decides: the config file's `auths` (a FileStore), or a
`docker-credential-<name>` helper chosen by `credHelpers[<registry>]`, else `credsStore`, else — only when the
file names no credentials at all — the platform default (`pass` when the `pass` program exists, otherwise
`secretservice`, used only when its helper is on PATH).

Owns the helper protocol (the program gets one action argument — store, get, erase, list — and reads
stdin: the Credentials JSON `{"ServerURL","Username","Secret"}` for store, the server URL for get and erase;
its stdout is the answer or the error text, "credentials not found in native keychain" meaning nothing is
stored), docker's `<token>` username for identity tokens, the registry keys (`https://index.docker.io/v1/` for
Docker Hub, host[:port] otherwise) and the `X-Registry-Auth` header. Error texts are docker's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace

from gorae.client import fastjson as json
from gorae.client.dockerconfig import AuthConfig, ConfigFile, go_string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol, TextIO

    class CredentialStore(Protocol):
        def get(self, server: str) -> AuthConfig: ...
        def store(self, auth: AuthConfig) -> None: ...
        def erase(self, server: str) -> None: ...
        def get_all(self) -> dict[str, AuthConfig]: ...


INDEX_SERVER = "https://index.docker.io/v1/"
DEFAULT_NAMESPACE = "docker.io"
HELPER_PREFIX = "docker-credential-"
TOKEN_USERNAME = "<token>"
NOT_FOUND = "credentials not found in native keychain"

UNENCRYPTED_WARNING = (
    "\nWARNING! Your credentials are stored unencrypted in '{}'.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/go/credential-store/\n"
)


class CredentialsError(Exception):
    """A helper failed; the text is docker's ("error storing credentials - err: ..., out: `...`")."""


def auth_config_key(domain: str) -> str:
    """The key credentials for a registry domain are stored under."""
    return INDEX_SERVER if domain in ("docker.io", "index.docker.io") else domain


def convert_to_hostname(address: str) -> str:
    """docker's ConvertToHostname: "https://host:5000/v1/" → "host:5000"; anything else up to the first "/"."""
    if "://" in address:
        from urllib.parse import urlsplit

        try:
            u = urlsplit(address)
            host, port = u.hostname, u.port
        except ValueError:
            host, port = None, None
        if host:
            if ":" in host:
                host = f"[{host}]"
            return f"{host}:{port}" if port is not None else host
    return address.split("/", 1)[0]


class FileStore:
    """Credentials kept in the config file itself (base64, unencrypted)."""

    warned = False  # docker prints the unencrypted warning once per invocation

    def __init__(self, config: ConfigFile, stderr: TextIO | None = None) -> None:
        self.config = config
        self.stderr = stderr

    def get(self, server: str) -> AuthConfig:
        found = self.config.auths.get(server)
        if found is not None:
            return found
        for key in self.config.auths:  # legacy keys stored as URLs
            if convert_to_hostname(key) == server:
                return self.config.auths[key]
        return AuthConfig()

    def get_all(self) -> dict[str, AuthConfig]:
        return dict(self.config.auths)

    def erase(self, server: str) -> None:
        if server not in self.config.auths:
            return
        del self.config.auths[server]
        self.config.save()

    def store(self, auth: AuthConfig) -> None:
        if self.config.auths.get(auth.serveraddress) == auth:
            return
        self.config.auths[auth.serveraddress] = auth
        self.config.save()
        if not FileStore.warned and auth.password:
            err = self.stderr or sys.stderr
            err.write(UNENCRYPTED_WARNING.format(self.config.filename) + "\n")
            err.flush()
            FileStore.warned = True


def _exec_error(e: BaseException, program: str) -> str:
    """Go's exec error text for a failed helper run."""
    if isinstance(e, FileNotFoundError):
        return f'exec: "{program}": executable file not found in $PATH'
    if isinstance(e, PermissionError):
        return f"fork/exec {shutil.which(program) or program}: permission denied"
    return str(e)


class HelperStore:
    """A `docker-credential-<name>` program; the config file keeps only the (empty) entry, as docker's
    nativeStore does (it once held e-mail addresses)."""

    def __init__(self, config: ConfigFile, helper: str) -> None:
        self.program = HELPER_PREFIX + helper
        self.file = FileStore(config)

    def _call(self, verb: str, action: str, data: bytes) -> str:
        """The helper's stdout; CredentialsError (docker's text) when it fails, LookupError for "not found".
        The helper's stderr passes through to ours."""
        try:
            p = subprocess.run([self.program, action], input=data, stdout=subprocess.PIPE, check=False)
        except OSError as e:
            raise CredentialsError(
                f"error {verb} credentials - err: {_exec_error(e, self.program)}, out: ``"
            ) from None
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode == 0:
            return out
        text = out.strip()
        if action == "get" and text == NOT_FOUND:
            raise LookupError(data.decode("utf-8", "replace"))
        err = (
            text
            if text in ("no credentials server URL", "no credentials username")
            else _exit_text(p.returncode)
        )
        raise CredentialsError(f"error {verb} credentials - err: {err}, out: `{text}`")

    def store(self, auth: AuthConfig) -> None:
        user, secret = auth.username, auth.password
        if auth.identitytoken:
            user, secret = TOKEN_USERNAME, auth.identitytoken
        doc = {"ServerURL": auth.serveraddress, "Username": user, "Secret": secret}
        body = "{" + ",".join(f"{go_string(k)}:{go_string(v)}" for k, v in doc.items()) + "}\n"
        self._call("storing", "store", body.encode())
        self.file.store(replace(auth, username="", password="", identitytoken=""))

    def get(self, server: str) -> AuthConfig:
        """The file's entry (it may hold an e-mail) with the helper's answer laid over it, as docker's
        nativeStore.Get (nothing stored: the credential fields come back empty)."""
        base = self.file.get(server)
        try:
            out = self._call("getting", "get", server.encode())
        except LookupError:
            found = AuthConfig()
        else:
            found = parse_get_output(server, out)
        return replace(
            base,
            username=found.username,
            password=found.password,
            identitytoken=found.identitytoken,
            serveraddress=found.serveraddress,
        )

    def erase(self, server: str) -> None:
        self._call("erasing", "erase", server.encode())
        self.file.erase(server)

    def get_all(self) -> dict[str, AuthConfig]:
        out = self._call("listing", "list", b"unused")
        try:
            listing = json.loads(out)
        except ValueError as e:
            raise CredentialsError(str(e)) from None
        result: dict[str, AuthConfig] = {}
        for server in listing if isinstance(listing, dict) else {}:
            result[server] = self.get(server)
        return result


def parse_get_output(server: str, out: str) -> AuthConfig:
    """A helper's `get` answer ({"ServerURL","Username","Secret"}, keys matched case-insensitively as Go's
    decoder does); the `<token>` username marks an identity token."""
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise CredentialsError(str(e)) from None
    if not isinstance(doc, dict):
        raise CredentialsError("json: cannot unmarshal into Go value of type credentials.Credentials")
    fields = {"username": "", "secret": ""}
    for k, v in doc.items():
        name = k.lower() if isinstance(k, str) else ""
        if name in fields:
            if v is not None and not isinstance(v, str):
                raise CredentialsError(
                    f"json: cannot unmarshal into Go struct field Credentials.{name.capitalize()} of type string"
                )
            fields[name] = v or ""
    if fields["username"] == TOKEN_USERNAME:
        return AuthConfig(identitytoken=fields["secret"], serveraddress=server)
    return AuthConfig(username=fields["username"], password=fields["secret"], serveraddress=server)


def _exit_text(code: int) -> str:
    """Go's *exec.ExitError text."""
    if code < 0:
        import signal

        try:
            name = signal.strsignal(-code)
        except ValueError:
            name = None
        return f"signal: {(name or str(-code)).lower()}"
    return f"exit status {code}"


def default_store() -> str:
    """docker's DetectDefaultStore on Linux for a config that names no credentials."""
    platform = "pass" if shutil.which("pass") else "secretservice"
    return platform if shutil.which(HELPER_PREFIX + platform) else ""


class Credentials:
    """The credential stores of one config file."""

    def __init__(self, config: ConfigFile) -> None:
        self.config = config
        self.detected = "" if config.contains_auth() else default_store()

    def helper_for(self, server: str) -> str:
        helpers = self.config.cred_helpers
        if server and server in helpers:
            return helpers[server]
        return self.config.creds_store or self.detected

    def store_for(self, server: str) -> CredentialStore:
        helper = self.helper_for(server)
        return HelperStore(self.config, helper) if helper else FileStore(self.config)

    def get(self, server: str) -> AuthConfig:
        return self.store_for(server).get(server)

    def for_domain(self, domain: str) -> AuthConfig:
        """What docker sends for a registry domain; a helper failure counts as no credentials, as docker's
        ResolveAuthConfig ignores the error."""
        key = auth_config_key(domain)
        try:
            return self.get(key)
        except CredentialsError:
            return AuthConfig()


def registry_auth_header(auth: AuthConfig) -> str:
    """X-Registry-Auth: base64url (padded) of the AuthConfig JSON, "e30=" ({}) when there is nothing."""
    import base64

    doc = "{" + ",".join(f"{go_string(k)}:{go_string(v)}" for k, v in auth.to_json().items()) + "}"
    return base64.urlsafe_b64encode(doc.encode()).decode()
