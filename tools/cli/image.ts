// `wasm-iop image`: make signing keys, build a firmware image from the .wasm, sign it, verify it, and show it.
import { execFileSync } from "node:child_process";
import { createPublicKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  buildImage,
  computeImageHash,
  decodeImage,
  formatVersion,
  IMAGE_MAGIC,
  IMAGE_SIZE_MAX_BYTES,
  ImageError,
  parseVersion,
  signImage,
  verifyImage,
  type VerifyPolicy,
} from "../../host/image/format.ts";
import { generateKeyPair, KeyError, keyIdHex, keyIdOf, loadPrivateKey, loadPublicKey, publicKeyFromPem, trustedKey, writeKeyPair } from "../../host/image/keys.ts";
import { addFirmwareProducer, readProducers, WasmFormatError } from "../../host/image/producers.ts";
import { ABI_VERSION } from "../../host/abi/board_imports.ts";
import { packageVersion } from "../build/firmware.ts";
import type { Command } from "./command.ts";
import { UsageError } from "./command.ts";

/** Where a command's text goes; the CLI passes the process's streams, tests pass collectors. */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CommandIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

const WASM_DEFAULT_PATH = "build/firmware.wasm";
const BOARD_COMPAT_DEFAULT = "wasm-iop";
const ABI_VERSION_DEFAULT = ABI_VERSION; // the board ABI this build implements
const PRODUCER_NAME_DEFAULT = "wasm-iop";

const HELP_KEYGEN = `usage: wasm-iop image keygen --out PREFIX [--force]

Makes an Ed25519 signing key pair: PREFIX holds the private key (PKCS#8 PEM, mode 0600), PREFIX.pub the public
key (SPKI PEM). Prints the key id, the first 8 bytes of SHA-256 over the raw public key, which names the key in
every image it signs. Give boards the .pub file; keep PREFIX secret and backed up. keys/dev-DO-NOT-SHIP.* is for
tests only: make your own key for any board you ship.

  --out PREFIX   where to write the pair
  --force        replace existing files (a board that trusts only the old key will refuse new images)`;

const HELP_BUILD = `usage: wasm-iop image build [--wasm FILE] --out IMAGE [options]

Wraps the firmware .wasm in an unsigned image: a 64-byte header, the module as payload (with producer metadata
added to its \`producers\` custom section), and a TLV trailer with the security counter and the SHA-256. Sign it
next with \`wasm-iop image sign\`. The layout is in docs/image-format.md.

  --wasm FILE              the firmware module (default ${WASM_DEFAULT_PATH})
  --out IMAGE              where to write the image
  --version X.Y.Z[+B]      firmware version (default: package.json's version)
  --board-compat STRING    the board family the image runs on (default "${BOARD_COMPAT_DEFAULT}")
  --security-counter N     anti-rollback counter, u32 (default 0); once a board confirms an image with N, it
                           refuses every image below N. Raise it when a release fixes a security bug.
  --abi N                  the board ABI version the firmware needs (default ${ABI_VERSION_DEFAULT})
  --git-commit SHA         commit recorded in the producers section (default: \`git rev-parse HEAD\`, if any)
  --name NAME              producer name recorded with the version (default "${PRODUCER_NAME_DEFAULT}")`;

const HELP_SIGN = `usage: wasm-iop image sign --key PREFIX IMAGE [--out FILE]

Signs IMAGE with the private key in PREFIX: adds the key id to the protected TLVs, recomputes the SHA-256 over
header, payload and protected TLVs, and adds the Ed25519 signature of that hash. An existing signature is replaced.

  --key PREFIX   the private key file written by \`image keygen\`
  --out FILE     write the signed image here instead of over IMAGE`;

const HELP_VERIFY = `usage: wasm-iop image verify --key PREFIX.pub IMAGE [options]

Checks IMAGE as a board's boot ROM would: structure and size, SHA-256, key id among the given keys, Ed25519
signature, and, when given, ABI version, board compatibility and security counter. Exits 0 for a good image; for
any other prints the refusal reason (truncated, oversized, bad-magic, bad-header, bad-tlv, trailing-bytes, bad-hash,
unsigned, unknown-key, bad-signature, bad-payload, abi-mismatch, board-mismatch, rollback) and exits 1.

  --key FILE              a trusted public key (.pub); repeat for several
  --board-compat STRING   the board's compatibility string
  --abi N                 the board's ABI version
  --security-counter N    the board's stored security counter
  --slot-size BYTES       the slot the image must fit in`;

const HELP_INFO = `usage: wasm-iop image info IMAGE

Prints an image's header, TLVs and producers without judging its signature (use \`image verify\` for that).
Exits 1 if the image's structure cannot be read.`;

const SUBCOMMAND_HELP: Record<string, string> = {
  keygen: HELP_KEYGEN,
  build: HELP_BUILD,
  sign: HELP_SIGN,
  verify: HELP_VERIFY,
  info: HELP_INFO,
};

const HELP = `usage: wasm-iop image <subcommand> [options]

Signed firmware images for the board's A/B flash: the boot ROM boots only images signed by a key it trusts, for
its board and ABI, with a security counter no lower than the one it stored. \`wasm-iop image <subcommand> --help\`
explains each.

subcommands:
  keygen   make an Ed25519 signing key pair
  build    wrap the firmware .wasm in an unsigned image
  sign     sign an image
  verify   check an image as the boot ROM would (exit 0 only for a good image)
  info     show an image's fields

${Object.values(SUBCOMMAND_HELP).join("\n\n")}`;

function parse(argv: string[], options: ParseArgsConfig["options"], help: string): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${help}`);
  }
}

function stringOption(values: Record<string, unknown>, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

function requireString(values: Record<string, unknown>, name: string, help: string): string {
  const value = stringOption(values, name);
  if (value === undefined) throw new UsageError(`--${name} is required\n\n${help}`);
  return value;
}

function onePositional(positionals: string[], what: string, help: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected one ${what}, got ${positionals.length}\n\n${help}`);
  return positionals[0] as string;
}

function integerOption(values: Record<string, unknown>, name: string, maxValue: number, help: string): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) > maxValue) throw new UsageError(`--${name} ${text} is not an integer 0..${maxValue}\n\n${help}`);
  return Number(text);
}

function readFile(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** The commit the tree is at, or null outside a git checkout or before the first commit. */
function gitHeadCommit(): string | null {
  try {
    const out = execFileSync("git", ["rev-parse", "--verify", "--quiet", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const commit = out.trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

async function runKeygen(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: "string" }, force: { type: "boolean" } }, HELP_KEYGEN);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\n\n${HELP_KEYGEN}`);
  const prefix = requireString(values, "out", HELP_KEYGEN);
  const pair = generateKeyPair();
  writeKeyPair(prefix, pair, values.force === true);
  io.out(`wrote ${prefix} (private) and ${prefix}.pub; key id ${keyIdHex(keyIdOf(publicKeyFromPem(pair.publicKeyPem)))}\n`);
  return 0;
}

async function runBuild(argv: string[], io: CommandIo): Promise<number> {
  const options = {
    wasm: { type: "string" },
    out: { type: "string" },
    version: { type: "string" },
    "board-compat": { type: "string" },
    "security-counter": { type: "string" },
    abi: { type: "string" },
    "git-commit": { type: "string" },
    name: { type: "string" },
  } as const;
  const { values, positionals } = parse(argv, options, HELP_BUILD);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\n\n${HELP_BUILD}`);
  const outPath = requireString(values, "out", HELP_BUILD);
  const wasmPath = stringOption(values, "wasm") ?? WASM_DEFAULT_PATH;
  const versionText = stringOption(values, "version") ?? packageVersion();
  let version;
  try {
    version = parseVersion(versionText);
  } catch (error) {
    throw new UsageError(`--version: ${(error as Error).message}\n\n${HELP_BUILD}`);
  }
  const securityCounter = integerOption(values, "security-counter", 0xffffffff, HELP_BUILD) ?? 0;
  const abiVersion = integerOption(values, "abi", 0xffff, HELP_BUILD) ?? ABI_VERSION_DEFAULT;
  const boardCompat = stringOption(values, "board-compat") ?? BOARD_COMPAT_DEFAULT;
  const gitCommit = stringOption(values, "git-commit") ?? gitHeadCommit();
  const name = stringOption(values, "name") ?? PRODUCER_NAME_DEFAULT;
  const payload = addFirmwareProducer(readFile(wasmPath), { name, version: versionText, gitCommit });
  let image: Uint8Array;
  try {
    image = buildImage({ payload, version, abiVersion, boardCompat, securityCounter });
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(`${error.message}\n\n${HELP_BUILD}`);
    throw error;
  }
  writeFileSync(outPath, image);
  io.out(`wrote ${outPath}: ${image.length} bytes, version ${formatVersion(version)}, board "${boardCompat}", ABI ${abiVersion}, ` +
    `security counter ${securityCounter}, unsigned\n`);
  return 0;
}

async function runSign(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, { key: { type: "string" }, out: { type: "string" } }, HELP_SIGN);
  const imagePath = onePositional(positionals, "IMAGE", HELP_SIGN);
  const privateKey = loadPrivateKey(requireString(values, "key", HELP_SIGN));
  const outPath = stringOption(values, "out") ?? imagePath;
  const signed = signImage(readFile(imagePath), privateKey);
  writeFileSync(outPath, signed);
  io.out(`signed ${outPath} with key ${keyIdHex(keyIdOf(createPublicKey(privateKey)))}: ${signed.length} bytes\n`);
  return 0;
}

async function runVerify(argv: string[], io: CommandIo): Promise<number> {
  const options = {
    key: { type: "string", multiple: true },
    "board-compat": { type: "string" },
    abi: { type: "string" },
    "security-counter": { type: "string" },
    "slot-size": { type: "string" },
  } as const;
  const { values, positionals } = parse(argv, options, HELP_VERIFY);
  const imagePath = onePositional(positionals, "IMAGE", HELP_VERIFY);
  const keyPaths = values.key;
  if (!Array.isArray(keyPaths) || keyPaths.length === 0) throw new UsageError(`--key is required\n\n${HELP_VERIFY}`);
  const policy: VerifyPolicy = {
    trustedKeys: keyPaths.map((path) => trustedKey(loadPublicKey(String(path)))),
    boardCompat: stringOption(values, "board-compat"),
    abiVersion: integerOption(values, "abi", 0xffff, HELP_VERIFY),
    securityCounterMin: integerOption(values, "security-counter", 0xffffffff, HELP_VERIFY),
    slotSizeBytes: integerOption(values, "slot-size", Number.MAX_SAFE_INTEGER, HELP_VERIFY),
  };
  const image = readFile(imagePath);
  try {
    const decoded = verifyImage(image, policy);
    io.out(`${imagePath}: good: version ${formatVersion(decoded.header.version)}, board "${decoded.header.boardCompat}", ` +
      `ABI ${decoded.header.abiVersion}, security counter ${decoded.securityCounter}, key ${keyIdHex(decoded.keyId as Uint8Array)}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ImageError)) throw error;
    io.err(`${imagePath}: refused: ${error.message}\n`);
    return 1;
  }
}

function producersText(payload: Uint8Array): string {
  try {
    const producers = readProducers(payload);
    if (producers.size === 0) return "(none)";
    return [...producers].map(([field, entries]) => `${field}: ${entries.map((e) => `${e.name} ${e.version}`).join(", ")}`).join("; ");
  } catch (error) {
    if (error instanceof WasmFormatError) return `(unreadable: ${error.message})`;
    throw error;
  }
}

async function runInfo(argv: string[], io: CommandIo): Promise<number> {
  const { positionals } = parse(argv, {}, HELP_INFO);
  const imagePath = onePositional(positionals, "IMAGE", HELP_INFO);
  const image = readFile(imagePath);
  let decoded;
  try {
    decoded = decodeImage(image);
  } catch (error) {
    if (!(error instanceof ImageError)) throw error;
    io.err(`${imagePath}: cannot read: ${error.message}\n`);
    return 1;
  }
  const { header } = decoded;
  const hashOk = Buffer.from(computeImageHash(image, decoded)).equals(Buffer.from(decoded.hash));
  const lines = [
    `image             ${imagePath} (${image.length} bytes, limit ${IMAGE_SIZE_MAX_BYTES})`,
    `magic             0x${IMAGE_MAGIC.toString(16)}`,
    `header            ${header.headerSizeBytes} bytes`,
    `payload           ${header.payloadSizeBytes} bytes`,
    `version           ${formatVersion(header.version)}`,
    `abi               ${header.abiVersion}`,
    `board compat      ${header.boardCompat}`,
    `flags             0x${header.flags.toString(16)}`,
    `security counter  ${decoded.securityCounter}`,
    `key id            ${decoded.keyId === null ? "(unsigned)" : keyIdHex(decoded.keyId)}`,
    `sha-256           ${Buffer.from(decoded.hash).toString("hex")} (${hashOk ? "matches" : "DOES NOT MATCH"})`,
    `signature         ${decoded.signature === null ? "(none)" : "ed25519, 64 bytes (not checked; use image verify)"}`,
    `producers         ${producersText(decoded.payload)}`,
  ];
  io.out(lines.join("\n") + "\n");
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[], io: CommandIo) => Promise<number>> = {
  keygen: runKeygen,
  build: runBuild,
  sign: runSign,
  verify: runVerify,
  info: runInfo,
};

/** Builds the `image` command writing to `io`; `imageCommand` is the one wired to the process's streams. */
export function createImageCommand(io: CommandIo): Command {
  return {
    name: "image",
    help: HELP,
    handlesHelp: true,
    async run(argv: string[]): Promise<number> {
      const [subcommand, ...rest] = argv;
      if (subcommand === undefined) throw new UsageError("a subcommand is required");
      if (subcommand === "--help" || subcommand === "-h" || subcommand === "help") {
        io.out(HELP + "\n");
        return 0;
      }
      const body = SUBCOMMANDS[subcommand];
      const help = SUBCOMMAND_HELP[subcommand];
      if (body === undefined || help === undefined) throw new UsageError(`unknown subcommand '${subcommand}'`);
      if (rest.includes("--help") || rest.includes("-h")) {
        io.out(help + "\n");
        return 0;
      }
      try {
        return await body(rest, io);
      } catch (error) {
        // Files and keys that cannot be used are the user's to fix: a message and exit 1, not a stack trace.
        if (error instanceof KeyError || error instanceof ImageError || error instanceof WasmFormatError || isFileError(error)) {
          io.err(`wasm-iop image ${subcommand}: ${(error as Error).message}\n`);
          return 1;
        }
        throw error;
      }
    },
  };
}

function isFileError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string" && "syscall" in error;
}

export const imageCommand: Command = createImageCommand(processIo);
