// Free loopback ports for tests that start boards in other processes: `count` listeners opened at once (so the
// kernel gives `count` distinct ports), then closed, their ports returned for the processes to bind.
import { createServer, type Server } from "node:net";

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<Server>((ready) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => ready(server));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((closed) => s.close(closed))));
  return ports;
}
