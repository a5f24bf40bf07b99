#!/usr/bin/env python3
"""A trace-driven board: runs the unchanged firmware image under wasmtime and answers every import from a trace.

The JS board's replayable trace (docs/trace-format.md) holds every call it made into the firmware, every value an
import returned (bus reads, the clock, random bytes) and every byte the board or a device wrote into a processor's
memory, each at its place among the firmware's imports. This board has no devices: it makes the same calls with
the same arguments, answers each import with the value the trace holds, applies the memory writes where they
happened, and checks everything the firmware did against the trace: each bus write's address and value, each read's
address and size, each console line, each call's result, how a call ended (exit code, trap), and the digest of every
range a device read from memory. The first difference is named: line, call, expected, actual. Exit status 0: no
difference; 1: a difference; 2: a usage or trace-format error.

    python3 tools/trace_board/replay.py TRACE [--image FILE ...] [--json]

It needs the wasmtime bindings for Python (`pip install wasmtime`, tested with 49.0.0). See docs/trace-format.md.
"""

import argparse
import hashlib
import json
import os
import sys
import time

try:
    import wasmtime
except ImportError:  # said once, in main(), with how to get it
    wasmtime = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trace_file import IMPORT_EVENTS, TraceFile, TraceFormatError  # noqa: E402

WASI_ERRNO_SUCCESS = 0
WASI_ERRNO_BADF = 8
WASI_ERRNO_FAULT = 21
WASI_ERRNO_INVAL = 28
MASK_64 = (1 << 64) - 1

# The board ABI's imports and their signatures (docs/board-abi.md): anything else the image imports is refused by
# name before it runs, since a runtime that links lazily (WAMR) would trap only at the first call.
I32, I64 = "i32", "i64"
ABI_SIGNATURES = {
    ("wasi_snapshot_preview1", "fd_write"): ([I32, I32, I32, I32], [I32]),
    ("wasi_snapshot_preview1", "clock_time_get"): ([I32, I64, I32], [I32]),
    ("wasi_snapshot_preview1", "random_get"): ([I32, I32], [I32]),
    ("wasi_snapshot_preview1", "proc_exit"): ([I32], []),
    # ABI 2: bus addresses and values in 32-bit halves, low first; bus_read64_high answers the last read64's high half.
    ("board", "bus_read8"): ([I32, I32], [I32]),
    ("board", "bus_read16"): ([I32, I32], [I32]),
    ("board", "bus_read32"): ([I32, I32], [I32]),
    ("board", "bus_read64"): ([I32, I32], [I32]),
    ("board", "bus_read64_high"): ([], [I32]),
    ("board", "bus_write8"): ([I32, I32, I32], []),
    ("board", "bus_write16"): ([I32, I32, I32], []),
    ("board", "bus_write32"): ([I32, I32, I32], []),
    ("board", "bus_write64"): ([I32, I32, I32, I32], []),
}


class Difference(Exception):
    """The firmware did something other than the trace says: where (line, call), what was expected, what happened."""

    def __init__(self, line, call, expected, actual):
        super().__init__(f"line {line}: {call}: expected {expected}, got {actual}")
        self.line = line
        self.call = call
        self.expected = expected
        self.actual = actual


class ProcExit(Exception):
    """proc_exit unwinds the firmware, as on the JS board."""

    def __init__(self, code):
        super().__init__(f"proc_exit({code})")
        self.code = code


class BoardStop(Exception):
    """The JS board stopped this call from inside an import (its watchdog); this board stops it at the same import."""


def signed(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def trace_int(value):
    """An integer from a trace line: a JSON number, a decimal string (64-bit) or a "0x" hex string (bus values)."""
    if isinstance(value, int):
        return value
    return int(value, 0)


def describe(event):
    """A trace line, shortened for a message."""
    text = json.dumps(event, separators=(",", ":"))
    return text if len(text) <= 300 else text[:297] + "..."


class Processor:
    """One processor of the traced board: its RAM, its instance, its console buffers."""

    def __init__(self, name, ram, ram_bytes):
        self.name = name
        self.ram = ram
        self.ram_bytes = ram_bytes
        self.store = None
        self.exports = None
        self.console = {1: b"", 2: b""}
        self.calls = 0
        self.read64_high = 0  # the high half of the last bus_read64's value, for bus_read64_high


class TraceBoard:
    def __init__(self, trace_path, images):
        config = wasmtime.Config()
        config.wasm_threads = True
        config.shared_memory = True
        self.engine = wasmtime.Engine(config)
        self.images = images  # sha256 hex -> image bytes
        self.modules = {}
        self.trace = TraceFile(trace_path)
        self.processors = {}
        self.current = None  # the processor in a call
        self.device_cycle_next = False  # a "dev" line: the next hashed line is a device's bus cycle
        self.call_text = "-"  # the call in progress, for messages
        self.call_line = 0
        self.stats = {"calls": 0, "imports": 0, "memWrites": 0, "memBytes": 0, "peeks": 0, "peekBytes": 0, "powerOns": 0}
        from shared_memory import ProcessorRam  # noqa: E402 (needs wasmtime, imported above)
        self._ram_class = ProcessorRam

    # --- the trace, line by line ---

    def run(self):
        """Replays the whole trace; raises Difference at the first one."""
        while True:
            item = self.trace.next()
            if item is None:
                return
            line, event = item
            if self.apply_passive(line, event):
                continue
            kind = event.get("rp")
            if kind == "call":
                self.call(line, event)
            elif kind in ("ret", "end"):
                raise Difference(line, "-", "no call in progress", f"a {kind} line for {event.get('p')}")
            else:
                raise Difference(line, "-", "a call into the firmware before its imports",
                                 f"{event.get('src')} {event.get('ev')} outside any call")

    def apply_passive(self, line, event):
        """Applies a line that needs no firmware step (memory, power, devices' own lines); False for the others."""
        kind = event.get("rp")
        if kind is None:
            # A hashed line: active only when the processor in the call made it through an import. The rest are
            # devices' lines, interrupts latched, a device's bus cycle (marked "dev"), or the board's own.
            if self.device_cycle_next:
                self.device_cycle_next = False
                return True
            if self.current is not None and event.get("src") == self.current.name and event.get("ev") in IMPORT_EVENTS:
                return False
            if self.current is None and event.get("src") in self.processors and event.get("ev") in IMPORT_EVENTS:
                return False
            return True
        if kind == "dev":
            self.device_cycle_next = True
            return True
        if kind == "mem":
            ram = self.processor(line, event).ram
            data = _b64(event["b64"])
            if not ram.in_range(event["at"], len(data)):
                raise TraceFormatError(f"{self.trace.path}:{line}: a write of {len(data)} bytes at {event['at']} is outside {event['p']}'s memory")
            ram.write(event["at"], data)
            self.stats["memWrites"] += 1
            self.stats["memBytes"] += len(data)
            return True
        if kind == "peek":
            self.check_peek(line, event)
            return True
        if kind == "ram":
            pages = event["pages"]
            self.processors[event["p"]] = Processor(event["p"], self._ram_class(self.engine, pages), event["ramBytes"])
            return True
        if kind == "power":
            self.power_on(line, event)
            return True
        if kind == "trace":
            return True
        return False

    def processor(self, line, event):
        found = self.processors.get(event.get("p"))
        if found is None:
            raise TraceFormatError(f"{self.trace.path}:{line}: processor {event.get('p')} has no \"ram\" line before it")
        return found

    def check_peek(self, line, event):
        ram = self.processor(line, event).ram
        at, length = event["at"], event["len"]
        if not ram.in_range(at, length):
            raise TraceFormatError(f"{self.trace.path}:{line}: a device read of {length} bytes at {at} is outside {event['p']}'s memory")
        digest = hashlib.sha256(ram.read(at, length)).hexdigest()[:16]
        self.stats["peeks"] += 1
        self.stats["peekBytes"] += length
        if digest != event["sha"]:
            raise Difference(line, self.call_text,
                             f"{event['p']}'s memory [{at}, {at + length}) as a device read it (sha256 {event['sha']}…)",
                             f"other bytes (sha256 {digest}…)")

    def next_active(self):
        """The next line the firmware's step must match, applying the passive lines before it."""
        while True:
            item = self.trace.next()
            if item is None:
                raise Difference(self.trace.line_number + 1, self.call_text, "the rest of the call", "the end of the trace")
            line, event = item
            if not self.apply_passive(line, event):
                return item

    def apply_following(self):
        """Applies the passive lines after the last matched one: what a device did inside that import, before the
        firmware runs on."""
        while True:
            item = self.trace.next()
            if item is None:
                return
            if not self.apply_passive(*item):
                self.trace.push_back(item)
                return

    # --- power and calls ---

    def module_for(self, line, digest):
        if digest not in self.images:
            if digest == "unknown" and len(self.images) == 1:
                digest = next(iter(self.images))
            else:
                given = ", ".join(sorted(self.images)) or "none"
                raise TraceFormatError(f"{self.trace.path}:{line}: the trace ran image sha256 {digest}; given: {given} (pass it with --image)")
        if digest not in self.modules:
            self.modules[digest] = wasmtime.Module(self.engine, self.images[digest])
        return self.modules[digest]

    def power_on(self, line, event):
        """Instantiates the image over the processor's RAM, as the JS board's power-on does (data segments too)."""
        processor = self.processor(line, event)
        module = self.module_for(line, event["image"])
        store = wasmtime.Store(self.engine)
        externs = []
        for imported in module.imports:
            key = (imported.module, imported.name)
            if key == ("env", "memory"):
                externs.append(processor.ram.memory)
                continue
            if key not in ABI_SIGNATURES:
                raise Difference(line, f"{processor.name} power-on", "only the board ABI's imports (docs/board-abi.md)",
                                 f"the image imports {imported.module}.{imported.name}")
            ty = imported.type
            params = [str(p) for p in ty.params]
            results = [str(r) for r in ty.results]
            if (params, results) != ABI_SIGNATURES[key]:
                raise Difference(line, f"{processor.name} power-on", f"{imported.module}.{imported.name} {ABI_SIGNATURES[key]}",
                                 f"{(params, results)}")
            externs.append(wasmtime.Func(store, ty, self.import_handler(processor, imported.name)))
        instance = wasmtime.Instance(store, module, externs)
        processor.store = store
        processor.exports = instance.exports(store)
        processor.console = {1: b"", 2: b""}
        self.stats["powerOns"] += 1

    def call(self, line, event):
        processor = self.processor(line, event)
        name = event["fn"]
        args = [trace_int(a) for a in event.get("args", [])]
        self.call_text = f"{processor.name} {name}({', '.join(str(a) for a in args)}) at line {line}"
        if processor.exports is None:
            raise Difference(line, self.call_text, "a powered-on processor", "no instance (no \"power\" line)")
        function = processor.exports[name] if name in processor.exports else None
        if function is None:
            raise Difference(line, self.call_text, f"an export {name}", "the image has none")
        self.current = processor
        self.stats["calls"] += 1
        processor.calls += 1
        try:
            try:
                result = function(processor.store, *args)
            except ProcExit as exit_:
                return self.expect_end(processor, "exit", f"proc_exit({exit_.code})", code=exit_.code)
            except BoardStop:
                return None
            except wasmtime.Trap as trap:
                return self.expect_end(processor, "trap", f"a trap ({str(trap).splitlines()[0]})")
            ret_line, ret = self.next_active()
            if ret.get("rp") != "ret" or ret.get("p") != processor.name:
                raise Difference(ret_line, self.call_text, describe(ret), f"the call returned {result}")
            expected = ret.get("val")
            if (expected is None) != (result is None) or (expected is not None and trace_int(expected) != result):
                raise Difference(ret_line, self.call_text, f"the result {expected}", f"{result}")
            return None
        finally:
            self.current = None
            self.call_text = "-"

    def expect_end(self, processor, how, actual, code=None):
        line, event = self.next_active()
        if event.get("rp") != "end" or event.get("p") != processor.name or event.get("how") != how \
                or (code is not None and event.get("code") != code):
            raise Difference(line, self.call_text, describe(event), actual)

    # --- the imports ---

    def expect(self, processor, what):
        """The trace line the import `what` (an IMPORT_EVENTS name) must match; stops the call where the JS board did."""
        self.stats["imports"] += 1
        line, event = self.next_active()
        if event.get("rp") == "end" and event.get("p") == processor.name and event.get("how") == "stop":
            raise BoardStop()
        if event.get("src") != processor.name or event.get("ev") != what:
            return line, event, False
        return line, event, True

    def import_handler(self, processor, name):
        board = self
        ram = processor.ram

        def mismatch(line, event, actual):
            raise Difference(line, board.call_text, describe(event), actual)

        def halves(low, high):
            return ((high & 0xFFFFFFFF) << 32) | (low & 0xFFFFFFFF)

        def bus_read(bits):
            what = f"r{bits}"

            def read(address_low, address_high):
                address = halves(address_low, address_high)
                line, event, ok = board.expect(processor, what)
                if not ok or trace_int(event["addr"]) != address:
                    mismatch(line, event, f"{what} at {address:#x}")
                value = trace_int(event["val"])
                board.apply_following()
                if bits == 64:
                    processor.read64_high = signed(value >> 32, 32)
                return signed(value & 0xFFFFFFFF, 32)
            return read

        def bus_read64_high():
            return processor.read64_high

        def bus_write(bits):
            what = f"w{bits}"

            def write(address_low, address_high, value):
                address = halves(address_low, address_high)
                value &= (1 << bits) - 1
                line, event, ok = board.expect(processor, what)
                if not ok or trace_int(event["addr"]) != address or trace_int(event["val"]) != value:
                    mismatch(line, event, f"{what} at {address:#x} of {value:#x}")
                board.apply_following()
            return write

        def bus_write64(address_low, address_high, value_low, value_high):
            bus_write(64)(address_low, address_high, halves(value_low, value_high))

        def fd_write(fd, iovs, iovs_length, written_ptr):
            iovs &= 0xFFFFFFFF
            written_ptr &= 0xFFFFFFFF
            if fd not in (1, 2):
                return WASI_ERRNO_BADF
            if iovs_length < 0 or not ram.in_range(iovs, iovs_length * 8) or not ram.in_range(written_ptr, 4):
                return WASI_ERRNO_FAULT
            written = 0
            for index in range(iovs_length):
                buf = ram.read_u32(iovs + index * 8)
                length = ram.read_u32(iovs + index * 8 + 4)
                if not ram.in_range(buf, length):
                    return WASI_ERRNO_FAULT
                # As the JS board: each piece decoded on its own, lines split at "\n" (host/board/processor.ts).
                text = processor.console[fd] + ram.read(buf, length)
                while b"\n" in text:
                    cut = text.index(b"\n")
                    shown = text[:cut].decode("utf-8", errors="replace")
                    text = text[cut + 1:]
                    line, event, ok = board.expect(processor, "console")
                    if not ok or event.get("fd") != fd or event.get("text") != shown:
                        mismatch(line, event, f"console fd {fd}: {json.dumps(shown)}")
                processor.console[fd] = text
                written += length
            ram.write(written_ptr, written.to_bytes(4, "little"))
            board.apply_following()
            return WASI_ERRNO_SUCCESS

        def clock_time_get(clock_id, _precision, time_ptr):
            time_ptr &= 0xFFFFFFFF
            if clock_id not in (0, 1):
                return WASI_ERRNO_INVAL
            if not ram.in_range(time_ptr, 8):
                return WASI_ERRNO_FAULT
            line, event, ok = board.expect(processor, "clock")
            if not ok:
                mismatch(line, event, f"a clock read (clock {clock_id})")
            ram.write(time_ptr, int(event["t"]).to_bytes(8, "little"))
            board.apply_following()
            return WASI_ERRNO_SUCCESS

        def random_get(buf, length):
            buf &= 0xFFFFFFFF
            if length < 0 or not ram.in_range(buf, length):
                return WASI_ERRNO_FAULT
            line, event, ok = board.expect(processor, "random")
            data = bytes.fromhex(event.get("bytes", "")) if ok else b""
            if not ok or len(data) != length:
                mismatch(line, event, f"random_get of {length} bytes")
            ram.write(buf, data)
            board.apply_following()
            return WASI_ERRNO_SUCCESS

        def proc_exit(code):
            raise ProcExit(code)

        handlers = {
            "bus_read8": bus_read(8), "bus_read16": bus_read(16), "bus_read32": bus_read(32), "bus_read64": bus_read(64),
            "bus_read64_high": bus_read64_high,
            "bus_write8": bus_write(8), "bus_write16": bus_write(16), "bus_write32": bus_write(32), "bus_write64": bus_write64,
            "fd_write": fd_write, "clock_time_get": clock_time_get, "random_get": random_get, "proc_exit": proc_exit,
        }
        return handlers[name]


def _b64(text):
    import base64
    return base64.b64decode(text)


def main(argv):
    parser = argparse.ArgumentParser(prog="replay.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", help="a trace file written by `wasm-iop run --trace FILE` (.gz too)")
    parser.add_argument("--image", action="append", default=[],
                        help="a firmware image the trace may name (default: build/firmware.wasm); repeatable")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if wasmtime is None:
        print("replay.py: the wasmtime bindings for Python are missing: pip install wasmtime", file=sys.stderr)
        return 2
    paths = args.image or [os.path.join(os.path.dirname(__file__), "..", "..", "build", "firmware.wasm")]
    images = {}
    for path in paths:
        try:
            with open(path, "rb") as image:
                data = image.read()
        except OSError as error:
            print(f"replay.py: --image {path}: {error.strerror}", file=sys.stderr)
            return 2
        images[hashlib.sha256(data).hexdigest()] = data
    started = time.monotonic()
    try:
        from importlib.metadata import version
        runtime = version("wasmtime")
    except Exception:  # an unpackaged build: the version is only for the report
        runtime = "?"
    result = {"trace": args.trace, "wasmtime": runtime}
    try:
        board = TraceBoard(args.trace, images)
        board.run()
        result.update(ok=True)
    except TraceFormatError as error:
        print(f"replay.py: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"replay.py: {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except Difference as difference:
        result.update(ok=False, difference={"line": difference.line, "call": difference.call,
                                            "expected": difference.expected, "actual": difference.actual})
    result.update(seconds=round(time.monotonic() - started, 3), lines=board.trace.line_number,
                  hashedLines=board.trace.hashed_count, replayLines=board.trace.replay_count, **board.stats)
    if result["ok"]:
        result["sha256"] = board.trace.digest()
    board.trace.close()
    if args.json:
        print(json.dumps(result))
    elif result["ok"]:
        print(f"no difference: {result['lines']} lines, {result['calls']} calls, {result['imports']} imports answered, "
              f"{result['memWrites']} memory writes ({result['memBytes']} bytes), {result['peeks']} device reads checked, "
              f"in {result['seconds']} s; trace sha256 {result['sha256']}")
    else:
        d = result["difference"]
        print(f"first difference at line {d['line']}, in {d['call']}:\n  expected: {d['expected']}\n  actual:   {d['actual']}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
