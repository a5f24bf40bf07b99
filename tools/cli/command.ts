// One subcommand of `wasm-iop`: its name, a one-line summary for the command list, its full help, and its body.
export interface Command {
  name: string;
  summary: string;
  help: string;
  /** The command has subcommands and answers --help itself (each subcommand its own help). */
  handlesHelp?: boolean;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** A usage error: the CLI prints the message and the command's help, and exits 2. */
export class UsageError extends Error {}
