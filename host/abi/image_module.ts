// A firmware image compiled for a processor, remembered with the SHA-256 of its bytes: WebAssembly.Module keeps no
// bytes, and the replayable trace names the image each processor powered on with (docs/trace-format.md, "power").
import { createHash } from "node:crypto";

const digests = new WeakMap<WebAssembly.Module, string>();

/** Compiles `bytes` and remembers their SHA-256 for imageDigest(). */
export function compileImage(bytes: Uint8Array): WebAssembly.Module {
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  digests.set(module, createHash("sha256").update(bytes).digest("hex"));
  return module;
}

/** The SHA-256 (hex) of the bytes `module` was compiled from, or "unknown" when it was not made by compileImage. */
export function imageDigest(module: WebAssembly.Module): string {
  return digests.get(module) ?? "unknown";
}
