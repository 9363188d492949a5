"""Ray Train's storage filesystem (the real S3 one) with a window to watch it through, for the checkpoint-upload
kill test: every file a Ray Train worker uploads records the worker's pid under its rank (``rank<R>.pid`` in a
local directory), and when the test has dropped a ``hold-next-upload`` file there, rank 0's next checkpoint
upload writes ``uploading.pid`` and then waits inside the upload (a few files written, the rest not) until
the test SIGKILLs it. Nothing else differs: every call goes to the wrapped filesystem.

    fs = pafs.PyFileSystem(ObservedFS(s3_fs, "/tmp/dir"))
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.fs as pafs


class ObservedFS(pafs.FileSystemHandler):
    def __init__(self, fs: pafs.FileSystem, watch_dir: str):
        self.fs, self.watch_dir = fs, watch_dir

    def __reduce__(self):
        return ObservedFS, (self.fs, self.watch_dir)

    def _observe_upload(self, path: str) -> None:
        rank = os.environ.get("RANK")
        if rank is None or "checkpoint_" not in path:
            return   # the driver, or not a checkpoint file
        watch = Path(self.watch_dir)
        (watch / f"rank{rank}.pid").write_text(str(os.getpid()))
        hold = watch / "hold-next-upload"
        if rank == "0" and path.endswith(".safetensors") and hold.exists():
            hold.unlink()
            (watch / "uploading.pid").write_text(f"{os.getpid()} {path}")
            time.sleep(600)   # the test kills this process here

    # -- the FileSystemHandler interface, delegated ----------------------------------------------------
    def get_type_name(self):
        return "observed-" + self.fs.type_name

    def normalize_path(self, path):
        return self.fs.normalize_path(path)

    def equals(self, other):
        return isinstance(other, ObservedFS) and self.fs.equals(other.fs)

    def get_file_info(self, paths):
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.fs.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        self.fs.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path):
        self.fs.delete_file(path)

    def move(self, src, dest):
        self.fs.move(src, dest)

    def copy_file(self, src, dest):
        self.fs.copy_file(src, dest)

    def open_input_stream(self, path):
        return self.fs.open_input_stream(path)

    def open_input_file(self, path):
        return self.fs.open_input_file(path)

    def open_output_stream(self, path, metadata):
        self._observe_upload(path)
        return self.fs.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path, metadata):
        return self.fs.open_append_stream(path, metadata=metadata)
