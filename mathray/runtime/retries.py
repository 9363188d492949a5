"""Bounded retries of object-store calls, so that a short S3 outage does not fail a job.

``call(fn, what=, where=)`` runs ``fn`` and, when it fails for a transient reason (the endpoint refuses or
drops connections, times out, throttles, or answers 5xx), runs it again after a backoff of 0.5 s doubling
up to 8 s, until ``env.storage_retry_s()`` seconds (``MATHRAY_STORAGE_RETRY_S``, default 120) have passed
since the first failure. Then it raises ``StorageUnavailable`` naming the endpoint, the operation and the
last error: the job ends with that message (exit 1), and what it committed before stays committed.

Only idempotent calls go through here: reads, listings, whole-object writes (an S3 PUT replaces the object
whole or not at all), deletes of named objects. A failure that is not transient (missing object, access
denied, missing bucket) is raised at once. Local paths are never retried: a local error does not go away
by waiting.

pyarrow reports S3 errors as ``OSError`` whose text carries the AWS SDK's error name ("AWS Error
NETWORK_CONNECTION", "... SLOW_DOWN", "HTTP status 503"); boto3 (the lease) raises botocore exceptions.
"""
from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from mathray.runtime import env
from mathray.runtime.errors import StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# pyarrow / AWS SDK error texts of failures that waiting can cure
_TRANSIENT_TEXT = ("NETWORK_CONNECTION", "Couldn't connect", "curlCode", "Connection refused", "Connection reset",
                   "SLOW_DOWN", "SlowDown", "THROTTL", "Throttl", "SERVICE_UNAVAILABLE", "ServiceUnavailable",
                   "INTERNAL_FAILURE", "InternalError", "REQUEST_TIMEOUT", "RequestTimeout", "Timeout", "timed out",
                   "HTTP status 500", "HTTP status 502", "HTTP status 503", "HTTP status 504",
                   "Unable to connect", "connection", "Broken pipe", "EOF")
_PERMANENT_TEXT = ("ACCESS_DENIED", "AccessDenied", "NO_SUCH_BUCKET", "NoSuchBucket", "NO_SUCH_KEY", "NoSuchKey",
                   "INVALID_ACCESS_KEY", "SIGNATURE_DOES_NOT_MATCH", "HTTP status 403", "HTTP status 404")
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                    "InternalError", "ServiceUnavailable", "500", "502", "503", "504"}


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (from pyarrow or boto3) is a failure that may go away by waiting."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                        FileExistsError)):
        return False
    try:
        import botocore.exceptions as bex

        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.ReadTimeoutError,
                            bex.ConnectTimeoutError, bex.ProxyConnectionError, bex.HTTPClientError)):
            return True
        if isinstance(exc, bex.ClientError):
            err = exc.response.get("Error", {})
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            return err.get("Code") in _TRANSIENT_CODES or status in _TRANSIENT_CODES
    except ImportError:   # boto3 is a dependency, but pyarrow-only callers need not have it
        pass
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError):
        text = str(exc)
        if any(p in text for p in _PERMANENT_TEXT):
            return False
        return any(t in text for t in _TRANSIENT_TEXT)
    return False


def call(fn: Callable[[], T], *, what: str, where: str, window_s: float | None = None) -> T:
    """``fn()``, retried on transient failures for up to ``window_s`` (default: ``env.storage_retry_s()``)."""
    window = env.storage_retry_s() if window_s is None else window_s
    deadline, delay, attempts = None, 0.5, 0
    while True:
        try:
            result = fn()
            if attempts:
                log.warning("storage: %s succeeded after %d retries (%s)", what, attempts, where)
            return result
        except Exception as e:  # noqa: BLE001 - classified below; anything not transient is re-raised
            if not is_transient(e):
                raise
            now = time.monotonic()
            deadline = deadline or now + window
            if now >= deadline:
                raise StorageUnavailable(
                    f"storage at {where} was unreachable for {window:.0f} s (MATHRAY_STORAGE_RETRY_S) while "
                    f"{what}; last error: {type(e).__name__}: {str(e)[:300]}. Everything committed before "
                    "stays committed: re-run the job once the store is back.") from e
            attempts += 1
            if attempts == 1:
                log.warning("storage: %s failed (%s), retrying for up to %.0f s: %s", what, where, window,
                            str(e)[:200])
            time.sleep(min(delay * random.uniform(0.8, 1.2), max(deadline - now, 0.05)))
            delay = min(delay * 2, 8.0)


def endpoint_of(uri: str) -> str:
    """Where a URI's bytes live, for messages: the S3 endpoint (or AWS S3) and the bucket, or the path."""
    if uri.startswith("s3://"):
        bucket = uri[len("s3://"):].split("/", 1)[0]
        return f"{env.s3_endpoint() or 'AWS S3'} (bucket {bucket})"
    return uri
