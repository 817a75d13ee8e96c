/**
 * The federated-learning part of the admin API as the CLI calls it: start, read, list and stop
 * runs, and read one closed round (following one and showing it is `fl-view.ts`).
 * @module
 */
import { flRoundRecordSchema, flRunDetailSchema, flRunListResponseSchema } from '@infermesh/protocols';
import type { FlRoundRecord, FlRunDetail, FlRunListResponse, FlRunStartRequest } from '@infermesh/protocols';
import type { AdminClient } from './admin-client.js';

/** Federated runs over the admin API. */
export class FlClient {
  constructor(private readonly admin: AdminClient) {}

  start(request: FlRunStartRequest): Promise<FlRunDetail> {
    return this.admin.request('POST', '/fl/runs', flRunDetailSchema, request);
  }

  /** A run with its last closed rounds in full. */
  get(id: string): Promise<FlRunDetail> {
    return this.admin.request('GET', `/fl/runs/${encodeURIComponent(id)}`, flRunDetailSchema);
  }

  /** One closed round's full record. */
  round(id: string, round: number): Promise<FlRoundRecord> {
    return this.admin.request(
      'GET',
      `/fl/runs/${encodeURIComponent(id)}/rounds/${round}`,
      flRoundRecordSchema,
    );
  }

  list(): Promise<FlRunListResponse> {
    return this.admin.request('GET', '/fl/runs', flRunListResponseSchema);
  }

  stop(id: string, register: boolean): Promise<FlRunDetail> {
    return this.admin.request('POST', `/fl/runs/${encodeURIComponent(id)}/stop`, flRunDetailSchema, {
      register,
    });
  }
}
