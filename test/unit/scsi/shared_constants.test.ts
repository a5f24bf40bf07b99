// The persistent reservation record's layout, as the firmware writes and reads it (assembly/scsi/pr_record.ts) and as
// the nvram fuzz target forges it (tools/fuzz/pr_record.ts): read from both sides (test/support/shared_constants.ts),
// every size, the magic, the version and every field's offset must agree, so neither side can change alone. The
// firmware's file-private names (AT_X, ENTRY_AT_X, HOLDER_NONE) are PR_RECORD_X on the fuzz side.
import { describe, expect, it } from "vitest";
import * as fuzzRecord from "../../../tools/fuzz/pr_record.ts";
import { disagreements, moduleConstants, sourceConstants } from "../../support/shared_constants.ts";

// The firmware's constants that are the record's layout (the entry flags, the copy index and the check results are
// the firmware's own business: the fuzz target writes flags and versions from its input).
const LAYOUT = /^(PR_RECORD_|AT_|ENTRY_AT_|HOLDER_NONE$)/;
const fuzzName = (firmwareName: string) => (firmwareName.startsWith("PR_RECORD_") ? firmwareName : `PR_RECORD_${firmwareName}`);

describe("persistent reservation record: firmware and the nvram fuzz target agree", () => {
  const firmware = sourceConstants("assembly/scsi/pr_record.ts");
  const fuzz = moduleConstants(fuzzRecord as unknown as Record<string, unknown>);
  const layout = [...firmware.keys()].filter((name) => LAYOUT.test(name));

  it("every layout constant of the firmware has a twin on the fuzz side, and the fuzz side has nothing else", () => {
    expect(layout.length).toBe(21); // the parser found the sizes, the magic, the version and every offset
    expect([...fuzz.keys()].sort()).toEqual(layout.map(fuzzName).sort());
  });

  it("each twin has the firmware's value", () => {
    expect(disagreements(firmware, fuzz, layout.map((name) => [name, fuzzName(name)] as const))).toEqual([]);
  });
});
