"""The runtime's errors, in one leaf module that every other runtime module may import.

Two kinds, as the entry point reports them (``runtime.entry``): a *usage error* means the job cannot run as
given (exit 2, one message); ``JobFailed`` means it ran and could not finish (exit 1, one message).
"""
from __future__ import annotations

from mathray.config import ConfigError


class JobFailed(RuntimeError):
    """The job ran and could not finish (e.g. every input record unreadable): exit 1 with the message."""


class StorageUnavailable(JobFailed):
    """The object store stayed unreachable for the whole retry window."""


class LeaseLost(JobFailed):
    """This run's lease was taken over by another driver (this one's heartbeat stalled past the expiry)."""


class OutputLeased(RuntimeError):
    """Another live driver holds the output's lease (a usage error: exit 2 with the owner's details)."""


class LineageMismatch(RuntimeError):
    """An output holds committed work of a different lineage than the run about to write to it."""


class InputNotReady(RuntimeError):
    """An input a stage reads is missing or incomplete."""


class InputMismatch(RuntimeError):
    """Inputs that do not belong together (e.g. scores of other samples, duplicate keys)."""


class ModelNotReady(RuntimeError):
    """A model URI that cannot be loaded (no export, no completion mark, bytes not matching the mark)."""


class CorruptShard(RuntimeError):
    """A committed shard whose bytes do not match its marker, a manifest shard without a usable marker, or an
    unreadable manifest: the message names the file."""


# Errors that mean "cannot run as given": reported as one message, exit 2.
USAGE_ERRORS: tuple[type[BaseException], ...] = (ConfigError, InputNotReady, InputMismatch, LineageMismatch,
                                                 ModelNotReady, OutputLeased, CorruptShard)
