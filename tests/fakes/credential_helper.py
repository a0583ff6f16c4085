#!/usr/bin/env python3
"""A TEST DOUBLE, not part of the product: a `docker-credential-<name>` program speaking the
docker-credential-helpers protocol (github.com/docker/docker-credential-helpers) over a JSON file, because the
real helpers (pass, secretservice) need a gpg agent or a D-Bus session, and installing them system-wide
would change which store the docker CLI on this machine picks by default.

    docker-credential-<name> store   stdin {"ServerURL","Username","Secret"}   stdout nothing
    docker-credential-<name> get     stdin the server URL                     stdout {"ServerURL","Username","Secret"}
    docker-credential-<name> erase   stdin the server URL                     stdout nothing
    docker-credential-<name> list    stdin ignored                            stdout {"<server>": "<username>"}

Errors as the reference helpers: message on stdout, exit status 1 ("credentials not found in native
keychain" for an unknown server). The file is $GORAE_TEST_CRED_FILE; every call is appended to
$GORAE_TEST_CRED_FILE.log as "<action> <stdin>" so tests can see what the CLI sent.
"""

import json
import os
import sys

NOT_FOUND = "credentials not found in native keychain"


def main() -> int:
    path = os.environ["GORAE_TEST_CRED_FILE"]
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    data = sys.stdin.read()
    with open(path + ".log", "a") as log:
        log.write(f"{action} {data.strip()}\n")
    try:
        with open(path) as f:
            store = json.load(f)
    except FileNotFoundError:
        store = {}
    if action == "store":
        doc = json.loads(data)
        if not doc.get("ServerURL"):
            print("no credentials server URL")
            return 1
        if not doc.get("Username"):
            print("no credentials username")
            return 1
        store[doc["ServerURL"]] = {"Username": doc["Username"], "Secret": doc.get("Secret", "")}
    elif action == "get":
        server = data.strip()
        if not server:
            print("no credentials server URL")
            return 1
        if server not in store:
            print(NOT_FOUND)
            return 1
        print(json.dumps({"ServerURL": server, **store[server]}))
        return 0
    elif action == "erase":
        server = data.strip()
        if server not in store:
            print(NOT_FOUND)
            return 1
        del store[server]
    elif action == "list":
        print(json.dumps({k: v["Username"] for k, v in store.items()}))
        return 0
    else:
        print(f"unknown action: {action}")
        return 1
    with open(path, "w") as f:
        json.dump(store, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
