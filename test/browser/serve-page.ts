// Serves the repository over HTTP on 127.0.0.1 (an ephemeral port) with Vite, so the browser
// page imports the library's TypeScript sources directly: no build step before the test.
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createServer, type ViteDevServer } from 'vite';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface PageServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  close(): Promise<void>;
}

export async function servePage(): Promise<PageServer> {
  const server: ViteDevServer = await createServer({
    root: ROOT,
    // The repo's vitest.config.ts is for Node tests; the page needs none of it.
    configFile: false,
    logLevel: 'warn',
    clearScreen: false,
    // The page imports only repo sources; scanning for npm deps would try to pre-bundle
    // 'webgpu' (Dawn, Node-only, loaded lazily by the Node path) for nothing.
    optimizeDeps: { noDiscovery: true, include: [] },
    // One page load per test run: no file watching, no HMR socket.
    server: { host: '127.0.0.1', port: 0, strictPort: true, hmr: false, ws: false, watch: null },
  });
  await server.listen();
  const address = server.httpServer?.address() as AddressInfo | null;
  if (address === null || typeof address !== 'object') {
    await server.close();
    throw new Error('Vite did not report the port it listens on');
  }
  return { origin: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}
