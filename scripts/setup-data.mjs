#!/usr/bin/env node
// Installs the Fashion-MNIST Debian package (`dataset-fashion-mnist`, files under
// /usr/share/datasets/fashion-mnist) for `npm run demo` when it is missing.
import { ensureDebianPackages } from './apt.mjs';

if (process.platform === 'linux' && process.env.GRNG_SKIP_DATA_SETUP !== '1') {
  ensureDebianPackages(['dataset-fashion-mnist'], {
    log: (line) => console.error(`grng setup-data: ${line}`),
    purpose: 'the Fashion-MNIST demo',
  });
}
