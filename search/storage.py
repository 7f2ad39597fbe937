"""Reading and writing files of a run folder, on a local disk or behind a storage URI.

A run lives in Ray Tune's experiment folder, ``STORAGE/NAME``. ``STORAGE`` is a local
folder or any URI that pyarrow's file systems open (``s3://``, ``gs://``, ...), the
same set Ray Tune accepts, so the tables and the report go where the trials went.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from pathlib import Path

import pyarrow.fs as pafs


def is_uri(location: str) -> bool:
    """Return True for ``scheme://...`` locations, False for local paths."""
    return "://" in location and not location.startswith("file://")


def normalize_storage(storage: str) -> str:
    """Return an absolute local path, or the URI unchanged; Ray Tune needs local paths absolute."""
    if is_uri(storage):
        return storage.rstrip("/")
    if storage.startswith("file://"):
        storage = storage[len("file://") :]
    return str(Path(storage).expanduser().resolve())


def join(location: str, *parts: str) -> str:
    """Join path parts onto a local path or a URI."""
    if is_uri(location):
        return posixpath.join(location, *parts)
    return str(Path(location, *parts))


class RunFolder:
    """One run's folder: the place of Ray Tune's experiment and of the tables and report.

    Args:
        location: Local path or URI of the folder, ``STORAGE/NAME``.
    """

    def __init__(self, location: str) -> None:
        self.location = normalize_storage(location)
        self._fs, self._root = pafs.FileSystem.from_uri(self.location) if is_uri(self.location) else (
            pafs.LocalFileSystem(),
            self.location,
        )

    def __repr__(self) -> str:
        return f"RunFolder({self.location!r})"

    @property
    def name(self) -> str:
        return posixpath.basename(self._root.rstrip("/"))

    def path(self, *parts: str) -> str:
        """Return the local path or URI of a file inside the folder."""
        return join(self.location, *parts)

    def local_path(self, *parts: str) -> Path | None:
        """Return a local path for a file inside the folder, or None when the folder is remote."""
        if is_uri(self.location):
            return None
        return Path(self.location, *parts)

    def _inner(self, *parts: str) -> str:
        return posixpath.join(self._root, *parts)

    def exists(self, *parts: str) -> bool:
        info = self._fs.get_file_info(self._inner(*parts))
        return info.type != pafs.FileType.NotFound

    def is_dir(self, *parts: str) -> bool:
        return self._fs.get_file_info(self._inner(*parts)).type == pafs.FileType.Directory

    def delete(self) -> None:
        """Delete the folder and everything inside it."""
        self._fs.delete_dir(self._root)

    def list_dirs(self) -> list[str]:
        """Return the names of the sub-folders, sorted."""
        infos = self._fs.get_file_info(pafs.FileSelector(self._root, recursive=False))
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)

    def list_files(self, *parts: str) -> list[str]:
        """Return the names of the files directly inside a sub-folder, sorted."""
        selector = pafs.FileSelector(self._inner(*parts), recursive=False, allow_not_found=True)
        infos = self._fs.get_file_info(selector)
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.File)

    def read_bytes(self, *parts: str) -> bytes:
        with self._fs.open_input_stream(self._inner(*parts)) as stream:
            return stream.read()

    def read_text(self, *parts: str) -> str:
        return self.read_bytes(*parts).decode("utf-8")

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write a file so that readers see the old content or the new, never half of it.

        The bytes go to a temporary name beside the target and are then renamed over
        it: a rename on a local disk is atomic, and an object store shows an
        object only once its upload is complete.
        """
        target = self._inner(*parts)
        self._fs.create_dir(posixpath.dirname(target), recursive=True)

        if is_uri(self.location):
            with self._fs.open_output_stream(target) as stream:
                stream.write(data)
            return self.path(*parts)

        temporary = f"{target}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        return self.path(*parts)

    def write_text(self, text: str, *parts: str) -> str:
        return self.write_bytes(text.encode("utf-8"), *parts)

    def upload(self, local_file: Path, *parts: str) -> str:
        """Copy a local file into the folder, atomically as :meth:`write_bytes` does."""
        return self.write_bytes(Path(local_file).read_bytes(), *parts)
