/**
 * The federated-learning part of the admin API as the CLI calls it: start, read, list and stop
 * runs (following one and showing it is `fl-view.ts`).
 * @module
 */
import { flRunListResponseSchema, flRunRecordSchema } from '@infermesh/protocols';
import type { FlRunListResponse, FlRunRecord, FlRunStartRequest } from '@infermesh/protocols';
import type { AdminClient } from './admin-client.js';

/** Federated runs over the admin API. */
export class FlClient {
  constructor(private readonly admin: AdminClient) {}

  start(request: FlRunStartRequest): Promise<FlRunRecord> {
    return this.admin.request('POST', '/fl/runs', flRunRecordSchema, request);
  }

  get(id: string): Promise<FlRunRecord> {
    return this.admin.request('GET', `/fl/runs/${encodeURIComponent(id)}`, flRunRecordSchema);
  }

  list(): Promise<FlRunListResponse> {
    return this.admin.request('GET', '/fl/runs', flRunListResponseSchema);
  }

  stop(id: string, register: boolean): Promise<FlRunRecord> {
    return this.admin.request('POST', `/fl/runs/${encodeURIComponent(id)}/stop`, flRunRecordSchema, {
      register,
    });
  }
}
