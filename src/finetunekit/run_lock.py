"""One finetunekit process per run directory: an OS-level lock held while a run works in it.

The lock is ``fcntl.flock`` (``msvcrt.locking`` on Windows) on ``RUN_DIR/.finetunekit.lock``.
The operating system releases it when the holder exits or is killed, so a crash never leaves
a stale lock behind. Within one process the lock is re-entrant for the thread holding it
(``Pipeline.run`` calls ``prepare``, ``train`` and ``evaluate``, each of which locks);
another process, or another thread, gets a :class:`RunDirBusyError` at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

from finetunekit import distributed
from finetunekit.errors import ConfigError

LOCK_NAME = ".finetunekit.lock"

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class RunDirBusyError(ConfigError):
    """Another finetunekit process (or thread) is using the run directory."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.run_dir, self.pid = run_dir, pid
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"another finetunekit process ({who}) is using {run_dir}; wait for it to finish, or stop it "
            "(a killed process releases the directory at once)"
        )


class _Held:
    """The lock of one run directory held by this process."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path, self.count, self.thread = fd, path, 0, threading.get_ident()


_HELD: dict[str, _Held] = {}
_GUARD = threading.Lock()


def lock_path(run_dir: str | os.PathLike[str]) -> Path:
    """The lock file of ``run_dir``."""
    return Path(run_dir) / LOCK_NAME


@contextlib.contextmanager
def hold_run_dir(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the block (creating the directory); re-entrant per thread.

    Raises :class:`RunDirBusyError` naming the holder's pid when another process or thread
    holds it, and a :class:`ConfigError` when the directory cannot be created or written.
    """
    directory = Path(run_dir).resolve()
    if not distributed.is_main_process():  # several processes (torchrun): rank 0 holds it for them all
        yield directory
        return
    key = str(directory)
    with _GUARD:
        held = _HELD.get(key)
        if held is not None and held.thread != threading.get_ident():
            raise RunDirBusyError(Path(run_dir), os.getpid())
        if held is None:
            held = _HELD[key] = _Held(_acquire(directory, Path(run_dir)), directory / LOCK_NAME)
        held.count += 1
    try:
        yield directory
    finally:
        with _GUARD:
            held.count -= 1
            if held.count == 0:
                del _HELD[key]
                _release(held)


def _acquire(directory: Path, shown: Path) -> int:
    path = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            if not _try_lock(fd):
                pid = _read_pid(fd)
                os.close(fd)
                raise RunDirBusyError(shown, pid)
            try:  # a holder that was releasing may have unlinked the file we opened: lock the new one
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd
    except RunDirBusyError:
        raise
    except OSError as exc:
        raise ConfigError(
            f"run_dir {shown}: cannot create or write it ({exc.strerror or exc}); choose a writable run_dir"
        ) from None


def _release(held: _Held) -> None:
    with contextlib.suppress(OSError):
        os.unlink(held.path)  # before unlocking: a waiting opener re-checks the inode (see _acquire)
    with contextlib.suppress(OSError):
        _unlock(held.fd)
    os.close(held.fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except (OSError, AttributeError):  # pragma: no cover - no pread (Windows)
        return None
    return int(text) if text.isdigit() else None
