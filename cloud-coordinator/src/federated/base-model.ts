/**
 * The model a run trains and what it registers at the end. The base version's float model is the
 * variant whose bytes hold the trainable initializers as float32 (the cloud variant, or an edge
 * variant pushed unquantized); the new version is that graph with the run's final weights
 * (`replaceFloatInitializers`), pushed like `models push` makes versions: the float model as the
 * cloud variant when the base had one, an int8 dynamic quantization of it as the edge variant when
 * the base's edge variant was quantized (the float model otherwise), with the base's offload,
 * batching and trainable settings. The registry signs it like any other version.
 * @module
 */
import { quantizeModel, readFloatInitializers, replaceFloatInitializers } from '@infermesh/onnx-tools';
import { invalidInput } from '@infermesh/protocols';
import type { CreateModelVersionRequest, ModelManifest } from '@infermesh/protocols';
import type { ArtifactStore } from '@infermesh/mesh-client';
import type { GlobalWeights } from './global-weights.js';

/** The float graph of a base version and its trainable weights. */
export interface BaseModel {
  readonly manifest: ModelManifest;
  readonly floatBytes: Uint8Array;
  readonly weights: GlobalWeights;
}

/** Loads the base version's float model; INVALID_INPUT when it names no trainable float tensors. */
export async function loadBaseModel(artifacts: ArtifactStore, manifest: ModelManifest): Promise<BaseModel> {
  const trainable = manifest.trainable ?? [];
  const label = `${manifest.name}@${manifest.version}`;
  if (trainable.length === 0) {
    throw invalidInput(`${label} names no trainable initializers (manifest field trainable)`);
  }
  let lastError: unknown;
  for (const variant of [manifest.variants.cloud, manifest.variants.edge]) {
    if (variant === undefined) continue;
    const bytes = await artifacts.readAll(variant.sha256);
    try {
      const tensors = readFloatInitializers(bytes, trainable);
      return {
        manifest,
        floatBytes: bytes,
        weights: {
          shapes: tensors.map((t) => ({ name: t.name, dims: [...t.dims] })),
          layers: tensors.map((t) => Float32Array.from(t.data)),
        },
      };
    } catch (err) {
      lastError = err;
    }
  }
  throw invalidInput(
    `no variant of ${label} holds its trainable initializers as float32: ${(lastError as Error | undefined)?.message ?? ''}`,
  );
}

/** The base graph with `weights` in place of its trainable initializers. */
export function modelWithWeights(base: BaseModel, weights: GlobalWeights): Uint8Array {
  return replaceFloatInitializers(
    base.floatBytes,
    weights.shapes.map((shape, i) => ({ name: shape.name, data: weights.layers[i]! })),
  );
}

/** Stores the artifacts of the trained version; resolves with the create request. */
export async function resultVersionRequest(
  artifacts: ArtifactStore,
  base: BaseModel,
  weights: GlobalWeights,
  version: string,
): Promise<CreateModelVersionRequest> {
  const float = modelWithWeights(base, weights);
  const { manifest } = base;
  const floatSha = (await artifacts.putBytes(float)).artifact.sha256;
  const variants: CreateModelVersionRequest['variants'] = {};
  if (manifest.variants.cloud !== undefined || manifest.variants.edge === undefined)
    variants.cloud = { sha256: floatSha };
  const edge = manifest.variants.edge;
  if (edge !== undefined) {
    if (edge.quantization === 'int8-dynamic' || edge.quantization === 'int8-weights') {
      const quantized = quantizeModel(float, { mode: 'dynamic' });
      variants.edge = {
        sha256: (await artifacts.putBytes(quantized.bytes)).artifact.sha256,
        quantization: 'int8-dynamic',
      };
    } else {
      variants.edge = { sha256: floatSha };
    }
  }
  return {
    version,
    variants,
    ...(manifest.offload ? { offload: manifest.offload } : {}),
    ...(manifest.batching ? { batching: manifest.batching } : {}),
    ...(manifest.trainable ? { trainable: manifest.trainable } : {}),
  };
}
