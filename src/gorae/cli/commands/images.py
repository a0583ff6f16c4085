"""`gorae images` (image ls). The other image commands are in `image_ops`: a command loads only its own module,
and `images` is one of those whose start-up counts (README, Performance)."""

from __future__ import annotations

from gorae.cli.context import StatusError
from gorae.cli.flags import TABLE_FORMAT_HELP, O, Spec
from gorae.cli.output import Header, JsonRow, go_time, human_size, print_list, since

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gorae.cli.context import Cli

IMAGES = Spec(
    "images",
    "[OPTIONS] [REPOSITORY[:TAG]]",
    "List images",
    [
        O("all", "a", help="Show all images (default hides intermediate images)"),
        O("digests", None, help="Show digests"),
        O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
        O("format", None, "string", TABLE_FORMAT_HELP),
        O("no-trunc", None, help="Don't truncate output"),
        O("quiet", "q", help="Only show image IDs"),
        O("tree", None, help="List multi-platform images as a tree (EXPERIMENTAL)"),
    ],
    max_args=1,
)

IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "SIZE",  # docker's header for both
    "Containers": "CONTAINERS",
}


def short_id(i: str, trunc: bool) -> str:
    return (i.split(":", 1)[-1][:12]) if trunc else i


class ImageRow(JsonRow):
    """docker's ImageContext."""

    GO_TYPE = "*formatter.imageContext"

    def __init__(self, img: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool) -> None:
        self._i = img
        self.Repository = repo
        self.Tag = tag
        self.Digest = digest
        self.ID = short_id(img.get("Id", ""), trunc)
        self.CreatedSince = since(img.get("Created", 0)) if img.get("Created") else "N/A"
        self.CreatedAt = go_time(img.get("Created", 0))
        self.Size = human_size(img.get("Size", 0))
        self.VirtualSize = human_size(img.get("VirtualSize", img.get("Size", 0)), 4)  # units.HumanSize
        shared = img.get("SharedSize", -1)
        self.SharedSize = "N/A" if shared in (-1, None) else human_size(shared)
        self.UniqueSize = "N/A" if shared in (-1, None) else human_size(img.get("Size", 0) - shared)
        self.Containers = "N/A" if img.get("Containers", -1) in (-1, None) else str(img["Containers"])

    def as_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in sorted(IMAGE_HEADERS)}


def split_image_ref(ref: str) -> tuple[str, str]:
    """ "busybox" → ("busybox", "latest"); "reg:5000/a/b:t" → ("reg:5000/a/b", "t"); digests kept whole."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def image_rows(images: list[dict[str, Any]], trunc: bool, digests: bool) -> list[ImageRow]:
    rows = []
    for img in images:
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        dig = [d for d in img.get("RepoDigests") or [] if d != "<none>@<none>"]
        if not tags and not dig:
            rows.append(ImageRow(img, "<none>", "<none>", "<none>", trunc))
            continue
        if not tags:
            for d in dig:
                repo, _, digest = d.partition("@")
                rows.append(ImageRow(img, repo, "<none>", digest, trunc))
            continue
        for t in tags:
            repo, tag = split_image_ref(t)
            digest = next((d.partition("@")[2] for d in dig if d.partition("@")[0] == repo), "<none>")
            rows.append(ImageRow(img, repo, tag, digest, trunc))
    return rows


def cmd_images(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    filters: dict[str, dict[str, bool]] = {}
    if v["filter"]:
        from gorae.cli.opts import OptError, parse_filters  # only with --filter: a module `images` needs not

        try:
            filters = parse_filters(v["filter"])
        except OptError as e:
            raise StatusError(125, str(e)) from None
    if args:
        filters.setdefault("reference", {})[args[0]] = True
    params: dict[str, Any] = {"all": v["all"] or None, "digests": 1}
    if filters:
        params["filters"] = filters
    images = cli.api.get_json("/images/json", params) or []
    images.sort(key=lambda i: i.get("Created", 0), reverse=True)
    trunc = not v["no_trunc"]
    rows = image_rows(images, trunc, v["digests"])
    fmt = v["format"] or ("" if v["quiet"] else cli.config.get("imagesFormat") or "")
    if v["quiet"] and not v["format"]:
        seen: set[str] = set()
        for r in rows:
            if r.ID not in seen:
                seen.add(r.ID)
                cli.print(r.ID)
        return 0
    default = (
        "table {{.Repository}}\t{{.Tag}}\t"
        + ("{{.Digest}}\t" if v["digests"] else "")
        + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    )
    print_list(
        cli.out, fmt, rows, default_table=default, header=Header(IMAGE_HEADERS), to_json=ImageRow.as_json
    )
    return 0


COMMANDS = {"images": (IMAGES, cmd_images)}
