/**
 * Admin API routes of artifacts, addressed by sha256:
 * - `PUT /api/v1/artifacts/{sha256}`: upload (streamed into the object store, never buffered
 *   whole; digest and size checked on the way). 201 when stored, 200 when the same bytes were
 *   there already (the body is then not stored again). 413 over `maxArtifactBytes`; 403
 *   (`digest-mismatch`) when the bytes are not the digest's.
 * - `HEAD /api/v1/artifacts/{sha256}`: whether it is stored (size in Content-Length).
 * - `GET /api/v1/artifacts/{sha256}`: download, streamed with backpressure, Content-Length set,
 *   `Range: bytes=N-` honoured (206) so an interrupted download resumes.
 * @module
 */
import { Hono } from 'hono';
import { ErrorCode, artifactInfoSchema, sha256HexSchema } from '@infermesh/protocols';
import type { ArtifactInfo } from '@infermesh/protocols';
import type { StoredArtifact } from '@infermesh/mesh-client';
import type { Logger } from 'pino';
import type { ModelRegistry } from '../registry/model-registry.js';
import { parseRange } from './byte-range.js';
import { pathParam } from './http-errors.js';
import { noteAudit, requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** The documentation of {@link artifactRoutes}. */
export const ARTIFACT_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'put',
    path: '/artifacts/{sha256}',
    summary: 'Upload an artifact (application/octet-stream body, streamed; 201 stored, 200 already there)',
    role: 'operator',
    tag: 'artifacts',
    response: artifactInfoSchema,
    status: 201,
  },
  {
    method: 'get',
    path: '/artifacts/{sha256}',
    summary: 'Download an artifact (Range supported)',
    role: 'viewer',
    tag: 'artifacts',
  },
  {
    method: 'head',
    path: '/artifacts/{sha256}',
    summary: 'Whether an artifact is stored, and its size',
    role: 'viewer',
    tag: 'artifacts',
  },
];

/** Headers every answer about a stored artifact carries. */
function artifactHeaders(artifact: StoredArtifact): Record<string, string> {
  return {
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${artifact.sha256}"`,
  };
}

/**
 * A web stream over the first `length` bytes of a generator, pulled on demand. With `length`
 * undefined the generator runs to its end, so a full read's closing digest check still happens (a
 * failure aborts the response rather than ending it cleanly).
 */
function boundedStream(
  source: AsyncGenerator<Uint8Array, void, undefined>,
  length: number | undefined,
  onError: (err: unknown) => void,
): ReadableStream<Uint8Array> {
  let left = length ?? Number.POSITIVE_INFINITY;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (left <= 0) {
          controller.close();
          await source.return(undefined);
          return;
        }
        const { done, value } = await source.next();
        if (done) {
          controller.close();
          return;
        }
        const chunk = value.byteLength > left ? value.subarray(0, left) : value;
        left -= chunk.byteLength;
        controller.enqueue(chunk);
      } catch (err) {
        onError(err);
        controller.error(err);
      }
    },
    async cancel() {
      await source.return(undefined);
    },
  });
}

/** Options of {@link artifactRoutes}. */
export interface ArtifactRoutesOptions {
  readonly registry: ModelRegistry;
  readonly logger: Logger;
}

/** The artifact routes, to mount under `/api/v1`. */
export function artifactRoutes(options: ArtifactRoutesOptions): Hono<AdminEnv> {
  const { registry } = options;
  const log = options.logger.child({ component: 'coordinator.admin.artifacts' });
  const app = new Hono<AdminEnv>();

  app.put('/artifacts/:sha256', requireRole('operator'), async (c) => {
    const sha256 = pathParam(c, 'sha256', sha256HexSchema);
    noteAudit(c, { action: 'artifact.upload', target: sha256 });
    const lengthHeader = c.req.header('content-length');
    const expectedSize = lengthHeader === undefined ? undefined : Number(lengthHeader);
    const body = c.req.raw.body ?? new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
    const { artifact, created } = await registry.putArtifact(
      sha256,
      body,
      expectedSize !== undefined && Number.isSafeInteger(expectedSize) ? expectedSize : undefined,
    );
    const answer: ArtifactInfo = { sha256: artifact.sha256, size: artifact.size, created };
    return c.json(answer, created ? 201 : 200);
  });

  app.on(['GET', 'HEAD'], '/artifacts/:sha256', requireRole('viewer'), async (c) => {
    const sha256 = pathParam(c, 'sha256', sha256HexSchema);
    const artifact = await registry.statArtifact(sha256);
    if (!artifact) {
      return c.json(
        { error: `artifact ${sha256} is not in the registry`, code: ErrorCode.MODEL_NOT_FOUND },
        404,
      );
    }
    const headers = artifactHeaders(artifact);
    const range = parseRange(c.req.header('range'), artifact.size);
    if (range.type === 'unsatisfiable') {
      return c.json(
        {
          error: `the range is outside the artifact (${artifact.size} bytes)`,
          code: ErrorCode.INVALID_INPUT,
        },
        416,
        { 'Content-Range': `bytes */${artifact.size}` },
      );
    }
    const start = range.type === 'partial' ? range.range.start : 0;
    const end = range.type === 'partial' ? range.range.end : artifact.size - 1;
    const length = artifact.size === 0 ? 0 : end - start + 1;
    headers['Content-Length'] = String(length);
    if (range.type === 'partial') headers['Content-Range'] = `bytes ${start}-${end}/${artifact.size}`;
    const status = range.type === 'partial' ? 206 : 200;
    if (c.req.method === 'HEAD' || length === 0) return c.body(null, status, headers);
    const source = await registry.readArtifact(artifact, start);
    const toEnd = end === artifact.size - 1;
    const stream = boundedStream(source, toEnd ? undefined : length, (err) =>
      log.warn({ err, sha256, start }, 'artifact download failed midway'),
    );
    return c.body(stream, status, headers);
  });

  return app;
}
