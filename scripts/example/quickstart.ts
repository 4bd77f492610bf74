/**
 * The quick start (examples/consul-xds.yaml, what `npm start` serves): three demo upstreams on the
 * config's static endpoints 8081-8083, consul-xds in file mode and, unless `--data-plane none`,
 * Envoy. The walkthrough checks the 90/10 split on /api/ and the /asset/ route.
 */
import type { Example } from './examples.js';
import { curlTally, step } from './examples.js';
import { formatTally, tally } from './stack.js';

export const quickstart: Example = {
  title: 'the README quick start: file mode, a 90/10 split, three demo upstreams',
  readme: 'examples/README.md',
  async run(stack) {
    const config = await stack.writeConfig('examples/consul-xds.yaml');
    for (const [name, port] of [
      ['web-api-perl', 8081],
      ['web-api-go', 8082],
      ['web-asset', 8083],
    ] as const) {
      const u = await stack.upstream(name, 'http1', port);
      stack.opts.print(`demo upstream ${name} on 127.0.0.1:${u.port}`);
    }
    const none = stack.opts.dataPlane === 'none';
    // With no data plane of ours, serve's own banner (resources, how to start Envoy) goes to the terminal.
    await stack.serve(['--config', config], { inherit: none });
    const edge = `http://127.0.0.1:${await stack.port(10000)}`;
    if (none) {
      stack.opts.print(
        `\nNow start Envoy in another terminal and send traffic:\n  "$(bash scripts/install-envoy.sh)" -c examples/envoy-bootstrap.yaml\n  ${curlTally(`${edge}/api/`, 100)}   # about 90 web-api-perl, 10 web-api-go`,
      );
      return;
    }
    await stack.dataPlane();
    await stack.waitFor('the listener to answer 200', async () => (await fetch(`${edge}/api/`)).status === 200);
    step(stack, {
      title: "the seed's 90/10 split on /api",
      command: curlTally(`${edge}/api/`, 200),
      expect: 'about 180 web-api-perl, 20 web-api-go',
      got: formatTally(await tally(`${edge}/api/`, 200)),
    });
    step(stack, {
      title: '/asset goes to web-asset',
      command: curlTally(`${edge}/asset/logo.png`, 10),
      expect: 'web-asset 10',
      got: formatTally(await tally(`${edge}/asset/logo.png`, 10)),
    });
  },
};
