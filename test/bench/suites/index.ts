/**
 * The benchmark suites, by name. Each resolves with whether all its targets were met.
 * @module
 */
import { dataPlaneSuite } from './data-plane.js';
import { edgeSuite } from './edge.js';
import { federatedSuite } from './federated.js';
import { fleetSuite } from './fleet.js';
import { quantizeSuite } from './quantize.js';
import { syncSuite } from './sync.js';

export const SUITES: Record<string, () => Promise<boolean>> = {
  quantize: quantizeSuite,
  edge: edgeSuite,
  'data-plane': dataPlaneSuite,
  federated: federatedSuite,
  sync: syncSuite,
  fleet: fleetSuite,
};
