"""Every environment variable mathray reads, in one place."""
from __future__ import annotations

import os


def s3_endpoint() -> str | None:
    """S3-compatible endpoint (e.g. ``http://127.0.0.1:9000``) for MinIO/moto.

    pyarrow 26 ignores ``AWS_ENDPOINT_URL``, so mathray reads it (and the S3-specific form) itself and passes
    ``endpoint_override`` explicitly. Unset: real AWS S3.
    """
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def aws_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def ray_address() -> str | None:
    """Set: jobs connect to that cluster (``ray job submit`` sets it); unset: a local cluster starts."""
    return os.environ.get("RAY_ADDRESS") or None
