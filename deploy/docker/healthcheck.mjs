#!/usr/bin/env node
// Container HEALTHCHECK of the service images: asks GET /health of the service this container runs.
// The service comes from the argument, or else from PID 1's command line (`… serve <service>`); its
// port from the same XRAY_PORT_* variable the service reads (defaults 8001–8005; `serve all` and `serve gateway`: the
// gateway, 8080). Exit 0 when /health answers 200 within 4 s, 1 otherwise.
import { readFileSync } from 'node:fs';

export const SERVICE_PORTS = {
  'data-pipeline': ['XRAY_PORT_DATA', 8001],
  training: ['XRAY_PORT_TRAINING', 8002],
  'model-registry': ['XRAY_PORT_REGISTRY', 8003],
  deployment: ['XRAY_PORT_DEPLOYMENT', 8004],
  monitoring: ['XRAY_PORT_MONITORING', 8005],
  gateway: ['XRAY_PORT_GATEWAY', 8080],
  all: ['XRAY_PORT_GATEWAY', 8080],
};

function serviceFromPid1() {
  try {
    const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    const i = argv.indexOf('serve');
    if (i >= 0) return argv[i + 1] || 'all';
  } catch {
    // not on Linux, or /proc hidden
  }
  return 'all';
}

const service = process.argv[2] ?? serviceFromPid1();
const entry = SERVICE_PORTS[service];
if (!entry) {
  console.error(`healthcheck: unknown service '${service}'`);
  process.exit(1);
}
const [portVar, defaultPort] = entry;
const port = Number(process.env[portVar] || defaultPort);
// XRAY_TLS_CERT_FILE set: the service speaks HTTPS (a self-signed or private CA certificate).
const scheme = process.env.XRAY_TLS_CERT_FILE ? 'https' : 'http';
if (scheme === 'https') process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
try {
  const res = await fetch(`${scheme}://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  process.exit(0);
} catch (err) {
  console.error(`healthcheck: ${service} on ${port}: ${err.cause?.code ?? err.message}`);
  process.exit(1);
}
