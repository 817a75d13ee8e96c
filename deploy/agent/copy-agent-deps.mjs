// Copies what the agent needs at run time into a bundle directory: the workspaces it imports
// (package.json and dist/, tests left out) and the production dependencies they reach, found the
// way Node resolves them and copied to the same place under the bundle's node_modules, so the
// bundle resolves exactly as the checkout does. onnxruntime-node keeps only this platform's
// binaries; onnxruntime-web (the optional WASM backend, 140 MB) only with --with-wasm.
// Usage: node copy-agent-deps.mjs <repo-root> <bundle-dir> [--with-wasm]
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

const [root, bundle, ...rest] = process.argv.slice(2);
if (!root || !bundle) {
  console.error('usage: node copy-agent-deps.mjs <repo-root> <bundle-dir> [--with-wasm]');
  process.exit(2);
}
const withWasm = rest.includes('--with-wasm');
const rootModules = join(root, 'node_modules');
/** Entry packages: the agent and its CLI command (whose other dependencies the agent does not load). */
const ROOTS = [
  { name: '@infermesh/edge-agent', follow: true },
  { name: '@infermesh/cli', follow: false },
  { name: 'commander', follow: true },
];
const SKIPPED = new Set(withWasm ? [] : ['onnxruntime-web']);
const platformDir = `${process.platform}${sep}${process.arch}`;

/** The directory of package `name` as Node finds it from `fromDir` (symlinks kept as found). */
function resolvePackage(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Copy filter: no tests, build info or source maps of tests; only this platform's ORT binaries. */
function keep(source) {
  if (/\.test\.(js|d\.ts|js\.map|d\.ts\.map)$/.test(source) || source.endsWith('.tsbuildinfo')) return false;
  const ortBin = `onnxruntime-node${sep}bin${sep}napi-v`;
  const at = source.indexOf(ortBin);
  if (at >= 0) {
    const parts = source.slice(at + ortBin.length).split(sep); // [version, platform, arch, ...]
    if (parts.length >= 3 && `${parts[1]}${sep}${parts[2]}` !== platformDir) return false;
    if (parts.length === 2 && statSync(source).isDirectory() && parts[1] !== process.platform) return false;
  }
  return true;
}

const copied = new Set();
let workspaces = 0;
let packages = 0;
function copyPackage(name, fromDir, follow) {
  if (SKIPPED.has(name)) return;
  const found = resolvePackage(name, fromDir);
  if (!found) throw new Error(`cannot resolve ${name} from ${fromDir}`);
  const real = realpathSync(found);
  if (copied.has(real)) return;
  copied.add(real);
  const isWorkspace = !real.includes(`${sep}node_modules${sep}`);
  const target = join(bundle, isWorkspace ? join('node_modules', name) : relative(root, found));
  mkdirSync(target, { recursive: true });
  if (isWorkspace) {
    workspaces += 1;
    cpSync(join(real, 'package.json'), join(target, 'package.json'));
    cpSync(join(real, 'dist'), join(target, 'dist'), { recursive: true, filter: keep });
  } else {
    packages += 1;
    cpSync(real, target, { recursive: true, filter: keep, dereference: true });
  }
  if (!follow) return;
  const manifest = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8'));
  const needed = Object.keys(manifest.dependencies ?? {});
  const optional = Object.keys(manifest.optionalDependencies ?? {});
  // Resolve from where the package sits in the checkout (its own node_modules first).
  const from = isWorkspace ? real : found;
  for (const dep of needed) copyPackage(dep, from, true);
  for (const dep of optional) if (resolvePackage(dep, from)) copyPackage(dep, from, true);
}

for (const { name, follow } of ROOTS) copyPackage(name, root, follow);
if (!existsSync(rootModules)) throw new Error(`${rootModules} is missing: run npm ci first`);
console.log(
  `bundled ${workspaces} workspaces and ${packages} packages${withWasm ? ' (with onnxruntime-web)' : ''}`,
);
