"""A processor's RAM under wasmtime-py: a shared memory of fixed size, and the workaround its binding needs.

wasmtime-py 49's SharedMemory._as_extern wraps its pointer in ctypes.pointer() although self.ptr() already is a
pointer to the wasmtime_sharedmemory_t, so linking one as an import fails with a ctypes type error naming
LP_LP_wasmtime_sharedmemory. The subclass below passes self.ptr() itself. (SharedMemory.size() has the same
double wrap; this module never calls it and uses data_len() instead.) Remove the override once the binding is fixed.
"""

import ctypes

import wasmtime
from wasmtime import _ffi as ffi

WASM_PAGE_BYTES = 65536


class LinkableSharedMemory(wasmtime.SharedMemory):
    """wasmtime.SharedMemory that can be linked as an import (the workaround above)."""

    def _as_extern(self):
        union = ffi.wasmtime_extern_union(sharedmemory=self.ptr())
        return ffi.wasmtime_extern_t(ffi.WASMTIME_EXTERN_SHAREDMEMORY, union)


class ProcessorRam:
    """`pages` of zeroed shared memory, initial = maximum (docs/board-abi.md), with byte access from the host."""

    def __init__(self, engine, pages):
        self.pages = pages
        self.memory = LinkableSharedMemory(engine, wasmtime.MemoryType(wasmtime.Limits(pages, pages), shared=True))
        self.size_bytes = self.memory.data_len()
        if self.size_bytes != pages * WASM_PAGE_BYTES:
            raise RuntimeError(f"wasmtime made a shared memory of {self.size_bytes} bytes, asked {pages} pages")
        self._base = ctypes.cast(self.memory.data_ptr(), ctypes.c_void_p).value

    def in_range(self, offset, length_bytes):
        return 0 <= offset and 0 <= length_bytes and offset + length_bytes <= self.size_bytes

    def read(self, offset, length_bytes):
        assert self.in_range(offset, length_bytes), "read outside the memory"
        return ctypes.string_at(self._base + offset, length_bytes)

    def write(self, offset, data):
        assert self.in_range(offset, len(data)), "write outside the memory"
        ctypes.memmove(self._base + offset, data, len(data))

    def read_u32(self, offset):
        return int.from_bytes(self.read(offset, 4), "little")
