/**
 * Seed 000: shadow traffic for a load test, and a TCP proxy to MongoDB. Demo upstreams service-a
 * (answers) and service-b (gets the mirrored copies), two TCP echo services standing in for
 * mongodb-0/1, consul-xds in file mode on examples/seed-000/config.yaml. The walkthrough sends
 * requests at 10 % mirroring, raises it to 50 % by editing the served file, and pipes bytes
 * through the TCP listener.
 */
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { Example } from './examples.js';
import { curlTally, step } from './examples.js';
import { ackedVersions, formatTally, tally } from './stack.js';

export const seed000: Example = {
  title: 'shadow traffic at a percentage for a load test, and a TCP proxy to a MongoDB-like service',
  readme: 'examples/seed-000/README.md',
  async run(stack) {
    const print = stack.opts.print;
    // A copy in the scratch folder: the walkthrough edits the percentage there.
    const config = await stack.writeConfig('examples/seed-000/config.yaml', { copy: true });
    await stack.upstream('service-a', 'http1', 8081);
    const shadow = await stack.upstream('service-b', 'http1', 8082);
    const mongo = [await stack.upstream('mongodb-0', 'tcp', 27018), await stack.upstream('mongodb-1', 'tcp', 27019)];
    const { adminUrl } = await stack.serve(['--config', config]);
    print(`consul-xds serves ${config} (edit it and save: the change is live within a second)`);
    await stack.dataPlane();
    const edge = `http://127.0.0.1:${stack.p(10000)}`;
    await stack.waitFor('the edge listener to answer 200', async () => (await fetch(`${edge}/`)).status === 200);

    for (const percent of [10, 50]) {
      if (percent !== 10) {
        const before = await ackedVersions(adminUrl);
        await writeFile(config, (await readFile(config, 'utf8')).replace('percent: 10', `percent: ${percent}`));
        await stack.waitFor('the data plane to ACK the new percentage', async () => {
          const now = await ackedVersions(adminUrl);
          return now !== undefined && now !== before;
        });
      }
      const mirroredBefore = shadow.requests().count;
      const answers = formatTally(await tally(`${edge}/orders`, 200));
      // Mirrored requests are sent without waiting for them; give the last ones a moment.
      await new Promise((r) => setTimeout(r, 300));
      const mirrored = shadow.requests().count - mirroredBefore;
      step(stack, {
        title: `mirror ${percent} % of the traffic to service-b${percent === 10 ? '' : ` (edited in ${config}: percent: ${percent})`}`,
        command: curlTally(`${edge}/orders`, 200),
        expect: `service-a 200 (every answer comes from service-a); service-b receives about ${2 * percent} copies, Host suffixed -shadow`,
        got: `${answers}; service-b received ${mirrored} copies (last Host: ${shadow.requests().lastHost})`,
      });
    }

    const port = stack.p(27017);
    const replies: string[] = [];
    for (let i = 0; i < 10; i++) replies.push(await echo(port, `ping ${i}\n`));
    const echoed = replies.filter((r, i) => r === `ping ${i}\n`).length;
    step(stack, {
      title: 'the TCP proxy on the MongoDB port: bytes pass unchanged, connections spread over both instances',
      command: `for i in $(seq 10); do printf 'ping %s\\n' $i | nc -q 1 127.0.0.1 ${port}; done`,
      expect: '10 of 10 echoed; mongodb-0 and mongodb-1 about 5 connections each',
      got: `${echoed} of 10 echoed; ${formatTally(new Map(mongo.map((m) => [m.name, m.connections()])))} connections`,
    });
  },
};

/** Opens a connection to the TCP listener, sends `text`, and resolves with what came back once as many bytes arrived. */
function echo(port: number, text: string): Promise<string> {
  return new Promise((done, fail) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      got += d;
      if (got.length >= text.length) socket.end();
    });
    socket.once('close', () => done(got));
    socket.once('error', fail);
    socket.setTimeout(5000, () => socket.destroy(new Error(`no echo from 127.0.0.1:${port} within 5 s`)));
  });
}
