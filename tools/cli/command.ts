// One subcommand of `wasm-iop`: its name, its full help, and its body. Its one-line summary lives in main.ts's
// list, which loads a command's module only when that command runs (so `wasm-iop --help` loads none of them).
export interface Command {
  name: string;
  help: string;
  /** The command has subcommands and answers --help itself (each subcommand its own help). */
  handlesHelp?: boolean;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** A usage error: the CLI prints the message and the command's help, and exits 2. */
export class UsageError extends Error {}
