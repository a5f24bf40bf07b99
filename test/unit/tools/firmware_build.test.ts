// The firmware build works from any working directory: `wasm-iop run` started outside the repository rebuilds a
// stale image with asc, whose entry, config and output paths resolve against its base directory. The test compiles
// the release image with the build's own arguments (tools/build/firmware.ts, ascArguments) from an empty temporary
// directory, without writing it (--noEmit): the compiler must find the entry and asconfig.json (the stub runtime and
// the panic hook come from there; without them the entry is not found or does not compile).
import { describe, expect, it, onTestFinished } from "vitest";
import { ascArguments } from "../../../tools/build/firmware.ts";
import { testTempDir } from "../../support/temp_dir.ts";

describe("the firmware build", () => {
  it("compiles the release image when started from a directory outside the package", async () => {
    const elsewhere = testTempDir("wasm-iop-build-cwd-");
    const before = process.cwd();
    process.chdir(elsewhere);
    onTestFinished(() => process.chdir(before));
    const asc = await import("assemblyscript/asc");
    let output = "";
    const sink = { write: (chunk: string | Uint8Array) => { output += chunk.toString(); return true; } };
    const { error } = await asc.main([...ascArguments("release"), "--noEmit"], { stdout: sink as never, stderr: sink as never } as never);
    expect(error, output).toBeNull(); // the compiler's warnings may stand; an error names what it did not find
    expect(output).not.toContain("not found");
  });
});
