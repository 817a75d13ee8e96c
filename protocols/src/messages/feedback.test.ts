import { describe, expect, it } from 'vitest';
import { formatExampleLine, parseExampleLines } from './feedback.js';
import type { LabelledExample } from './feedback.js';

describe('example lines', () => {
  it('round-trips examples and reports each bad line by number', () => {
    const good: LabelledExample[] = [
      { inputs: { text: 'win a prize' }, label: 1 },
      { inputs: { x: [1, 2, 3] }, label: 0 },
    ];
    const text = [
      formatExampleLine(good[0]!),
      '\n',
      '{"inputs":{"te',
      '\n',
      '{"inputs":{},"label":1}\n',
      formatExampleLine(good[1]!),
    ].join('');
    const { examples, invalid } = parseExampleLines(text);
    expect(examples).toEqual(good);
    expect(invalid.map((b) => b.line)).toEqual([3, 4]);
    expect(invalid[0]!.reason).toMatch(/^not JSON/);
    expect(invalid[1]!.reason).toMatch(/^not a labelled example: .*at least one input/);
  });
});
