"""Reading a replayable trace (docs/trace-format.md): one JSON object per line, plain or gzip-compressed.

A line with "seq" is a hashed line (the bus trace proper); a line with "rp" is a replay line. The reader keeps the
line number of every line it hands out, so a difference can name where it is, and takes one line back (push_back)
for the replaying board's look-ahead.
"""

import gzip
import hashlib
import json

TRACE_FORMAT = "wasm-iop-trace"
TRACE_FORMAT_VERSION = 2

# The hashed events a processor's imports make while the firmware runs (docs/trace-format.md, "Hashed lines").
IMPORT_EVENTS = frozenset(["r8", "r16", "r32", "r64", "w8", "w16", "w32", "w64", "clock", "random", "console"])


class TraceFormatError(Exception):
    """The file is not a replayable trace this reader knows: names the line and what was expected."""


class TraceFile:
    """The lines of a trace, one at a time, with their 1-based line numbers and the hash of the hashed lines."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as probe:
            magic = probe.read(2)
        self._file = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
        self.line_number = 0
        self.hashed_count = 0
        self.replay_count = 0
        self._hash = hashlib.sha256()
        self._back = None
        first = self.next()
        if first is None:
            raise TraceFormatError(f"{path}: empty, expected a trace whose first line is its header")
        _, header = first
        if header.get("rp") != "trace" or header.get("format") != TRACE_FORMAT:
            raise TraceFormatError(
                f"{path}:1: expected the header {{\"rp\":\"trace\",\"format\":\"{TRACE_FORMAT}\",...}}; "
                "was it written by `wasm-iop run --trace` (a file, not only a hash)?")
        if header.get("version") != TRACE_FORMAT_VERSION:
            raise TraceFormatError(
                f"{path}:1: format version {header.get('version')}, this reader knows {TRACE_FORMAT_VERSION}")

    def next(self):
        """The next line as (line number, object), or None at the end."""
        if self._back is not None:
            item, self._back = self._back, None
            return item
        raw = self._file.readline()
        if not raw:
            return None
        self.line_number += 1
        try:
            event = json.loads(raw)
        except ValueError as error:
            raise TraceFormatError(f"{self.path}:{self.line_number}: not JSON ({error})") from None
        if "seq" in event:
            self.hashed_count += 1
            self._hash.update(raw)
        else:
            self.replay_count += 1
        return self.line_number, event

    def push_back(self, item):
        """Gives `item` (the last line next() returned) back: the next call returns it again."""
        assert self._back is None, "one line of look-ahead only"
        self._back = item

    def digest(self):
        """The SHA-256 of the hashed lines read so far: `wasm-iop run` prints the same for the whole trace."""
        return self._hash.hexdigest()

    def close(self):
        self._file.close()
