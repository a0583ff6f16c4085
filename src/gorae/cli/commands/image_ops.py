"""Image commands other than `images`: rmi, tag, history, save, load, import and image prune (pull, push, login
and logout are in `registry`)."""

from __future__ import annotations

import sys

from gorae.cli.commands.images import short_id, split_image_ref
from gorae.cli.context import StatusError
from gorae.cli.flags import TABLE_FORMAT_HELP, O, Spec
from gorae.cli.opts import parse_filters
from gorae.cli.output import Header, JsonRow, ellipsis, human_size, print_list, rfc3339, since
from gorae.client.api import q
from gorae.client.errors import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gorae.cli.context import Cli

RMI = Spec(
    "rmi",
    "[OPTIONS] IMAGE [IMAGE...]",
    "Remove one or more images",
    [
        O("force", "f", help="Force removal of the image"),
        O("no-prune", None, help="Do not delete untagged parents"),
        O(
            "platform",
            None,
            "list",
            'Remove only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
            type_name="strings",
        ),
    ],
    min_args=1,
)


def cmd_rmi(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    failed = False
    for n in args:
        try:
            items = (
                cli.api.delete(
                    f"/images/{q(n)}", {"force": v["force"] or None, "noprune": v["no_prune"] or None}
                )
                or []
            )
        except APIError as e:
            cli.eprint(str(e))
            failed = failed or not (v["force"] and e.status == 404)  # docker: `rmi -f` of a missing name is fine
            continue
        for it in items:
            if it.get("Untagged"):
                cli.print(f"Untagged: {it['Untagged']}")
            elif it.get("Deleted"):
                cli.print(f"Deleted: {it['Deleted']}")
    return 1 if failed else 0


TAG = Spec(
    "tag",
    "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    [],
    min_args=2,
    max_args=2,
    exact_args=True,
)


def cmd_tag(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    repo, tag = split_image_ref(args[1])
    if repo != repo.lower() or not repo:
        raise StatusError(
            1,
            f'Error parsing reference: "{args[1]}" is not a valid repository/tag: invalid reference format: repository name (library/{repo}) must be lowercase',
        )
    cli.api.post(f"/images/{q(args[0])}/tag", {"repo": repo, "tag": tag})
    return 0


HISTORY = Spec(
    "history",
    "[OPTIONS] IMAGE",
    "Show the history of an image",
    [
        O(
            "format",
            None,
            "string",
            TABLE_FORMAT_HELP,
        ),
        O(
            "human",
            "H",
            help="Print sizes and dates in human readable format",
            default=True,
            default_text="true",
        ),
        O("no-trunc", None, help="Don't truncate output"),
        O(
            "platform",
            None,
            "string",
            'Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
        ),
        O("quiet", "q", help="Only show image IDs"),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


class HistoryRow(JsonRow):
    GO_TYPE = "*image.historyContext"

    def __init__(self, h: dict[str, Any], trunc: bool, human: bool) -> None:
        hid = h.get("Id") or "<missing>"
        self.ID = short_id(hid, trunc) if hid != "<missing>" else hid
        created = h.get("Created", 0)
        self.CreatedAt = rfc3339(created)
        self.CreatedSince = since(created) if human else self.CreatedAt
        cb = (h.get("CreatedBy") or "").replace("\t", " ")  # docker keeps `#(nop)` and runs of spaces
        self.CreatedBy = ellipsis(cb, 45) if trunc else cb
        self.Size = human_size(h.get("Size", 0)) if human else str(h.get("Size", 0))
        self.Comment = h.get("Comment", "")

    def as_json(self) -> dict[str, str]:
        return {
            k: getattr(self, k) for k in ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")
        }


def cmd_history(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    hist = cli.api.get_json(f"/images/{q(args[0])}/history") or []
    rows = [HistoryRow(h, not v["no_trunc"], v["human"]) for h in hist]
    if v["quiet"] and not v["format"]:
        for r in rows:
            cli.print(r.ID)
        return 0
    header = Header(
        {
            "ID": "IMAGE",
            "CreatedSince": "CREATED",
            "CreatedAt": "CREATED AT",
            "CreatedBy": "CREATED BY",
            "Size": "SIZE",
            "Comment": "COMMENT",
        }
    )
    created = "{{.CreatedSince}}" if v["human"] else "{{.CreatedAt}}"  # docker's nonHumanHistoryTableFormat
    print_list(
        cli.out,
        v["format"] or "",
        rows,
        default_table="table {{.ID}}\t" + created + "\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        header=header,
        to_json=HistoryRow.as_json,
    )
    return 0


SAVE = Spec(
    "save",
    "[OPTIONS] IMAGE [IMAGE...]",
    "Save one or more images to a tar archive (streamed to STDOUT by default)",
    [
        O("output", "o", "string", "Write to a file, instead of STDOUT"),
        O(
            "platform",
            None,
            "string",
            'Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
        ),
    ],
    min_args=1,
)


def cmd_save(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.lifecycle import write_stream

    if not v["output"] and sys.stdout.isatty():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = cli.api.request("GET", "/images/get", [("names", n) for n in args])
    write_stream(cli, resp.iter_chunks(), v["output"], "save")
    return 0


LOAD = Spec(
    "load",
    "[OPTIONS]",
    "Load an image from a tar archive or STDIN",
    [
        O("input", "i", "string", "Read from tar archive file, instead of STDIN"),
        O(
            "platform",
            None,
            "string",
            'Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
        ),
        O("quiet", "q", help="Suppress the load output"),
    ],
    max_args=0,
)


def cmd_load(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.progress import show_progress

    if v["input"]:
        try:
            src: Any = open(v["input"], "rb")
        except OSError as e:
            raise StatusError(1, f"open {v['input']}: {(e.strerror or str(e)).lower()}") from None
    else:
        if sys.stdin.isatty():
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        src = sys.stdin.buffer
    quiet = v["quiet"] or not sys.stdout.isatty()
    with src:
        resp = cli.api.request(
            "POST",
            "/images/load",
            {"quiet": 1 if quiet else None},
            data=src,
            headers={"Content-Type": "application/x-tar"},
        )
        if resp.headers.get("content-type", "").startswith("application/json"):
            show_progress(resp.iter_json(), cli.out)
        else:
            cli.out.write(resp.read().decode(errors="replace"))
    return 0


IMPORT = Spec(
    "import",
    "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    "Import the contents from a tarball to create a filesystem image",
    [
        O("change", "c", "list", "Apply Dockerfile instruction to the created image"),
        O("message", "m", "string", "Set commit message for imported image"),
        O("platform", None, "string", "Set platform if server is multi-platform capable"),
    ],
    min_args=1,
)


def cmd_import(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    src = args[0]
    params: list[tuple[str, Any]] = []
    data: Any = None
    if src == "-":
        params.append(("fromSrc", "-"))
        data = sys.stdin.buffer
    elif "://" in src:
        params.append(("fromSrc", src))
    else:
        params.append(("fromSrc", "-"))
        try:
            data = open(src, "rb")
        except OSError as e:
            raise StatusError(1, f"open {src}: {(e.strerror or str(e)).lower()}") from None
    if len(args) > 1:
        repo, tag = split_image_ref(args[1])
        params += [("repo", repo), ("tag", tag)]
    if v["message"]:
        params.append(("message", v["message"]))
    if v["platform"]:
        params.append(("platform", v["platform"]))
    params += [("changes", c) for c in v["change"]]
    resp = cli.api.request(
        "POST", "/images/create", params, data=data, headers={"Content-Type": "application/x-tar"}
    )
    from gorae.cli.progress import show_progress

    show_progress(resp.iter_json(), cli.out)
    return 0


PRUNE = Spec(
    "image prune",
    "[OPTIONS]",
    "Remove unused images",
    [
        O("all", "a", help="Remove all unused images, not just dangling ones"),
        O("filter", None, "list", 'Provide filter values (e.g. "until=<timestamp>")', type_name="filter"),
        O("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)


def cmd_image_prune(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.lifecycle import confirm

    text = (
        "WARNING! This will remove all images without at least one container associated to them."
        if v["all"]
        else "WARNING! This will remove all dangling images."
    ) + "\nAre you sure you want to continue?"
    if not v["force"] and not confirm(cli, text):
        return 0
    filters = parse_filters(v["filter"])
    filters.setdefault("dangling", {})["false" if v["all"] else "true"] = True
    doc = cli.api.post_json("/images/prune", {"filters": filters}) or {}
    deleted = doc.get("ImagesDeleted") or []
    if deleted:
        cli.print("Deleted Images:")
        for d in deleted:
            if d.get("Untagged"):
                cli.print(f"untagged: {d['Untagged']}")
            if d.get("Deleted"):
                cli.print(f"deleted: {d['Deleted']}")
        cli.print()
    cli.print(f"Total reclaimed space: {human_size(doc.get('SpaceReclaimed') or 0)}")
    return 0


COMMANDS = {
    "rmi": (RMI, cmd_rmi),
    "tag": (TAG, cmd_tag),
    "history": (HISTORY, cmd_history),
    "save": (SAVE, cmd_save),
    "load": (LOAD, cmd_load),
    "import": (IMPORT, cmd_import),
    "image prune": (PRUNE, cmd_image_prune),
}
