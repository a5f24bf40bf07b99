// wasm-iop fault: sends one control command to a running board (`wasm-iop run`) through the control socket in its
// data directory, and prints the board's answer. The board checks the names and applies the command at its current
// board time (host/board/control.ts); this command only carries it there (docs/fault.md).
import { createConnection } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CONTROL_ACTIONS, type ControlAnswer, parseControlRequest } from "../../host/board/control.ts";
import { parseClusterControlRequest } from "../../host/cluster/cluster_control.ts";
import { controlSocketPath } from "./control_socket.ts";
import type { Command } from "./command.ts";

const help = `usage: wasm-iop fault [--data-dir DIR] [--json] <object> [<name> <action>]

Injects a fault into a running board (one started with \`wasm-iop run\`) through the control socket in its data
directory (DIR/control.sock), or asks for its status. The board applies the command at its current board time, as
one event of its clock, and answers with what it did.

objects and actions:
  disk PROCESSOR:N fail        pull disk N of the processor: the disk is gone, its controller answers every
                               request to it BAD_TARGET, so the firmware's driver reports the I/O failed (no disk)
  disk PROCESSOR:N replace     put a blank disk in its place: a new zero-filled image of the same size (a file
                               disk's old image is renamed to IMAGE.replaced-<n>, never deleted); its first command
                               gets UNIT ATTENTION, POWER ON OR RESET OCCURRED (29h/00h)
  disk PROCESSOR:N restore     put the pulled disk back, with what it held (a replica's copy then gets only the
                               regions written meanwhile); its first command gets the same unit attention
  copy VOLUME:K fail|restore   the same for copy K (0 or 1) of replica VOLUME (its name or number): its disk, or
                               the hot spare that took its place
  controller PROCESSOR:N hang  storage controller N of the processor (virtio-scsi or NVMe, slot order) stops
                               completing requests (nothing more on its used ring or completion queue) until the
                               firmware resets it (its request timeout does) or:
  controller PROCESSOR:N resume
                               the controller completes what it held and takes new requests again
  status                       the board's name, its board time, and the latest state line each volume printed
                               (volume index=N name=… type=… state=…), or that no volume reported yet
A cluster run by \`wasm-iop run --cluster\` (its data directory: --data-dir DIR as given to run, else
var/<cluster name>) takes, instead:
  link BOARD:N down|up         fabric link N (0 or 1) of the board's cluster port down or up: the bond fails over,
                               requests on a dropped link time out and are sent again (docs/cluster.md, "The fabric")
  port BOARD:N down|up         the link of the board's NIC port N (its portal N, 0-3) down or up: every connection
                               on it is reset and new ones are reset at once; the board's other ports serve on, so
                               a multipath initiator's other path to the disk keeps working (docs/cluster.md,
                               "Several NIC ports"). Only in real time (not with run --for)
  board BOARD reset|off|on     the board resets (its port leaves and rejoins the fabric, its firmware says hello
                               again), powers off (its pages fail on every board until it is back), or powers on
  status                       each board's state and resets, and the fabric's packet counts

Names: PROCESSOR is a processor of the board file (host, sp1, ...). A disk's N is its position on that processor,
in the order the processor's RTA reports its disks (\`wasm-iop inventory\`: controllers by PCI slot, then each
controller's disks in board-file order); a controller's N is its position among the processor's virtio-scsi
controllers by PCI slot.

options:
  --data-dir DIR   the running board's data directory (default: ./var/<board name>, as \`wasm-iop run\` uses)
  --board FILE     the board file whose name gives the default data directory (default: boards/iop-dev.json)
  --json           print the board's answer as one JSON object
  -h, --help       this help

Exit status: 0 when the board did what was asked (or it was already so); 1 when no board is running on the data
directory, it did not answer within 10 s, it is still booting, or it could not carry the command out; 2 for an
unknown object, action, processor, disk or controller (one line names what was wrong and what exists) or a bad
option. The protocol, and what each fault looks like to the firmware and to an initiator: docs/fault.md.`;

const ANSWER_TIMEOUT_MS = 10_000;

/** A failure to reach the board: the message, and the exit status. */
class Unreachable extends Error {}

export const faultCommand: Command = {
  name: "fault",
  help,
  async run(argv) {
    const fail = (message: string, code: number): number => {
      process.stderr.write(`wasm-iop fault: ${message}\n`);
      return code;
    };
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: { "data-dir": { type: "string" }, board: { type: "string" }, json: { type: "boolean", default: false } },
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      return fail(`${(error as Error).message}; see wasm-iop fault --help`, 2);
    }
    const { values, positionals } = parsed;
    const [object, name, action] = positionals;
    if (object === undefined) return fail(`expected an object: ${Object.keys(CONTROL_ACTIONS).join(", ")}; see wasm-iop fault --help`, 2);
    const request = object === "status" ? { object } : { object, name, action };
    // A cluster's objects (link, board) go to a cluster's socket; the board's own control answers the others.
    const checked = object === "link" || object === "port" || object === "board" ? parseClusterControlRequest(request) : parseControlRequest(request);
    if (typeof checked === "string") return fail(checked, 2);
    const expectedCount = object === "status" ? 1 : 3;
    if (positionals.length > expectedCount) return fail(`unexpected ${JSON.stringify(positionals[expectedCount])} after ${positionals.slice(0, expectedCount).join(" ")}`, 2);

    const dataDir = resolve(values["data-dir"] ?? join("var", await defaultBoardName(values.board)));
    let answer: ControlAnswer;
    try {
      answer = await ask(dataDir, checked);
    } catch (error) {
      if (error instanceof Unreachable) return fail(error.message, 1);
      throw error;
    }
    if (values.json) process.stdout.write(JSON.stringify(answer) + "\n");
    if (!answer.ok) {
      if (!values.json) process.stderr.write(`wasm-iop fault: ${answer.message}\n`);
      return answer.error === "bad-request" ? 2 : 1;
    }
    if (values.json) return 0;
    process.stdout.write(answer.message + "\n");
    if (answer.status !== undefined) {
      const lines = answer.status.volumes.map((v) => v.line);
      process.stdout.write((lines.length > 0 ? lines.join("\n") : "no volume reported yet") + "\n");
    }
    return 0;
  },
};

// The board's name from its file, for the default data directory (loaded only when --data-dir is absent).
async function defaultBoardName(boardPath: string | undefined): Promise<string> {
  const { DEFAULT_BOARD_PATH, loadBoardFile } = await import("../../host/board/load.ts");
  return loadBoardFile(boardPath ?? DEFAULT_BOARD_PATH).name;
}

// One request, one answer line. Throws Unreachable when nobody is there, nobody answers, or the board went away.
function ask(dataDir: string, request: object): Promise<ControlAnswer> {
  const path = controlSocketPath(dataDir);
  return new Promise((resolveAnswer, reject) => {
    const socket = createConnection(path);
    let received = "";
    let settled = false;
    const settle = (outcome: ControlAnswer | Unreachable) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Unreachable) reject(outcome);
      else resolveAnswer(outcome);
    };
    const timer = setTimeout(() => settle(new Unreachable(`the board on ${path} did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`)), ANSWER_TIMEOUT_MS);
    socket.once("connect", () => socket.write(JSON.stringify(request) + "\n"));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") settle(new Unreachable(`no board is running on ${dataDir}: no control socket ${path} (start one with wasm-iop run --data-dir ...)`));
      else if (error.code === "ECONNREFUSED") settle(new Unreachable(`no board is running on ${dataDir}: nobody answers on ${path} (left by a board that did not stop cleanly; the next wasm-iop run there removes it)`));
      else settle(new Unreachable(`cannot reach the board on ${path}: ${error.message}`));
    });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received += chunk;
      const end = received.indexOf("\n");
      if (end < 0) return;
      try {
        settle(JSON.parse(received.slice(0, end)) as ControlAnswer);
      } catch (error) {
        settle(new Unreachable(`the board on ${path} answered something that is not JSON: ${(error as Error).message}`));
      }
    });
    socket.on("close", () => settle(new Unreachable(`the board on ${path} closed the connection before answering (it is stopping?)`)));
  });
}
