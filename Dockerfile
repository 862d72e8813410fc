# syntax=docker/dockerfile:1
# The textstream worker image: `docker build -t textstream .`, then
# `docker run textstream run <pipeline.yaml>` (the entrypoint is the `textstream` CLI).
# Used by docker-compose.yml for the trainer, scorer and producer services.

# --- build: compile TypeScript with the dev dependencies
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are copied in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json
# The fused LSTM addon (src/model/native): g++ from Debian's packages. x86-64-v3 (AVX2,
# FMA) rather than -march=native, so the image runs on other machines than the builder.
COPY scripts/build-native.sh ./scripts/
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/* \
    && TEXTSTREAM_NATIVE_MARCH=x86-64-v3 bash scripts/build-native.sh \
    && test -f .cache/native/fused_lstm.node

# --- runtime: production dependencies, compiled code and the pipeline definitions
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/.cache/native ./.cache/native
COPY pipelines ./pipelines
# `textstream model export --format keras` copies this loader next to the exported model.
COPY scripts/keras_interop.py ./scripts/
# out/: Parquet output (a volume in compose); data/: datasets built by `textstream dataset`.
RUN mkdir -p out data && chown node:node out data
USER node
# Prometheus metrics (pipeline `metrics.port`).
EXPOSE 9464
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["--help"]
