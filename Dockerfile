# The consul-xds image of docker-compose.yml: the CLI (serve, proxy, demo-upstream, kv, weights)
# built from this checkout. node_modules and dist are made inside the image, never on the host.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (tsc) needs the sources, copied below.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY test ./test
COPY examples ./examples
RUN npx tsc -p tsconfig.json
ENTRYPOINT ["node", "dist/src/cli.js"]
