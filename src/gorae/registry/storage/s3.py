"""The S3 storage driver: driver paths are object keys under a root directory prefix in one bucket (boto3).

Semantics as distribution's s3-aws driver, mapped onto `driver.StorageDriver`:
  * `/a/b` is the key `<rootdirectory>/a/b`; directories are implicit (a key prefix ending in `/`), listed with
    ListObjectsV2 and the `/` delimiter, and vanish with their last object.
  * `put_content` is one PutObject (atomic in S3); `reader(offset)` a ranged GetObject (`bytes=<offset>-`).
  * `stat` is HeadObject, else a one-key listing of `<key>/` (a directory, mtime of its first object).
  * `move` is CopyObject + DeleteObject (a multipart copy in ranges of at most 5 GiB for larger objects), so it
    replaces the destination atomically but is not atomic as a whole: a crash between the two leaves both.
  * `delete` removes the key and every key under `<key>/` (DeleteObjects, 1000 keys per request), and aborts
    multipart uploads left there by writers that died.
  * Writers stream through a multipart upload in parts of `chunk_size` (at least 5 MiB; S3 accepts a smaller
    part only as the last one). The registry closes a writer at the end of every upload request and expects
    the bytes so far to be a file it can stat, read and move (another process may take the next request), so
    `close()` completes the multipart upload: between requests an upload is an ordinary object. A writer opened
    with `append=True` resumes from that object: under 5 MiB its bytes are read back into the first part (a
    part under 5 MiB may only be the last), from 5 MiB on they become the first part(s) of a new multipart
    upload by UploadPartCopy, a copy inside S3 (no bytes through the registry, but S3 copies what is stored
    once per resumed request). Nothing is started until the first byte is written, so an empty PATCH or the
    final PUT of an upload costs a HeadObject only.
  * `local_path` is None: blob GETs are streamed from ranged GetObjects.

Options (`S3Options`): bucket, region, endpoint URL (any S3-compatible server), access key and secret (else
boto3's default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles), root directory,
secure (https when no endpoint URL is given), verify (TLS certificate check), chunk size, path-style addressing.
botocore errors never leave the driver: a missing key is PathNotFound, anything else a StorageError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gorae.registry.storage.driver import (
    FileInfo,
    InvalidOffset,
    PathNotFound,
    StorageError,
    TypedErrors,
    check_path,
)

MIN_CHUNK = 5 * 1024 * 1024  # S3's smallest part but the last
DEFAULT_CHUNK = 10 * 1024 * 1024  # distribution's default chunksize
MAX_COPY_PART = 5 * 1024 * 1024 * 1024  # S3's largest CopyObject / UploadPartCopy
MAX_DELETE = 1000  # keys per DeleteObjects
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


@dataclass(frozen=True)
class S3Options:
    """What `gorae registry serve --storage s3` and `gorae registry gc` take (distribution's s3 options)."""

    bucket: str
    region: str | None = None
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    root_directory: str = ""
    secure: bool = True
    verify: bool | str = True
    chunk_size: int = DEFAULT_CHUNK
    path_style: bool | None = None  # None: path style when an endpoint URL is given

    @classmethod
    def from_env(cls, bucket: str, **given: Any) -> S3Options:
        """Options with the credentials taken from the environment when not given (REGISTRY_STORAGE_S3_*
        as distribution's, else boto3's own chain reads AWS_*)."""
        for key, var in (
            ("access_key", "REGISTRY_STORAGE_S3_ACCESSKEY"),
            ("secret_key", "REGISTRY_STORAGE_S3_SECRETKEY"),
            ("session_token", "REGISTRY_STORAGE_S3_SESSIONTOKEN"),
        ):
            if given.get(key) is None:
                given[key] = os.environ.get(var)
        return cls(bucket=bucket, **{k: v for k, v in given.items() if v is not None})


class _Errors(TypedErrors):
    """botocore errors of one operation as the driver's typed errors."""

    def translate(self, exc: BaseException) -> None:
        if isinstance(exc, ClientError):
            if _code(exc) in _MISSING:
                raise PathNotFound(self.path) from exc
            raise StorageError(self.path, f"s3: {_code(exc)}: {exc}") from exc
        if isinstance(exc, BotoCoreError):
            raise StorageError(self.path, f"s3: {exc}") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Reader:
    """A ranged GetObject's body (see `driver.FileReader`)."""

    def __init__(self, path: str, body: Any) -> None:
        self._path = path
        self._body = body

    def read(self, n: int = -1, /) -> bytes:
        if self._body is None:
            return b""
        with _Errors(self._path):
            data: bytes = self._body.read() if n is None or n < 0 else self._body.read(n)
        return data

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class S3Writer:
    """An appendable object written through a multipart upload (see the module docstring and `driver.FileWriter`)."""

    def __init__(self, driver: S3Driver, path: str, key: str, append: bool) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._copy_size = 0  # bytes of the stored object to take over by UploadPartCopy
        self._existed = False
        self._written = False
        self._done = False
        if append:
            size = driver._head_size(key)
            if size is not None:
                self._existed = True
                if size >= MIN_CHUNK:
                    self._copy_size = size
                elif size:
                    with _Errors(path):
                        body = driver.client.get_object(Bucket=driver.bucket, Key=key)["Body"]
                        try:
                            self._buffer += body.read()
                        finally:
                            body.close()
        self._size = self._copy_size + len(self._buffer)

    @property
    def size(self) -> int:
        return self._size

    def _check(self) -> None:
        if self._done:
            raise StorageError(self._path, "writer already committed, cancelled or closed")

    def write(self, data: bytes, /) -> int:
        self._check()
        self._written = True
        self._buffer += data
        self._size += len(data)
        chunk = self._driver.chunk_size
        if len(self._buffer) >= chunk:
            with _Errors(self._path):
                self._start()
                while len(self._buffer) >= chunk:
                    self._upload_part(bytes(self._buffer[:chunk]))
                    del self._buffer[:chunk]
        return len(data)

    def _start(self) -> None:
        """Open the multipart upload; the stored object (if resumed, >= 5 MiB) becomes its first parts."""
        if self._upload_id is not None:
            return
        c, bucket = self._driver.client, self._driver.bucket
        self._upload_id = str(c.create_multipart_upload(Bucket=bucket, Key=self._key)["UploadId"])
        for start, end in _copy_ranges(self._copy_size):
            number = len(self._parts) + 1
            got = c.upload_part_copy(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                CopySource={"Bucket": bucket, "Key": self._key},
                CopySourceRange=f"bytes={start}-{end}",
            )
            self._parts.append({"ETag": got["CopyPartResult"]["ETag"], "PartNumber": number})

    def _upload_part(self, data: bytes) -> None:
        assert self._upload_id is not None
        number = len(self._parts) + 1
        got = self._driver.client.upload_part(
            Bucket=self._driver.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"ETag": got["ETag"], "PartNumber": number})

    def _finish(self) -> None:
        """Make the object hold every byte written: one PutObject, or the multipart upload completed."""
        c, bucket = self._driver.client, self._driver.bucket
        with _Errors(self._path):
            if self._upload_id is None and not self._copy_size:
                if self._written or not self._existed:
                    c.put_object(Bucket=bucket, Key=self._key, Body=bytes(self._buffer))
                return
            if self._upload_id is None and not self._written:
                return  # resumed and nothing added: the object is already whole
            self._start()
            if self._buffer or not self._parts:
                self._upload_part(bytes(self._buffer))
                self._buffer.clear()
            c.complete_multipart_upload(
                Bucket=bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
            self._upload_id = None

    def commit(self) -> None:
        self._check()
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise
        finally:
            self._done = True

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise

    def cancel(self) -> None:
        self._done = True
        self._abort()
        with contextlib.suppress(ClientError, BotoCoreError):
            self._driver.client.delete_object(Bucket=self._driver.bucket, Key=self._key)

    def _abort(self) -> None:
        if self._upload_id is not None:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._driver.client.abort_multipart_upload(
                    Bucket=self._driver.bucket, Key=self._key, UploadId=self._upload_id
                )
            self._upload_id = None


def _copy_ranges(size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges splitting `size` into equal parts of at most 5 GiB (each >= 5 MiB if size is)."""
    if size <= 0:
        return []
    count = -(-size // MAX_COPY_PART)
    step = -(-size // count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


class S3Driver:
    """Driver paths as keys under `options.root_directory` in `options.bucket` (the bucket must exist)."""

    name = "s3"

    def __init__(self, options: S3Options, client: Any = None) -> None:
        if options.chunk_size < MIN_CHUNK:
            raise ValueError(f"s3 chunk size must be at least {MIN_CHUNK} bytes, not {options.chunk_size}")
        self.options = options
        self.bucket = options.bucket
        self.chunk_size = options.chunk_size
        self.prefix = options.root_directory.strip("/")
        path_style = options.path_style if options.path_style is not None else bool(options.endpoint_url)
        self.client = client or boto3.session.Session().client(
            "s3",
            region_name=options.region,
            endpoint_url=options.endpoint_url,
            aws_access_key_id=options.access_key,
            aws_secret_access_key=options.secret_key,
            aws_session_token=options.session_token,
            use_ssl=options.secure,
            verify=options.verify,
            config=Config(
                s3={"addressing_style": "path" if path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=64,
            ),
        )

    # -- keys -------------------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        check_path(path)
        return f"{self.prefix}{path}" if self.prefix else path[1:]

    def _dir_prefix(self, path: str) -> str:
        """The key prefix of everything below directory `path` ("" or "<root>/" for "/")."""
        check_path(path, allow_root=True)
        if path == "/":
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(path) + "/"

    def _path(self, key: str) -> str:
        return key[len(self.prefix) :] if self.prefix else "/" + key

    def _head_size(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise

    def local_path(self, path: str) -> str | None:
        check_path(path)
        return None

    def check(self) -> None:
        """StorageError unless the bucket answers (it exists, the credentials reach it)."""
        with _Errors(f"s3://{self.bucket}"):
            self.client.head_bucket(Bucket=self.bucket)

    # -- whole files ------------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        key = self._key(path)
        with _Errors(path):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data

    def put_content(self, path: str, content: bytes) -> None:
        key = self._key(path)
        with _Errors(path):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=content)

    # -- streams ----------------------------------------------------------------------------------

    def reader(self, path: str, offset: int = 0) -> S3Reader:
        key = self._key(path)
        if offset < 0:
            raise InvalidOffset(path, offset)
        with _Errors(path):
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-")
            except ClientError as e:
                if _code(e) != "InvalidRange":
                    raise
                # at or past the end (S3 refuses any range of an empty object): the end reads as nothing
                size = self._head_size(key)
                if size is None:
                    raise PathNotFound(path) from e
                if offset == size:
                    return S3Reader(path, None)
                raise InvalidOffset(path, offset) from e
            return S3Reader(path, got["Body"])

    def writer(self, path: str, append: bool = False) -> S3Writer:
        key = self._key(path)
        with _Errors(path):
            if self._has_children(self._dir_prefix(path)):
                raise StorageError(path, "is a directory")
            return S3Writer(self, path, key, append)

    # -- the tree ---------------------------------------------------------------------------------

    def _has_children(self, prefix: str) -> dict[str, Any] | None:
        got = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        contents = got.get("Contents") or []
        return contents[0] if contents else None

    def stat(self, path: str) -> FileInfo:
        check_path(path, allow_root=True)
        with _Errors(path):
            if path != "/":
                try:
                    head = self.client.head_object(Bucket=self.bucket, Key=self._key(path))
                    return FileInfo(path, int(head["ContentLength"]), head["LastModified"].timestamp(), False)
                except ClientError as e:
                    if _code(e) not in _MISSING:
                        raise
            first = self._has_children(self._dir_prefix(path))
            if first is None:
                if path == "/":
                    return FileInfo(path, 0, 0.0, True)
                raise PathNotFound(path)
            return FileInfo(path, 0, first["LastModified"].timestamp(), True)

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        yield from self.client.get_paginator("list_objects_v2").paginate(**kwargs)

    def list(self, path: str) -> list[str]:
        prefix = self._dir_prefix(path)
        out: list[str] = []
        with _Errors(path):
            for page in self._pages(prefix, "/"):
                out.extend(self._path(o["Key"]) for o in page.get("Contents") or [])
                out.extend(self._path(p["Prefix"].rstrip("/")) for p in page.get("CommonPrefixes") or [])
        if not out and path != "/":
            raise PathNotFound(path)
        return sorted(out)

    def move(self, source: str, dest: str) -> None:
        src_key, dest_key = self._key(source), self._key(dest)
        with _Errors(source):
            size = self._head_size(src_key)
            if size is None:
                raise PathNotFound(source)
        with _Errors(dest):
            self._copy(src_key, dest_key, size)
        with _Errors(source):
            self.client.delete_object(Bucket=self.bucket, Key=src_key)

    def _copy(self, src_key: str, dest_key: str, size: int) -> None:
        source = {"Bucket": self.bucket, "Key": src_key}
        if size <= MAX_COPY_PART:
            self.client.copy_object(Bucket=self.bucket, Key=dest_key, CopySource=source)
            return
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=dest_key)["UploadId"]
        try:
            parts = []
            for number, (start, end) in enumerate(_copy_ranges(size), 1):
                got = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=dest_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"ETag": got["CopyPartResult"]["ETag"], "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=dest_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=dest_key, UploadId=upload_id)
            raise

    def delete(self, path: str) -> None:
        key = self._key(path)
        with _Errors(path):
            keys = [o["Key"] for page in self._pages(key + "/", None) for o in page.get("Contents") or []]
            if self._head_size(key) is not None:
                keys.append(key)
            self._abort_uploads(key)
            if not keys:
                raise PathNotFound(path)
            for i in range(0, len(keys), MAX_DELETE):
                batch = [{"Key": k} for k in keys[i : i + MAX_DELETE]]
                got = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                errors = [e for e in got.get("Errors") or [] if e.get("Code") not in _MISSING]
                if errors:
                    raise StorageError(
                        path, f"s3: DeleteObjects: {errors[0].get('Code')}: {errors[0].get('Key')}"
                    )

    def _abort_uploads(self, key: str) -> None:
        """Abort the multipart uploads of `key` and below (writers that died before close or cancel)."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=key)
        for page in pages:
            for up in page.get("Uploads") or []:
                if up["Key"] == key or up["Key"].startswith(key + "/"):
                    with contextlib.suppress(ClientError):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"]
                        )

    def walk(self, path: str) -> Iterator[FileInfo]:
        prefix = self._dir_prefix(path)
        files: list[FileInfo] = []
        with _Errors(path):
            for page in self._pages(prefix, None):
                for o in page.get("Contents") or []:
                    files.append(
                        FileInfo(self._path(o["Key"]), int(o["Size"]), o["LastModified"].timestamp(), False)
                    )
        if not files and path != "/":
            raise PathNotFound(path)
        # the implicit directories, each with the newest mtime below it
        base = "" if path == "/" else path
        dirs: dict[str, float] = {}
        for f in files:
            parts = f.path[len(base) + 1 :].split("/")[:-1]
            d = base
            for part in parts:
                d = f"{d}/{part}"
                dirs[d] = max(dirs.get(d, 0.0), f.mtime)
        entries = files + [FileInfo(d, 0, m, True) for d, m in dirs.items()]
        # sorting by components gives parents first, then each directory's children in lexical order
        entries.sort(key=lambda i: i.path.split("/"))
        return iter(entries)


_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
OPTION_NAMES = (
    "bucket",
    "region",
    "regionendpoint",
    "accesskey",
    "secretkey",
    "sessiontoken",
    "rootdirectory",
    "secure",
    "skipverify",
    "chunksize",
    "forcepathstyle",
)


def options_from_strings(values: dict[str, str]) -> S3Options:
    """S3Options from distribution's s3 parameter names (`--storage-opt bucket=... regionendpoint=...`);
    credentials not given come from the environment (see `S3Options.from_env`). ValueError names a bad one."""
    unknown = sorted(set(values) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(f"unknown s3 option {unknown[0]!r} (known: {', '.join(OPTION_NAMES)})")
    bucket = values.get("bucket", "")
    if not bucket:
        raise ValueError("the s3 storage needs a bucket (bucket=NAME)")

    def flag(name: str, default: bool) -> bool:
        text = values.get(name)
        if text is None:
            return default
        if text.lower() not in _BOOL:
            raise ValueError(f"s3 option {name}: not a boolean: {text!r}")
        return _BOOL[text.lower()]

    chunk = values.get("chunksize")
    if chunk is not None and not chunk.isdigit():
        raise ValueError(f"s3 option chunksize: not a number of bytes: {chunk!r}")
    path_style = flag("forcepathstyle", False) if "forcepathstyle" in values else None
    return S3Options.from_env(
        bucket,
        region=values.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=values.get("regionendpoint") or None,
        access_key=values.get("accesskey") or None,
        secret_key=values.get("secretkey") or None,
        session_token=values.get("sessiontoken") or None,
        root_directory=values.get("rootdirectory", ""),
        secure=flag("secure", True),
        verify=not flag("skipverify", False),
        chunk_size=int(chunk) if chunk is not None else DEFAULT_CHUNK,
        path_style=path_style,
    )


def driver_from_options(values: dict[str, str]) -> S3Driver:
    """The driver `gorae registry serve --storage s3` and `gc` build, once the bucket answered (SystemExit with
    the reason on a bad option or an unreachable bucket)."""
    try:
        driver = S3Driver(options_from_strings(values))
        driver.check()
    except ValueError as e:
        raise SystemExit(f"gorae registry: {e}") from None
    except PathNotFound:
        raise SystemExit(f"gorae registry: s3: no bucket {driver.bucket!r}") from None
    except StorageError as e:
        raise SystemExit(f"gorae registry: s3 bucket {driver.bucket!r}: {e.detail}") from None
    return driver
