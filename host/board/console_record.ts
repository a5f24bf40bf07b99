// The firmware's machine-readable console lines: `<tag> [<kind>] key=value …`, such as
// `inventory disk processor=1 index=0 blocks=131072 blockSize=512` (the UMA's inventory) or
// `volume index=0 name=r5 type=raid5 state=degraded` (a volume's state). `wasm-iop inventory` and the board's
// control (`wasm-iop fault status`) read them; this is their one parser.

export type ConsoleRecord = Record<string, string | number>;

/**
 * Parses `text` when its first word is `tag`: the word after it is the record's kind when it holds no `=`, and the
 * key=value pairs after that are its fields (digits-only values become numbers; hex such as 0x1af4 stays a string;
 * words without `=` are skipped). Undefined for any other line.
 */
export function parseConsoleRecord(text: string, tag: string): { kind: string | undefined; record: ConsoleRecord } | undefined {
  const words = text.trim().split(/\s+/);
  if (words[0] !== tag) return undefined;
  let first = 1;
  let kind: string | undefined;
  if (words.length > 1 && !words[1]!.includes("=")) {
    kind = words[1];
    first = 2;
  }
  const record: ConsoleRecord = {};
  for (const pair of words.slice(first)) {
    const at = pair.indexOf("=");
    if (at <= 0) continue;
    const value = pair.slice(at + 1);
    record[pair.slice(0, at)] = /^\d+$/.test(value) ? Number(value) : value;
  }
  return { kind, record };
}
