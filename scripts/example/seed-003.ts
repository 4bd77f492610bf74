/**
 * Seed 003: gRPC behind a front proxy, balanced per request, the backends found through a DNS
 * name (`localhost`, ports 50051-50054) and scaled from 2 to 4 instances with no config change.
 * The walkthrough makes every call over ONE gRPC connection and counts the backend that answered.
 */
import type { Example } from './examples.js';
import { step } from './examples.js';
import { formatTally, grpcTally } from './stack.js';

export const seed003: Example = {
  title: 'gRPC balanced per request behind a front proxy, backends via a DNS name, scaled 2 -> 4 with no config change',
  readme: 'examples/seed-003/README.md',
  async run(stack) {
    const config = await stack.writeConfig('examples/seed-003/config.yaml');
    await stack.upstream('g1', 'grpc', 50051);
    await stack.upstream('g2', 'grpc', 50052);
    await stack.serve(['--config', config]);
    await stack.dataPlane();
    const front = `127.0.0.1:${stack.p(10000)}`;
    const grpcurl = (n: number) =>
      `for i in $(seq ${n}); do grpcurl -plaintext -proto examples/greeter.proto -d '{"name":"me"}' ${front} consulxds.demo.Greeter/Hello; done | grep backend | sort | uniq -c`;
    await stack.waitFor('both backends to take calls', async () => {
      const t = await grpcTally(front, 20);
      return t.has('g1') && t.has('g2');
    });
    step(stack, {
      title: '2 instances: every call over one gRPC connection, balanced per request',
      command: grpcurl(200),
      expect: 'about 100 each for g1 and g2',
      got: formatTally(await grpcTally(front, 200)),
    });
    await stack.upstream('g3', 'grpc', 50053);
    await stack.upstream('g4', 'grpc', 50054);
    stack.opts.print(`\nstarted g3 and g4 on localhost:${stack.p(50053)} and localhost:${stack.p(50054)}; the config is unchanged`);
    await stack.waitFor('the health check to take g3 and g4 into rotation', async () => (await grpcTally(front, 40)).size === 4);
    step(stack, {
      title: '4 instances, no config change: the health check found the new ones',
      command: grpcurl(400),
      expect: 'about 100 each for g1, g2, g3 and g4',
      got: formatTally(await grpcTally(front, 400)),
    });
  },
};
