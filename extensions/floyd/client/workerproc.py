"""The client's worker processes: ``python -I -S <script>`` answering in marshalled frames.

``treescan.py`` runs ``dirscan.py`` and ``hashsplit.py`` runs ``hashwork.py`` this way. The
scripts import the standard library only (each writes its frames itself: a little-endian 8-byte
length, then that many bytes of ``marshal``), so a worker starts in ~15 ms.
"""

from __future__ import annotations

import marshal
import struct
import subprocess
import sys
import threading
from typing import IO, Any

FRAME = struct.Struct("<Q")  # a frame's length, as the worker scripts write it


def spawn(script: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """The worker, its stdin and stdout pipes (-I: neither the script's directory nor the working
    directory goes on ``sys.path``, so no local ``hashlib.py`` is imported; -S: no site packages)."""
    return subprocess.Popen([sys.executable, "-I", "-S", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, pass_fds=pass_fds)


def frame(value: Any) -> bytes:
    """``value`` as one frame, as ``read_frame`` (and a worker script) reads it."""
    data = marshal.dumps(value)
    return FRAME.pack(len(data)) + data


def read_frame(stream: IO[bytes]) -> Any | None:
    """The next frame's value, or None at the end of the stream (a cut frame raises EOFError or
    ValueError, as ``marshal`` does)."""
    size = stream.read(FRAME.size)
    if len(size) < FRAME.size:
        return None
    return marshal.loads(stream.read(FRAME.unpack(size)[0]))


class WorkerProcess:
    """A worker handed ``request`` on its stdin; a thread then runs ``read`` on its stdout. A read
    that fails (the worker died, a cut frame) ends the talk: what the subclass read so far is all
    there is, and ``returncode`` says how the worker ended. Subclasses set their own state before
    calling this ``__init__``: the thread starts in it."""

    keep_stdin = False  # a subclass that talks to the worker again after the request sets it

    def __init__(self, script: str, request: bytes, pass_fds: tuple[int, ...] = ()) -> None:
        self.returncode: int | None = None
        self.proc = spawn(script, pass_fds)
        self._request = request
        self.thread = threading.Thread(target=self._talk, daemon=True)
        self.thread.start()

    def read(self, stdout: IO[bytes]) -> None:
        raise NotImplementedError

    def _talk(self) -> None:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        try:
            stdin.write(self._request)
            if self.keep_stdin:
                stdin.flush()
            else:
                stdin.close()
            self.read(stdout)
        except (OSError, ValueError, EOFError, TypeError):  # a worker that died
            pass
        finally:
            stdout.close()
            self.returncode = self.proc.wait()
            self.ended()

    def send(self, message: bytes) -> bool:
        """More for a ``keep_stdin`` worker; False if it is gone (its reader finds so too)."""
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(message)
            stdin.flush()
            return True
        except (OSError, ValueError):  # a broken pipe, or closed already
            return False

    def tell(self, message: bytes = b"") -> None:
        """Send a ``keep_stdin`` worker its last ``message`` (if any), then close its stdin, which it
        takes as the end."""
        if message and not self.send(message):
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:  # the flush of a closed pipe
            pass

    def ended(self) -> None:
        """Called last in the thread, whatever happened (a subclass may wake its waiters)."""
