/**
 * Differential-privacy settings that cannot work, refused when a run starts (INVALID_INPUT naming
 * the fix) rather than failing every round later: adaptive clipping (`targetQuantile`) exists only
 * server-side (clients clip with the fixed `clipNorm`, so the setting would be silently ignored in
 * `mode: 'client'`), and server-side adaptive clipping adds noise σ_b = clients / 20 to the count
 * of unclipped updates, which must exceed noiseMultiplier / 2 (`adaptiveNoiseMultiplier` in
 * `@infermesh/federated`) — with fewer clients in a round its aggregation throws. A round may
 * aggregate as few as `minClients`, so that is the count checked.
 * @module
 */
import { COUNT_NOISE_CLIENTS_DIVISOR } from '@infermesh/federated';
import { invalidInput } from '@infermesh/protocols';
import type { FlPrivacy } from '@infermesh/protocols';

/** What the check reads of a start request. */
export interface PrivacyRunSettings {
  readonly privacy?: FlPrivacy | undefined;
  readonly minClients: number;
  readonly clientsPerRound: number;
}

/** Fewest clients a round with server-side adaptive clipping needs: σ_b = n / 20 > z / 2. */
export function adaptiveClippingMinClients(noiseMultiplier: number): number {
  return Math.floor((COUNT_NOISE_CLIENTS_DIVISOR * noiseMultiplier) / 2) + 1;
}

/** Throws INVALID_INPUT for privacy settings that cannot work (see the module comment). */
export function checkPrivacyRun(settings: PrivacyRunSettings): void {
  const privacy = settings.privacy;
  if (privacy?.targetQuantile === undefined) return;
  if (privacy.mode === 'client') {
    throw invalidInput(
      "privacy.targetQuantile (adaptive clipping) works only with privacy.mode 'server': clients clip " +
        "with the fixed clipNorm; drop targetQuantile or use mode 'server'",
      { field: 'privacy.targetQuantile' },
    );
  }
  const needed = adaptiveClippingMinClients(privacy.noiseMultiplier);
  if (settings.minClients < needed) {
    throw invalidInput(
      `server-side adaptive clipping with noiseMultiplier ${privacy.noiseMultiplier} needs at least ${needed} ` +
        `clients in every round (its count noise, clients / ${COUNT_NOISE_CLIENTS_DIVISOR}, must exceed ` +
        `noiseMultiplier / 2), and minClients is ${settings.minClients}: set minClients and clientsPerRound ` +
        `to at least ${needed}, lower noiseMultiplier, or drop targetQuantile for a fixed clip norm`,
      { field: 'minClients' },
    );
  }
}
