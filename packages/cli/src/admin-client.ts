/**
 * The CLI's client of the coordinator's admin API (`/api/v1`): bearer-token calls with JSON bodies
 * validated by the protocols' schemas, streamed artifact uploads and downloads (a download resumes
 * from `<out>.partial` with an HTTP Range request and is renamed into place only once its sha256
 * matches). Every failure is an InferMeshError with the code the coordinator answered, or
 * UNAVAILABLE when it cannot be reached.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { open, rename, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  ErrorCode,
  InferMeshError,
  apiErrorBodySchema,
  artifactInfoSchema,
  desiredModelSchema,
  desiredStateResponseSchema,
  isErrorCode,
  modelDetailsSchema,
  modelListSchema,
  modelManifestSchema,
  parseOrThrow,
} from '@infermesh/protocols';
import type {
  ArtifactInfo,
  CreateModelVersionRequest,
  DesiredModel,
  DesiredStateResponse,
  ModelDetails,
  ModelList,
  ModelManifest,
} from '@infermesh/protocols';

/** Where the admin API is when neither `--url` nor INFERMESH_URL says. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8090';

/**
 * Called as bytes move: bytes done so far (resumed ones included), the total, and the bytes that
 * were already there when the transfer started.
 */
export type ProgressCallback = (done: number, total: number, resumedFrom: number) => void;

/** Chunks bytes in memory are uploaded in, so progress moves smoothly. */
const UPLOAD_CHUNK_BYTES = 256 * 1024;

/** Bytes to upload: their size and a way to read them (as often as needed). */
export interface UploadSource {
  readonly size: number;
  read(): AsyncIterable<Uint8Array>;
}

/** Connection settings from flags, falling back to the environment, then a config file. */
export interface AdminConnectionFlags {
  url?: string;
  token?: string;
  /** CLI config file (`{ "url", "token" }`); default $INFERMESH_CLI_CONFIG or ~/.config/infermesh/cli.json. */
  config?: string;
}

/** The CLI config file's contents. */
const cliConfigSchema = z
  .object({ url: z.string().url().optional(), token: z.string().min(1).optional() })
  .strict();

/** Where the CLI config file is when neither `--config` nor INFERMESH_CLI_CONFIG says. */
export function defaultCliConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['HOME'] ?? homedir(), '.config', 'infermesh', 'cli.json');
}

/** Reads the CLI config file; a missing default file is no error, a missing named one is. */
function readCliConfig(
  flags: AdminConnectionFlags,
  env: NodeJS.ProcessEnv,
): z.output<typeof cliConfigSchema> {
  const named = flags.config ?? env['INFERMESH_CLI_CONFIG'];
  const path = named ?? defaultCliConfigPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (named === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new InferMeshError(
      ErrorCode.INVALID_INPUT,
      `cannot read the CLI config ${path}: ${(err as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InferMeshError(ErrorCode.INVALID_INPUT, `the CLI config ${path} is not JSON`);
  }
  return parseOrThrow(cliConfigSchema, json, `CLI config ${path}`);
}

/** An upload source over a file. */
export function fileSource(path: string, size: number): UploadSource {
  return { size, read: () => createReadStream(path) as AsyncIterable<Uint8Array> };
}

/** An upload source over bytes in memory. */
export function bytesSource(bytes: Uint8Array): UploadSource {
  const chunks = (): Uint8Array[] => {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < bytes.byteLength; at += UPLOAD_CHUNK_BYTES) {
      parts.push(bytes.subarray(at, at + UPLOAD_CHUNK_BYTES));
    }
    return parts;
  };
  return { size: bytes.byteLength, read: () => Readable.from(chunks()) as AsyncIterable<Uint8Array> };
}

/** The sha256 (hex) of a source's bytes, read once. */
export async function sha256Of(source: UploadSource): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of source.read()) hash.update(chunk);
  return hash.digest('hex');
}

const segment = (value: string): string => encodeURIComponent(value);

/** A client of one coordinator's admin API. */
export class AdminClient {
  readonly url: string;
  readonly #token: string | undefined;

  constructor(url: string, token: string | undefined) {
    this.url = url.replace(/\/+$/, '');
    this.#token = token;
  }

  /**
   * A client from `--url`/`--token`, else INFERMESH_URL/INFERMESH_TOKEN, else the CLI config file
   * (`--config`, INFERMESH_CLI_CONFIG, ~/.config/infermesh/cli.json), else the local default.
   */
  static fromFlags(flags: AdminConnectionFlags, env: NodeJS.ProcessEnv = process.env): AdminClient {
    const fromEnv = { url: env['INFERMESH_URL'] || undefined, token: env['INFERMESH_TOKEN'] || undefined };
    const needFile = (flags.url ?? fromEnv.url) === undefined || (flags.token ?? fromEnv.token) === undefined;
    const file = needFile || flags.config !== undefined ? readCliConfig(flags, env) : {};
    const url = flags.url ?? fromEnv.url ?? file.url ?? DEFAULT_ADMIN_URL;
    const token = flags.token ?? fromEnv.token ?? file.token;
    return new AdminClient(url, token === '' ? undefined : token);
  }

  listModels(): Promise<ModelList> {
    return this.#json('GET', '/models', modelListSchema);
  }

  getModel(name: string): Promise<ModelDetails> {
    return this.#json('GET', `/models/${segment(name)}`, modelDetailsSchema);
  }

  getManifest(name: string, version: string): Promise<ModelManifest> {
    return this.#json('GET', `/models/${segment(name)}/versions/${segment(version)}`, modelManifestSchema);
  }

  createVersion(name: string, request: CreateModelVersionRequest): Promise<ModelManifest> {
    return this.#json('POST', `/models/${segment(name)}/versions`, modelManifestSchema, request);
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    await this.#call('DELETE', `/models/${segment(name)}/versions/${segment(version)}`);
  }

  pin(agentId: string, name: string, version: string): Promise<DesiredModel> {
    return this.#json('PUT', `/agents/${segment(agentId)}/models/${segment(name)}`, desiredModelSchema, {
      version,
    });
  }

  async unpin(agentId: string, name: string): Promise<void> {
    await this.#call('DELETE', `/agents/${segment(agentId)}/models/${segment(name)}`);
  }

  desired(agentId: string): Promise<DesiredStateResponse> {
    return this.#json('GET', `/agents/${segment(agentId)}/models`, desiredStateResponseSchema);
  }

  /** The artifact's size when the registry has it, else undefined. */
  async artifactSize(sha256: string): Promise<number | undefined> {
    const res = await this.#fetch('HEAD', `/artifacts/${sha256}`);
    if (res.status === 404) return undefined;
    if (!res.ok) throw await this.#error(res);
    return Number(res.headers.get('content-length') ?? 0);
  }

  /** Uploads an artifact (streamed, with its size announced). */
  async uploadArtifact(
    sha256: string,
    source: UploadSource,
    onProgress?: ProgressCallback,
  ): Promise<ArtifactInfo> {
    let done = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of source.read()) {
        done += chunk.byteLength;
        onProgress?.(done, source.size, 0);
        yield chunk;
      }
    };
    const body = ReadableStream.from(counted());
    const res = await this.#fetch('PUT', `/artifacts/${sha256}`, {
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(source.size) },
    });
    if (!res.ok) throw await this.#error(res);
    return parseOrThrow(artifactInfoSchema, await res.json(), 'artifact answer');
  }

  /**
   * Downloads an artifact into `out`: bytes go to `<out>.partial` (resumed with a Range request when
   * one is there) and the file is renamed into place only when its sha256 matches.
   */
  async downloadArtifact(
    sha256: string,
    out: string,
    options: { expectedSize?: number; onProgress?: ProgressCallback } = {},
  ): Promise<{ size: number; resumedFrom: number }> {
    const partial = `${out}.partial`;
    let resumedFrom = await stat(partial).then(
      (s) => s.size,
      () => 0,
    );
    if (options.expectedSize !== undefined && resumedFrom >= options.expectedSize) {
      await rm(partial, { force: true });
      resumedFrom = 0;
    }
    const res = await this.#fetch('GET', `/artifacts/${sha256}`, {
      headers: resumedFrom > 0 ? { range: `bytes=${resumedFrom}-` } : {},
    });
    if (res.status === 416) {
      await rm(partial, { force: true });
      return this.downloadArtifact(sha256, out, options);
    }
    if (!res.ok) throw await this.#error(res);
    // A server that ignores the range sends everything: start over.
    if (res.status !== 206) resumedFrom = 0;
    const length = Number(res.headers.get('content-length') ?? 0);
    const total = resumedFrom + length;
    const hash = createHash('sha256');
    if (resumedFrom > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
    const file = await open(partial, resumedFrom > 0 ? 'a' : 'w');
    let done = resumedFrom;
    try {
      options.onProgress?.(done, total, resumedFrom);
      for await (const part of res.body ?? []) {
        const chunk = part as Uint8Array;
        await file.write(chunk);
        hash.update(chunk);
        done += chunk.byteLength;
        options.onProgress?.(done, total, resumedFrom);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    if (hash.digest('hex') !== sha256) {
      await rm(partial, { force: true });
      throw new InferMeshError(
        ErrorCode.FORBIDDEN,
        `the downloaded artifact does not match its sha256 ${sha256}`,
        {
          details: { reason: 'digest-mismatch' },
        },
      );
    }
    await rename(partial, out);
    return { size: done, resumedFrom };
  }

  /**
   * One JSON call of `/api/v1<path>`, the answer validated by `schema`: the building block of the
   * per-area clients (fleet, rollouts, federated runs).
   * @example
   * const agents = await client.request('GET', '/fleet/agents', fleetListSchema);
   */
  request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.output<S>> {
    return this.#json(method, path, schema, body);
  }

  /** A JSON call whose answer has no body worth reading (204, or an acknowledgement). */
  async send(method: string, path: string, body?: unknown): Promise<void> {
    const res = await this.#call(method, path, body);
    await res.body?.cancel();
  }

  async #json<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.output<S>> {
    const res = await this.#call(method, path, body);
    return parseOrThrow(schema, await res.json(), `answer of ${method} ${path}`);
  }

  async #call(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await this.#fetch(
      method,
      path,
      body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
    );
    if (!res.ok) throw await this.#error(res);
    return res;
  }

  async #fetch(
    method: string,
    path: string,
    init: { body?: RequestInit['body']; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`;
    try {
      return await fetch(`${this.url}/api/v1${path}`, {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: init.body, duplex: 'half' }),
      });
    } catch (cause) {
      const reason = (cause as { cause?: { code?: string; message?: string } }).cause;
      throw new InferMeshError(
        ErrorCode.UNAVAILABLE,
        `cannot reach the coordinator at ${this.url}: ${reason?.code ?? reason?.message ?? (cause as Error).message}`,
        { cause },
      );
    }
  }

  async #error(res: Response): Promise<InferMeshError> {
    const text = await res.text().catch(() => '');
    let body: { error: string; code: string; details?: Record<string, unknown> } | undefined;
    try {
      const parsed = apiErrorBodySchema.safeParse(JSON.parse(text));
      if (parsed.success) body = parsed.data;
    } catch {
      // not JSON: described by the status below
    }
    if (body && isErrorCode(body.code)) {
      return new InferMeshError(body.code, body.error, body.details ? { details: body.details } : {});
    }
    const code =
      res.status === 401
        ? ErrorCode.UNAUTHENTICATED
        : res.status === 403
          ? ErrorCode.FORBIDDEN
          : res.status === 404
            ? ErrorCode.NOT_FOUND
            : ErrorCode.INTERNAL;
    return new InferMeshError(
      code,
      `${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`,
    );
  }
}
