/**
 * `consul-xds demo-upstream`: the bundled demo upstreams of the quick start, the examples and
 * docker-compose.yml (src/demo/upstream.ts). Runs until SIGINT/SIGTERM. With `--workers N`
 * (http1, h2c) N processes share each port through node:cluster, which hands every new connection
 * to one of them, as SO_REUSEPORT does for seed 002's Python server; each worker names itself
 * `<name>/w<k>`, so a tally shows how many connections a client spread its requests over.
 */
import cluster from 'node:cluster';
import { once } from 'node:events';
import { DEMO_PROTOCOLS, startDemoUpstream, type DemoProtocol, type DemoUpstream } from '../demo/upstream.js';
import { advertiseAddress, registerInConsul } from '../demo/consul-register.js';
import { ConsulXdsError } from '../errors.js';
import { choiceOption, parseCommandArgs, portOption } from './args.js';

const USAGE = `Usage: consul-xds demo-upstream --name NAME --port N [--port N ...] [options]

A demo upstream that answers every request and names itself (quick start, examples/).

  --name NAME               the name it answers with (several ports: NAME-1, NAME-2, ... in --port order)
  --port N                  port to listen on (repeatable; 0 = any free port)
  --host HOST               listen address (default 127.0.0.1)
  --protocol P              ${DEMO_PROTOCOLS.join(' | ')} (default http1):
                              http1, h2c  200 on every path, header x-upstream: NAME, JSON body
                                          (?delay=MS holds the answer, at most 10 s)
                              grpc        consulxds.demo.Greeter/Hello (examples/greeter.proto)
                              tcp         echoes every byte back
  --workers N               http1, h2c: N processes share each port, one connection each (default 1)
  --consul URL              register each port in this Consul agent (service --service, default NAME;
                            address --advertise, default this host's first non-loopback IPv4) with a
                            health check; deregistered on exit
  --service NAME, --advertise ADDR
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    'demo-upstream',
    argv,
    {
      name: { type: 'string' },
      port: { type: 'string', multiple: true },
      host: { type: 'string' },
      protocol: { type: 'string' },
      workers: { type: 'string' },
      consul: { type: 'string' },
      service: { type: 'string' },
      advertise: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.name) throw new ConsulXdsError('CXDS_USAGE', `demo-upstream: --name NAME is required\n\n${USAGE}`);
  if (!values.port?.length) throw new ConsulXdsError('CXDS_USAGE', `demo-upstream: at least one --port N is required\n\n${USAGE}`);
  const protocol = choiceOption('protocol', values.protocol, DEMO_PROTOCOLS, 'http1');
  const ports = values.port.map((p) => portOption('port', p, 0));
  const workers = values.workers === undefined ? 1 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw new ConsulXdsError('CXDS_USAGE', `--workers: expected a whole number 1-64, got '${values.workers}'`);
  if (workers > 1 && (protocol === 'grpc' || protocol === 'tcp'))
    throw new ConsulXdsError('CXDS_USAGE', `--workers: only for --protocol http1 or h2c (got ${protocol})`);
  const host = values.host ?? '127.0.0.1';
  // Listening for the signals from the start: a signal during start-up must not orphan workers.
  const stopped = Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  const nameAt = (i: number) => (ports.length === 1 ? values.name : `${values.name}-${i + 1}`) as string;

  const service = values.service ?? values.name;
  const consul = values.consul;
  /** --consul: each bound port becomes an instance of `service`; resolves with the deregistration. */
  const register = async (bound: readonly number[]): Promise<() => Promise<void>> => {
    if (consul === undefined) return async () => undefined;
    const address = values.advertise ?? advertiseAddress();
    const done: Array<() => Promise<void>> = [];
    for (const port of bound) {
      done.push(await registerInConsul(consul, { service, address, port, protocol }));
      process.stderr.write(`demo-upstream: registered in Consul ${consul} as ${service} at ${address}:${port}\n`);
    }
    return async () => {
      await Promise.all(done.map((d) => d()));
    };
  };
  if (workers > 1 && cluster.isPrimary) return runPrimary(workers, ports, protocol, host, stopped, register);
  const suffix = cluster.isWorker ? `/w${cluster.worker?.id}` : '';
  const started: DemoUpstream[] = [];
  try {
    for (const [i, port] of ports.entries()) started.push(await startDemoUpstream({ name: `${nameAt(i)}${suffix}`, protocol, port, host }));
  } catch (err) {
    await Promise.all(started.map((u) => u.close()));
    const e = err as NodeJS.ErrnoException;
    throw new ConsulXdsError('CXDS_LISTEN', `--port: cannot listen on ${host}: ${e.message}`);
  }
  if (!cluster.isWorker) {
    for (const u of started) process.stderr.write(`demo-upstream ${u.name} (${u.protocol}) on ${host}:${u.port}\n`);
  }
  const deregister = cluster.isWorker ? async () => undefined : await register(started.map((u) => u.port));
  await stopped;
  await deregister();
  await Promise.all(started.map((u) => u.close()));
  // A worker's IPC channel to the primary would keep it alive.
  cluster.worker?.disconnect();
  return 0;
}

/** Forks the workers (they re-run this command), reports the ports once all listen, and stops them on a signal. */
async function runPrimary(
  workers: number,
  ports: readonly number[],
  protocol: DemoProtocol,
  host: string,
  stopped: Promise<unknown>,
  register: (bound: readonly number[]) => Promise<() => Promise<void>>,
): Promise<number> {
  const bound = new Set<number>();
  const listening = Array.from({ length: workers }, () => {
    const w = cluster.fork();
    return new Promise<void>((resolve, reject) => {
      let left = ports.length;
      w.on('listening', (address) => {
        bound.add(address.port);
        if (--left === 0) resolve();
      });
      w.once('exit', (code) => reject(new ConsulXdsError('CXDS_LISTEN', `demo-upstream worker ${w.id} exited (code ${code}) before it listened`)));
    });
  });
  const up = await Promise.race([Promise.all(listening).then(() => true), stopped.then(() => false)]);
  if (up) process.stderr.write(`demo-upstream: ${workers} ${protocol} workers on ${host}:${[...bound].join(', ')}\n`);
  const deregister = up ? await register([...bound]) : async () => undefined;
  if (up) await stopped;
  await deregister();
  const exited = Object.values(cluster.workers ?? {}).map((w) => {
    const done = once(w as NonNullable<typeof w>, 'exit');
    w?.kill('SIGTERM');
    return done;
  });
  await Promise.all(exited);
  return 0;
}
