import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@infermesh/protocols';
import { buildMlpClassifier } from './builders/mlp.js';
import { readFloatInitializers, replaceFloatInitializers } from './initializers.js';

describe('float initializers', () => {
  const built = buildMlpClassifier({ inputSize: 4, hiddenSizes: [3], classes: 2, batch: 'dynamic', seed: 7 });
  const names = ['layer0.weight', 'layer0.bias', 'layer1.weight', 'layer1.bias'];

  it('reads initializers by name with their dims', () => {
    const tensors = readFloatInitializers(built.bytes, names);
    expect(tensors.map((t) => t.name)).toEqual(names);
    for (const t of tensors) expect(t.data.length).toBe(t.dims.reduce((a, b) => a * b, 1));
  });

  it('replaces values and leaves every other initializer as it was', () => {
    const [first, ...rest] = readFloatInitializers(built.bytes, names);
    const replaced = Float32Array.from(first!.data, (_, i) => i + 0.5);
    const bytes = replaceFloatInitializers(built.bytes, [{ name: first!.name, data: replaced }]);
    const after = readFloatInitializers(bytes, names);
    expect(Array.from(after[0]!.data)).toEqual(Array.from(replaced));
    expect(after[0]!.dims).toEqual(first!.dims);
    for (let i = 0; i < rest.length; i++) expect(after[i + 1]!.data).toEqual(rest[i]!.data);
  });

  it('refuses a missing name and a wrong length with INVALID_INPUT', () => {
    expect(() => readFloatInitializers(built.bytes, ['nope'])).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_INPUT }),
    );
    expect(() =>
      replaceFloatInitializers(built.bytes, [{ name: names[0]!, data: new Float32Array(1) }]),
    ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_INPUT }));
  });
});
