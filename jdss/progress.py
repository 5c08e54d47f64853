"""Progress of long operations, on a terminal only.

An admin at a shell sees one line that is rewritten in place (bytes
copied, entries listed, seconds waited); under Proxmox, where stderr is a
pipe or a log, nothing is written at all, so task logs stay clean.
"""

import sys
import threading
import time


class Progress:
    """One rewritten line on stderr when stderr is a terminal.

    ``total`` and the counts are bytes when ``unit`` is "bytes", else plain
    numbers. Updates are drawn at most every ``interval`` seconds.
    """

    def __init__(self, label, total=None, unit="bytes", stream=None,
                 interval=0.2):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = _is_terminal(self.stream)
        self._started = time.monotonic()
        self._drawn = 0.0
        self._done = 0
        self._width = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _count(self, number):
        if self.unit == "bytes":
            return _bytes(number)
        return f"{number} {self.unit}"

    def text(self):
        """The line as it is drawn."""
        elapsed = time.monotonic() - self._started
        text = f"{self.label}: {self._count(self._done)}"
        if self.total:
            percent = min(100, 100 * self._done // self.total)
            text += f" of {self._count(self.total)} ({percent}%)"
        return text + f", {elapsed:.0f} s"

    def update(self, done, force=False):
        """Record ``done`` so far and redraw if it is time to."""
        self._done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if force or now - self._drawn >= self.interval:
            self._drawn = now
            self._draw(self.text())

    def _draw(self, text):
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def close(self):
        """Leave the final figures on their own line."""
        if self.enabled and self._drawn:
            self._draw(self.text())
            self.stream.write("\n")
            self.stream.flush()


class Waiting(Progress):
    """Seconds spent in a call that reports nothing itself (a login)."""

    def __init__(self, label, stream=None, interval=0.5):
        super().__init__(label, unit="", stream=stream, interval=interval)
        self._stop = threading.Event()
        self._ticker = None

    def text(self):
        return f"{self.label}, {time.monotonic() - self._started:.0f} s"

    def __enter__(self):
        if self.enabled:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self):
        while not self._stop.wait(self.interval):
            self.update(0, force=True)

    def close(self):
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        super().close()


def _bytes(number):
    """``number`` bytes for a reader: 512 B, 1.5 GiB."""
    if number < 1024:
        return f"{number} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        number /= 1024
        if number < 1024 or unit == "TiB":
            return f"{number:.1f} {unit}"


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
