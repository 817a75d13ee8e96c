/**
 * `infermesh models push|list|show|pull|delete`: the model registry, through the coordinator's
 * admin API (`--url`/`--token`, or INFERMESH_URL/INFERMESH_TOKEN). Pushing uploads each artifact
 * once (an artifact the registry already has is not sent again), then creates the version, which
 * the coordinator signs; `--quantize dynamic` pushes the float file as the cloud variant and its
 * int8 quantization as the edge variant of the same version.
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Option } from 'commander';
import type { Command } from 'commander';
import {
  invalidInput,
  modelNameSchema,
  modelVersionSchema,
  offloadSettingsSchema,
  batchingSettingsSchema,
  parseOrThrow,
} from '@infermesh/protocols';
import type { ModelManifest, VariantKind } from '@infermesh/protocols';
import { parsePublicKey, verifyManifestSignature } from '@infermesh/mesh-client';
import { z } from 'zod';
import { AdminClient, fileSource } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { pushModelVersion } from '../registry-push.js';
import { ProgressBar, formatByteCount } from '../progress.js';

/** The flags every admin command takes. */
export function withAdminFlags(command: Command): Command {
  return command
    .option('--url <url>', 'admin API of a coordinator (default $INFERMESH_URL or http://127.0.0.1:8090)')
    .option('--token <token>', 'admin bearer token (default $INFERMESH_TOKEN)')
    .option(
      '--config <file>',
      'CLI config { "url", "token" } (default $INFERMESH_CLI_CONFIG or ~/.config/infermesh/cli.json)',
    );
}

/** `name` or `name@version`, validated. */
export function parseModelRef(ref: string, needVersion: boolean): { name: string; version?: string } {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const version = at < 0 ? undefined : ref.slice(at + 1);
  parseOrThrow(modelNameSchema, name, 'model name');
  if (version !== undefined) parseOrThrow(modelVersionSchema, version, 'model version');
  if (needVersion && version === undefined)
    throw invalidInput(`expected NAME@VERSION, got ${JSON.stringify(ref)}`);
  return version === undefined ? { name } : { name, version };
}

/** Optional settings of a version, from `--settings FILE`. */
const versionSettingsSchema = z
  .object({
    offload: offloadSettingsSchema.optional(),
    batching: batchingSettingsSchema.optional(),
    trainable: z.array(z.string().min(1).max(256)).optional(),
  })
  .strict();

interface PushFlags extends AdminConnectionFlags {
  name: string;
  version: string;
  variant: VariantKind;
  quantize?: 'dynamic';
  settings?: string;
  json?: boolean;
}

async function push(file: string, flags: PushFlags): Promise<void> {
  parseOrThrow(modelNameSchema, flags.name, 'model name');
  parseOrThrow(modelVersionSchema, flags.version, 'model version');
  const settings = flags.settings
    ? parseOrThrow(versionSettingsSchema, JSON.parse(await readFile(flags.settings, 'utf8')), flags.settings)
    : {};
  const client = AdminClient.fromFlags(flags);
  const size = (await stat(file)).size;
  const manifest = await pushModelVersion(client, {
    name: flags.name,
    version: flags.version,
    source: fileSource(file, size),
    label: basename(file),
    variant: flags.variant,
    quantize: flags.quantize,
    settings,
  });
  if (flags.json) {
    console.log(JSON.stringify(manifest, null, 2));
    return;
  }
  console.log(`pushed ${manifest.name}@${manifest.version}`);
  printVariants(manifest);
}

function printVariants(manifest: ModelManifest): void {
  for (const kind of ['edge', 'cloud'] as const) {
    const v = manifest.variants[kind];
    if (v)
      console.log(
        `  ${kind.padEnd(5)} ${v.sha256}  ${formatByteCount(v.size).padStart(10)}  ${v.quantization ?? ''}`,
      );
  }
}

/** Left-aligned columns. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function list(flags: AdminConnectionFlags & { json?: boolean }): Promise<void> {
  const { models } = await AdminClient.fromFlags(flags).listModels();
  if (flags.json) {
    console.log(JSON.stringify(models, null, 2));
    return;
  }
  if (models.length === 0) {
    console.log('no models in the registry');
    return;
  }
  console.log(
    table([['NAME', 'LATEST', 'VERSIONS'], ...models.map((m) => [m.name, m.latest, m.versions.join(', ')])]),
  );
}

async function show(ref: string, flags: AdminConnectionFlags & { json?: boolean }): Promise<void> {
  const client = AdminClient.fromFlags(flags);
  const { name, version } = parseModelRef(ref, false);
  if (version !== undefined) {
    console.log(JSON.stringify(await client.getManifest(name, version), null, 2));
    return;
  }
  const details = await client.getModel(name);
  if (flags.json) {
    console.log(JSON.stringify(details, null, 2));
    return;
  }
  const size = (kind: VariantKind, v: (typeof details.versions)[number]): string => {
    const variant = v.variants[kind];
    return variant
      ? `${formatByteCount(variant.size)}${variant.quantization ? ` ${variant.quantization}` : ''}`
      : '-';
  };
  console.log(
    table([
      ['VERSION', 'CREATED', 'BY', 'EDGE', 'CLOUD'],
      ...details.versions.map((v) => [
        v.version,
        v.createdAt,
        v.createdBy,
        size('edge', v),
        size('cloud', v),
      ]),
    ]),
  );
}

interface PullFlags extends AdminConnectionFlags {
  variant?: VariantKind;
  out?: string;
  trust?: string[];
}

async function pull(ref: string, flags: PullFlags): Promise<void> {
  const client = AdminClient.fromFlags(flags);
  const parsed = parseModelRef(ref, false);
  const version = parsed.version ?? (await client.getModel(parsed.name)).latest;
  const manifest = await client.getManifest(parsed.name, version);
  if (flags.trust && flags.trust.length > 0)
    verifyManifestSignature(manifest, flags.trust.map(parsePublicKey));
  const kind = flags.variant ?? (manifest.variants.cloud ? 'cloud' : 'edge');
  const variant = manifest.variants[kind];
  if (!variant) throw invalidInput(`${manifest.name}@${version} has no ${kind} variant`);
  const out = flags.out ?? `${manifest.name}-${version}-${kind}.onnx`;
  let progress: ProgressBar | undefined;
  try {
    await client.downloadArtifact(variant.sha256, out, {
      expectedSize: variant.size,
      onProgress: (done, total, resumedFrom) => {
        progress ??= new ProgressBar({ label: `${kind} ${basename(out)}`, total, resumedFrom });
        progress.update(done);
      },
    });
    progress?.finish('downloaded, sha256 verified');
  } catch (err) {
    progress?.fail();
    throw err;
  }
  console.log(out);
}

async function remove(ref: string, flags: AdminConnectionFlags): Promise<void> {
  const { name, version } = parseModelRef(ref, true);
  await AdminClient.fromFlags(flags).deleteVersion(name, version as string);
  console.log(`deleted ${name}@${version as string}`);
}

/** Registers `infermesh models`. */
export function registerModels(program: Command): void {
  const models = program
    .command('models')
    .description('the model registry: push, list, show, pull, delete versions');
  withAdminFlags(
    models
      .command('push')
      .description('upload a model file and create a signed version from it')
      .argument('<file>', '.onnx model file')
      .requiredOption('--name <name>', 'model name')
      .requiredOption('--version <version>', 'version to create (never reused)')
      .addOption(
        new Option('--variant <variant>', 'which variant the file is')
          .choices(['edge', 'cloud'])
          .default('cloud'),
      )
      .addOption(
        new Option(
          '--quantize <mode>',
          'also make the int8 edge variant (the file becomes the cloud variant)',
        ).choices(['dynamic']),
      )
      .option('--settings <file>', 'JSON with offload, batching and trainable settings of the version')
      .option('--json', 'print the manifest as JSON'),
  ).action((file: string, flags: PushFlags) => push(file, flags));
  withAdminFlags(
    models.command('list').description('list the models and their versions').option('--json', 'print JSON'),
  ).action((flags: AdminConnectionFlags & { json?: boolean }) => list(flags));
  withAdminFlags(
    models
      .command('show')
      .description("show a model's versions, or one version's manifest")
      .argument('<model>', 'NAME or NAME@VERSION')
      .option('--json', 'print JSON'),
  ).action((ref: string, flags: AdminConnectionFlags & { json?: boolean }) => show(ref, flags));
  withAdminFlags(
    models
      .command('pull')
      .description("download a version's artifact (resumes an interrupted download)")
      .argument('<model>', 'NAME@VERSION (NAME: the newest version)')
      .addOption(
        new Option('--variant <variant>', 'edge or cloud (default: cloud when present)').choices([
          'edge',
          'cloud',
        ]),
      )
      .option('-o, --out <file>', 'where to write it (default NAME-VERSION-VARIANT.onnx)')
      .option('--trust <key...>', 'refuse a manifest not signed by one of these publisher keys'),
  ).action((ref: string, flags: PullFlags) => pull(ref, flags));
  withAdminFlags(
    models
      .command('delete')
      .description('delete a version no agent wants (unpin it first)')
      .argument('<model>', 'NAME@VERSION'),
  ).action((ref: string, flags: AdminConnectionFlags) => remove(ref, flags));
}
