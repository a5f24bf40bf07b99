// `npm run build:native [-- --arm]`: builds the native board (boards/native/, C, CMake) into build/native/<arch>/.
// With --arm it cross-builds for ARMv7 (Thumb-2, hard float) with Debian's g++-arm-linux-gnueabihf, against
// Debian's armhf packages of the board's libraries, downloaded with `apt-get download` and unpacked into
// build/native/armhf-sysroot (the machine needs the armhf architecture: dpkg --add-architecture armhf; apt-get update).
// Run the ARM board with qemu-arm: see boards/native/README.md.
//
// Plain JavaScript, like js.mjs: it runs without a TypeScript build.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The repository: the nearest folder up from this file (or the bundle it was compiled into) with wasm-iop's package.json.
function findRoot() {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name === "wasm-iop") return dir;
    } catch {
      // not here
    }
    if (dirname(dir) === dir) throw new Error("native.mjs: not inside the wasm-iop repository");
  }
}
const ROOT = findRoot();
const SOURCE = join(ROOT, "boards", "native");
const OUT = join(ROOT, "build", "native");
export const ARMHF_SYSROOT = join(OUT, "armhf-sysroot");
/** The Debian armhf packages the ARM build links against (headers and libraries; libc comes with the cross gcc). */
export const ARMHF_PACKAGES = ["wabt:armhf", "libsodium-dev:armhf", "libsodium23:armhf", "libcjson-dev:armhf", "libcjson1:armhf"];
/** The ARM C library for qemu-arm's -L, from Debian's libc6-armhf-cross (installed with gcc-arm-linux-gnueabihf). */
export const ARMHF_QEMU_LIBC = "/usr/arm-linux-gnueabihf";

/** The board's executable for `arch` ("x86_64" or "armv7"). */
export function nativeBoardPath(arch = "x86_64") {
  return join(OUT, arch, "iop-native-board");
}

/** The command prefix that runs the ARM build under qemu-arm (libc from the cross toolchain, libcjson from the sysroot). */
export function qemuArmPrefix() {
  return ["qemu-arm", "-L", ARMHF_QEMU_LIBC, "-E", `LD_LIBRARY_PATH=${join(ARMHF_SYSROOT, "usr", "lib", "arm-linux-gnueabihf")}`];
}

// Asynchronous, so a caller's event loop keeps turning during a build that takes minutes on a busy machine (a test
// worker that blocks for 60 s breaks vitest's worker RPC: test/support/stall_guard.ts).
/** Runs `command`; resolves with its exit status, rejects if it cannot be started. */
function status(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: "inherit", ...options });
    child.on("error", (error) => reject(new Error(`${command}: ${error.message}`)));
    child.on("close", (code, signal) => resolve(code ?? signal));
  });
}

async function run(command, args, options = {}) {
  const code = await status(command, args, options);
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}`);
}

/** Makes build/native/armhf-sysroot from Debian's armhf packages, unless it is there already. */
export async function ensureArmhfSysroot() {
  if (existsSync(join(ARMHF_SYSROOT, "usr", "lib", "arm-linux-gnueabihf", "libwabt.a"))) return;
  const debs = join(OUT, "armhf-debs");
  mkdirSync(debs, { recursive: true });
  const download = await status("apt-get", ["download", ...ARMHF_PACKAGES], { cwd: debs, stdio: ["ignore", "inherit", "inherit"] }).catch(() => null);
  if (download !== 0) {
    throw new Error("apt-get download of the armhf packages failed; the machine needs the armhf architecture " +
      "(as root: dpkg --add-architecture armhf && apt-get update)");
  }
  for (const file of readdirSync(debs).filter((f) => f.endsWith(".deb"))) await run("dpkg", ["-x", join(debs, file), ARMHF_SYSROOT]);
}

/** Configures and builds; resolves with the executable's path. */
export async function buildNative({ arm = false, quiet = false } = {}) {
  const arch = arm ? "armv7" : "x86_64";
  const dir = join(OUT, arch);
  mkdirSync(dir, { recursive: true });
  const configure = ["-S", SOURCE, "-B", dir, "-DCMAKE_BUILD_TYPE=Release"];
  if (arm) {
    await ensureArmhfSysroot();
    configure.push(`-DCMAKE_TOOLCHAIN_FILE=${join(SOURCE, "cmake", "armv7-linux-gnueabihf.cmake")}`, `-DIOP_SYSROOT=${ARMHF_SYSROOT}`);
  }
  const stdio = quiet ? ["ignore", "ignore", "inherit"] : "inherit";
  await run("cmake", configure, { stdio });
  await run("cmake", ["--build", dir, "--parallel", "2"], { stdio });
  return nativeBoardPath(arch);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write("usage: npm run build:native [-- --arm]\n\nBuilds boards/native into build/native/x86_64 " +
      "(or build/native/armv7 with --arm; needs gcc/g++-arm-linux-gnueabihf and the armhf architecture in apt).\n");
    process.exit(0);
  }
  const unknown = args.filter((a) => a !== "--arm");
  if (unknown.length > 0) {
    process.stderr.write(`build:native: unknown option ${unknown[0]} (usage: npm run build:native [-- --arm])\n`);
    process.exit(2);
  }
  try {
    const path = await buildNative({ arm: args.includes("--arm") });
    process.stdout.write(`built ${path} (${statSync(path).size} bytes)\n`);
  } catch (error) {
    process.stderr.write(`build:native: ${error.message}\n`);
    process.exit(1);
  }
}
