#!/usr/bin/env node
// One idempotent setup step, run before `npm start`, `npm test` and by .ci/run:
//  1. npm dependencies (npm ci when node_modules is missing or older than package-lock.json);
//  2. the training worker's Debian packages (python3-torch …) when root on Debian, else a how-to;
//  3. with --test: Chromium (browser tests), promtool (alert rules check) and the DICOM encoders
//     dcmtk + GDCM + OpenJPH (codec fixtures), same policy;
//  4. the web UI build (web/dist) when its sources changed.
// Fast when nothing is missing: each step checks a stamp or probes before doing anything.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const forTests = process.argv.includes('--test');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const isDebian = existsSync('/etc/debian_version');
const log = (msg) => console.error(`[setup] ${msg}`);

const TRAINER_PACKAGES = ['python3-torch', 'python3-torchvision', 'python3-optuna', 'python3-onnx', 'python3-pytest', 'python3-pil'];
// Debian package → a binary it installs. dcmtk, libgdcm-tools and openjph-tools are the real DICOM
// encoders the codec tests make their compressed fixtures with (JPEG, JPEG Lossless, JPEG-LS, RLE;
// JPEG 2000; HTJ2K). orthanc + orthanc-dicomweb, dcmtk's echoscu/storescu/img2dcm and dicom3tools'
// dciodvfy are the real PACS peers of the DICOMweb / C-STORE tests (test/data-pipeline/pacs-peers.test.ts).
const TEST_PACKAGES = {
  chromium: '/usr/bin/chromium', prometheus: '/usr/bin/promtool', dcmtk: '/usr/bin/dcmcjpls', 'libgdcm-tools': '/usr/bin/gdcmconv',
  'openjph-tools': '/usr/bin/ojph_compress',
  orthanc: '/usr/sbin/Orthanc', 'orthanc-dicomweb': '/usr/share/orthanc/plugins/libOrthancDicomWeb.so', dicom3tools: '/usr/bin/dciodvfy',
  // deploy/ checks (test/deploy/artifacts.test.ts): amtool, NGINX with njs for the gateway config, and
  // kubectl for `kubectl kustomize` — only when no kubectl is on the machine (Debian's 1.20 embeds
  // kustomize v2, too old for deploy/kubernetes: the test says so rather than pass).
  'prometheus-alertmanager': '/usr/bin/amtool', nginx: '/usr/sbin/nginx', 'libnginx-mod-http-js': '/usr/lib/nginx/modules/ngx_http_js_module.so',
  ...(spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).error ? { 'kubernetes-client': '/usr/bin/kubectl' } : {}),
  // The multi-host suite (test/scaled/): network namespaces (iproute2), its own PostgreSQL cluster
  // (initdb/postgres) and Redis in them, NGINX (above) in front.
  iproute2: '/usr/sbin/ip', postgresql: '/usr/bin/pg_ctlcluster', 'redis-server': '/usr/bin/redis-server',
};

function sha(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

function ensureNpmDeps() {
  const lock = path.join(root, 'package-lock.json');
  const stamp = path.join(root, 'node_modules', '.xray-setup-stamp');
  const want = existsSync(lock) ? sha(lock) : sha(path.join(root, 'package.json'));
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  log('installing npm dependencies (npm ci)…');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
  writeFileSync(stamp, want);
}

let aptUpdated = false;
function aptInstall(packages) {
  if (!aptUpdated) {
    run('apt-get', ['update', '-qq']);
    aptUpdated = true;
  }
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

export function findTrainerPython() {
  const candidates = [process.env.XRAY_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean);
  for (const py of candidates) {
    // find_spec, not import: torch takes seconds to import and this runs before every start.
    const probe = 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ("torch","torchvision","optuna","onnx")) else 1)';
    const r = spawnSync(py, ['-c', probe], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

function ensureTrainer() {
  if (findTrainerPython()) return;
  if (isRoot && isDebian) {
    log(`installing the training worker's Debian packages: ${TRAINER_PACKAGES.join(' ')}`);
    aptInstall(TRAINER_PACKAGES);
    if (findTrainerPython()) return;
  }
  log('the training worker needs PyTorch; training will answer "trainer runtime missing" until you run:');
  log(`    sudo apt-get install -y ${TRAINER_PACKAGES.join(' ')}`);
  log('  (or point XRAY_PYTHON at a Python with torch, torchvision, optuna and onnx). Everything else works.');
}

function ensureTestTools() {
  const missing = Object.entries(TEST_PACKAGES).filter(([, bin]) => !existsSync(bin)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (isRoot && isDebian) {
    log(`installing test tools: ${missing.join(' ')}`);
    aptInstall(missing);
  } else {
    log(`browser, alert-rule, DICOM codec, PACS and deploy tests need: sudo apt-get install -y ${missing.join(' ')} (they skip until then)`);
  }
}

function hashTree(dir, h = createHash('sha256')) {
  if (!existsSync(dir)) return h;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) hashTree(p, h);
    else h.update(path.relative(root, p)).update(readFileSync(p));
  }
  return h;
}

function ensureWebBuild() {
  const web = path.join(root, 'web');
  if (!existsSync(path.join(web, 'index.html'))) return;
  const inputs = hashTree(path.join(web, 'src'));
  for (const f of ['index.html', 'vite.config.ts', 'package-lock.json']) {
    const p = f === 'package-lock.json' ? path.join(root, f) : path.join(web, f);
    if (existsSync(p)) inputs.update(readFileSync(p));
  }
  const want = inputs.digest('hex');
  const stamp = path.join(web, 'dist', '.build-stamp');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  log('building the web UI (vite build)…');
  run(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], { cwd: web });
  writeFileSync(stamp, want);
}

try {
  const started = Date.now();
  ensureNpmDeps();
  ensureTrainer();
  if (forTests) ensureTestTools();
  ensureWebBuild();
  const ms = Date.now() - started;
  if (ms > 1000) log(`done in ${(ms / 1000).toFixed(1)} s`);
} catch (err) {
  log(`failed: ${err.message}`);
  process.exit(1);
}
