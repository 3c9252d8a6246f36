// Prints one JSON line describing the WebGPU adapter Dawn finds, or exits 1 with the reason.
// Used by setup-webgpu.mjs in a child process (a broken driver may crash Dawn natively).
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);

async function main() {
  // Long-lived bindings: Dawn can crash (SIGSEGV/SIGABRT) or hang in its event processing when
  // the GPU object or the adapter is held only as a temporary (seen on lavapipe).
  const gpu = create([]);
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    console.error('no adapter');
    process.exit(1);
  }
  const device = await adapter.requestDevice();
  const i = adapter.info;
  console.log(JSON.stringify({ vendor: i.vendor, architecture: i.architecture, description: i.description || i.device }));
  device.destroy();
  globalThis.__keep = [gpu, adapter, device];
  process.exit(0);
}
main().catch((e) => {
  console.error(String(e?.message ?? e));
  process.exit(1);
});
