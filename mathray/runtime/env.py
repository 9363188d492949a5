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


def cache_dir() -> str:
    """Node-local cache of models fetched from storage (``MATHRAY_CACHE_DIR``, default ``~/.cache/mathray``)."""
    return os.environ.get("MATHRAY_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "mathray")


def storage_retry_s() -> float:
    """How long a transient object-store failure is retried before the job gives up
    (``MATHRAY_STORAGE_RETRY_S``, default 120 s; see ``runtime.retries``)."""
    return float(os.environ.get("MATHRAY_STORAGE_RETRY_S") or 120)


def lease_ttl_s() -> float:
    """How long an output's writer lease lives without a heartbeat (``MATHRAY_LEASE_TTL_S``, default 60 s;
    renewed every quarter of it; see ``runtime.lease``)."""
    return float(os.environ.get("MATHRAY_LEASE_TTL_S") or 60)


# Forwarded to Ray workers that a job starts (a worker's environment comes from its raylet, not from the
# driver). Credentials never are: nodes get them from their own environment or instance profile, and a
# runtime_env would copy them into Ray's job metadata.
STORAGE_ENV_VARS = ("MATHRAY_CACHE_DIR", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION",
                    "AWS_DEFAULT_REGION", "MATHRAY_STORAGE_RETRY_S", "MATHRAY_LEASE_TTL_S")


def storage_env() -> dict[str, str]:
    """The storage endpoint/region/cache variables set in this process, to forward to the job's workers."""
    return {k: v for k in STORAGE_ENV_VARS if (v := os.environ.get(k))}
