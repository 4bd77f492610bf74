/**
 * The start-up contract of the benchmark's upstream processes (h1-upstream.ts, grpc-upstream.ts)
 * with children.ts. In: how to open one listening port. Out: that many ports (argv[2], default 3)
 * announced as `READY <port>,<port>,...` on stdout; the process exits when its stdin closes, i.e.
 * when the benchmark that started it goes away, however it went.
 */
export async function announcePorts(listen: () => Promise<number>): Promise<void> {
  const count = Number(process.argv[2] ?? 3);
  const ports = await Promise.all(Array.from({ length: count }, () => listen()));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  process.stdout.write(`READY ${ports.join(',')}\n`);
}
