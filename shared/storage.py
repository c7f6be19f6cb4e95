"""Object storage: one interface, two backends (S3 via boto3, local filesystem).

Methods are blocking; async callers run them with `asyncio.to_thread`. Keys are
`/`-separated paths such as `jobs/{job_id}/audio/original.mp3`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from shared.settings import Settings, get_settings


class ObjectNotFound(KeyError):
    pass


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def copy(self, src_key: str, dest_key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def list_children(self, prefix: str) -> list[str]: ...
    def newest_mtime(self, prefix: str) -> float | None: ...


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def _write_atomically(self, key: str, write) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path) -> None:
        def write(out):
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)

        self._write_atomically(key, write)

    def get_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(src, path)

    def local_path(self, key: str) -> Path:
        """Where the object lies on disk, for serving it in place (files are replaced
        atomically, so an open file stays whole)."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(key, lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        return src.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def copy(self, src_key: str, dest_key: str) -> None:
        src = self._path(src_key)
        if not src.is_file():
            raise ObjectNotFound(src_key)
        self.put_file(dest_key, src)

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if base.is_file():
            base.unlink()
            return 1
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return count

    def list_children(self, prefix: str) -> list[str]:
        """The names one level under `prefix` ("jobs/" -> job ids) that hold anything."""
        base = self._path(prefix.rstrip("/"))
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def newest_mtime(self, prefix: str) -> float | None:
        """When the most recent object under `prefix` was written (epoch seconds), None if none.
        Half-written files (a process killed while storing) count: they are objects-to-be."""
        base = self._path(prefix.rstrip("/"))
        times = [p.stat().st_mtime for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
        return max(times, default=None)


class S3Store:
    def __init__(self, settings: Settings) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )
        # upload_file/download_file switch to multipart transfers above this size.
        self.transfer = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold_bytes,
            multipart_chunksize=settings.s3_multipart_threshold_bytes,
        )

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def _missing(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        return code in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key, Config=self.transfer)

    def get_file(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, key, str(path), Config=self.transfer)
        except Exception as exc:
            if self._missing(exc):
                raise ObjectNotFound(key) from exc
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if self._missing(exc):
                raise ObjectNotFound(key) from exc
            raise

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except Exception as exc:
            if self._missing(exc):
                return False
            raise

    def copy(self, src_key: str, dest_key: str) -> None:
        # A server-side copy (multipart above the threshold): the bytes never pass through us.
        try:
            self.client.copy({"Bucket": self.bucket, "Key": src_key}, self.bucket, dest_key, Config=self.transfer)
        except Exception as exc:
            if self._missing(exc):
                raise ObjectNotFound(src_key) from exc
            raise

    def list_children(self, prefix: str) -> list[str]:
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            names += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(names)

    def newest_mtime(self, prefix: str) -> float | None:
        newest: float | None = None
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                stamp = obj["LastModified"].timestamp()
                newest = stamp if newest is None else max(newest, stamp)
        return newest

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                count += len(keys)
        return count


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        store = S3Store(settings)
        store.ensure_bucket()
        return store
    return FileStore(settings.storage_dir)


@lru_cache
def get_store() -> ObjectStore:
    return make_store(get_settings())
