// The mutator: AFL-style havoc over bytes. One to eight stacked edits: bit flips, interesting values, small
// arithmetic, random bytes, a dictionary token inserted or written over, a range deleted or duplicated, or a splice
// with another corpus input. Every choice comes from the campaign's seeded generator, so a campaign replays.
import type { Prng } from "../../host/sim/prng.ts";

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0x3f, 0xc0];
const INTERESTING_32 = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff, 0x1_0000, 512, 4096, 65536, 0xff_ffff];

export function mutate(parent: Uint8Array, other: Uint8Array, dictionary: readonly Uint8Array[], rng: Prng, lengthMax: number): Uint8Array {
  let data: Uint8Array = parent.length > 0 ? parent.slice() : new Uint8Array([rng.intBelow(256)]);
  const edits = 1 << rng.intBelow(4);
  for (let e = 0; e < edits; e++) {
    const at = rng.intBelow(data.length);
    switch (rng.intBelow(11)) {
      case 0: data[at] ^= 1 << rng.intBelow(8); break;
      case 1: data[at] = INTERESTING_8[rng.intBelow(INTERESTING_8.length)]!; break;
      case 2: data[at] = (data[at]! + rng.intBelow(35) - 17) & 0xff; break;
      case 3: data[at] = rng.intBelow(256); break;
      case 4: {
        const v = INTERESTING_32[rng.intBelow(INTERESTING_32.length)]!;
        for (let i = 0; i < 4 && at + i < data.length; i++) data[at + i] = (v >>> (24 - 8 * i)) & 0xff;
        break;
      }
      case 5: case 6: {
        if (dictionary.length === 0) break;
        const token = dictionary[rng.intBelow(dictionary.length)]!;
        if (rng.intBelow(2) === 0) data = splice(data, at, 0, token);
        else for (let i = 0; i < token.length && at + i < data.length; i++) data[at + i] = token[i]!;
        break;
      }
      case 7: {
        const count = 1 + rng.intBelow(Math.min(16, data.length - at));
        if (data.length > count) data = splice(data, at, count, new Uint8Array(0));
        break;
      }
      case 8: {
        const count = 1 + rng.intBelow(Math.min(16, data.length - at));
        data = splice(data, rng.intBelow(data.length + 1), 0, data.slice(at, at + count));
        break;
      }
      case 9: {
        const bytes = new Uint8Array(1 + rng.intBelow(8));
        rng.fill(bytes);
        data = splice(data, at, 0, bytes);
        break;
      }
      default: {
        if (other.length === 0) break;
        const from = rng.intBelow(other.length);
        data = concat(data.subarray(0, at), other.subarray(from));
      }
    }
    if (data.length === 0) data = new Uint8Array([rng.intBelow(256)]);
  }
  return data.length > lengthMax ? data.slice(0, lengthMax) : data;
}

function splice(data: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length - remove + insert.length);
  out.set(data.subarray(0, at));
  out.set(insert, at);
  out.set(data.subarray(at + remove), at + insert.length);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
