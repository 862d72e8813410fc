import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ConfigError } from '../errors.js';

export interface MetricsServer {
  /** e.g. `http://127.0.0.1:9464/metrics` */
  readonly url: string;
  /** Safe to call twice. */
  close(): Promise<void>;
}

/** Serves `registry` on `GET /metrics` (and a trivial `/healthz`). Port 0 picks a free port. */
export async function startMetricsServer(registry: Registry, host: string, port: number): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url.startsWith('/metrics')) {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
    } else if (req.method === 'GET' && url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      // Two workers on one machine with the same port is the usual cause: say which setting.
      if (err.code === 'EADDRINUSE') {
        reject(new ConfigError('metrics.port', `${host}:${port} is already in use; choose another port, or 0 for any free one`, { cause: err }));
      } else reject(err);
    });
    server.listen(port, host, () => resolve());
  });
  // Scrapers hold keep-alive connections; don't let them delay shutdown.
  server.keepAliveTimeout = 1000;
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${address.port}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
