"""Object storage for survey signals and their reports: a local directory or any S3-compatible store.

Raw signals never touch the transactional database (seed 004): each payload is one JSON object.
Every key is read and written through `EnvironmentStorage`, which puts it under the deployment
stage's prefix (`dev/`, `staging/`, `prod/`): a process configured for one stage can neither
write nor list another's objects, so developer tests never reach production figures.

SIGNALS_STORAGE_URL picks the backend: `s3://bucket/prefix` (boto3; endpoint and credentials from
SIGNALS_S3_*), otherwise a directory path (`file:///srv/signals` or a plain path).
"""

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_KEY_PART = re.compile(r"[A-Za-z0-9._%=+-]+")


class StorageError(Exception):
    """The store could not be reached or refused the operation."""


class ObjectStorage(Protocol):
    """Keys are '/'-separated relative names; `list` yields every key under a prefix, sorted."""

    def put(self, key: str, body: bytes, *, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def children(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


def _checked(key: str) -> str:
    """Refuse keys that could escape their prefix (`..`, absolute, empty or odd parts)."""
    parts = key.split("/")
    if not key or any(not _KEY_PART.fullmatch(part) or part in (".", "..") for part in parts):
        raise ValueError(f"Invalid object key: {key!r}")
    return key


def _prefix_checked(prefix: str) -> str:
    return "" if not prefix else _checked(prefix.rstrip("/")) + "/"


class LocalDirectoryStorage:
    """Objects as files under `root` (the default under `make run`: $VAR_DIR/signals)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def put(self, key: str, body: bytes, *, content_type: str) -> None:
        path = self.root / _checked(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written then renamed: a reader never sees half an object.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(descriptor, "wb") as file:
            file.write(body)
        os.replace(temporary, path)

    def get(self, key: str) -> bytes:
        try:
            return (self.root / _checked(key)).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def list_keys(self, prefix: str) -> Iterator[str]:
        start = self.root / _prefix_checked(prefix) if prefix else self.root
        if not start.is_dir():
            return
        for path in sorted(start.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()

    def children(self, prefix: str) -> list[str]:
        start = self.root / _prefix_checked(prefix) if prefix else self.root
        return sorted(entry.name for entry in start.iterdir() if entry.is_dir()) if start.is_dir() else []

    def delete(self, key: str) -> None:
        """Remove one object; a missing one is not an error (an erasure may run twice)."""
        (self.root / _checked(key)).unlink(missing_ok=True)


class S3Storage:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Ceph ...), under `prefix`."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # Without keys boto3 uses its own chain (environment, instance role, ~/.aws).
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3}),
        )

    def _call(self, method: str, **kwargs):
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except self.client.exceptions.NoSuchKey:
            raise KeyError(kwargs.get("Key")) from None
        except Exception as error:  # botocore raises many unrelated classes for one outage
            raise StorageError(f"{method} on s3://{self.bucket}: {type(error).__name__}") from error

    def put(self, key: str, body: bytes, *, content_type: str) -> None:
        self._call("put_object", Key=self.prefix + _checked(key), Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self._call("get_object", Key=self.prefix + _checked(key))["Body"].read()

    def _pages(self, prefix: str, **kwargs) -> Iterator[dict]:
        token = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", Prefix=self.prefix + prefix, **kwargs, **extra)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def list_keys(self, prefix: str) -> Iterator[str]:
        for page in self._pages(_prefix_checked(prefix)):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    def children(self, prefix: str) -> list[str]:
        full = _prefix_checked(prefix)
        names = []
        for page in self._pages(full, Delimiter="/"):
            names += [
                entry["Prefix"][len(self.prefix + full) :].rstrip("/")
                for entry in page.get("CommonPrefixes", [])
            ]
        return sorted(names)

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self.prefix + _checked(key))


class EnvironmentStorage:
    """A store seen through one deployment stage's prefix: every key is `<environment>/<key>`."""

    def __init__(self, backend: ObjectStorage, environment: str) -> None:
        if not _ENVIRONMENT_NAME.fullmatch(environment):
            raise ImproperlyConfigured(
                "ANALYTICS_ENVIRONMENT must be a lowercase name such as dev, staging or prod; "
                f"got {environment!r}."
            )
        self.backend = backend
        self.environment = environment

    def put(self, key: str, body: bytes, *, content_type: str) -> str:
        """Store `body`; returns the full key, stage prefix included."""
        full_key = f"{self.environment}/{key}"
        self.backend.put(full_key, body, content_type=content_type)
        return full_key

    def get(self, key: str) -> bytes:
        return self.backend.get(f"{self.environment}/{key}")

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix`, relative to this stage (the stage prefix removed)."""
        for key in self.backend.list_keys(f"{self.environment}/{prefix}"):
            yield key[len(self.environment) + 1 :]

    def children(self, prefix: str) -> list[str]:
        return self.backend.children(f"{self.environment}/{prefix}")

    def delete(self, key: str) -> None:
        self.backend.delete(f"{self.environment}/{key}")


def backend_from_url(url: str) -> ObjectStorage:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ImproperlyConfigured(
                f"SIGNALS_STORAGE_URL needs a bucket: s3://bucket/prefix, got {url!r}."
            )
        return S3Storage(
            bucket=parsed.netloc,
            prefix=parsed.path,
            endpoint_url=settings.SIGNALS_S3_ENDPOINT_URL,
            region=settings.SIGNALS_S3_REGION,
            access_key_id=settings.SIGNALS_S3_ACCESS_KEY_ID,
            secret_access_key=settings.SIGNALS_S3_SECRET_ACCESS_KEY,
        )
    if parsed.scheme in ("file", ""):
        return LocalDirectoryStorage(parsed.path if parsed.scheme == "file" else url)
    raise ImproperlyConfigured(f"SIGNALS_STORAGE_URL must be s3://bucket/prefix or a directory; got {url!r}.")


def signals_storage() -> EnvironmentStorage:
    """The configured store, seen through this deployment's stage (ANALYTICS_ENVIRONMENT)."""
    return EnvironmentStorage(backend_from_url(settings.SIGNALS_STORAGE_URL), settings.ANALYTICS_ENVIRONMENT)
