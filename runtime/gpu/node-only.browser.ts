// What a browser build has in place of dawn-adapters.ts and system-packages.ts (package.json
// "browser" maps both files here, as bundlers for the web honour): Dawn, the file system and dpkg
// are Node's, and in a browser createDevice opens navigator.gpu instead. openGpu reaches these
// only when the page has no navigator.gpu, and then says so.
import type {
  autoOrder as nodeAutoOrder,
  openDawnAdapter as nodeOpenDawnAdapter,
} from './dawn-adapters.js';
import type { noAdapterMessage as nodeNoAdapterMessage } from './system-packages.js';

/** No Dawn path to try in a browser. */
export const autoOrder: typeof nodeAutoOrder = () => [];

export const openDawnAdapter: typeof nodeOpenDawnAdapter = async (path) => ({
  path,
  reason: 'Dawn runs in Node only; a browser offers WebGPU through navigator.gpu',
});

export const noAdapterMessage: typeof nodeNoAdapterMessage = () =>
  'this page has no navigator.gpu: open it in a browser with WebGPU enabled (Chromium 113+, ' +
  'or --enable-unsafe-webgpu), over https or localhost';
