# syntax=docker/dockerfile:1
# The textstream worker image: `docker build -t textstream .`, then
# `docker run textstream run <pipeline.yaml>` (the entrypoint is the `textstream` CLI).
# Used by docker-compose.yml for the worker and producer services.

# --- build: compile TypeScript with the dev dependencies
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are copied in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# --- runtime: production dependencies, compiled code and the pipeline definitions
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY pipelines ./pipelines
# out/: Parquet output (a volume in compose); data/: datasets built by `textstream dataset`.
RUN mkdir -p out data && chown node:node out data
USER node
# Prometheus metrics (pipeline `metrics.port`).
EXPOSE 9464
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["--help"]
