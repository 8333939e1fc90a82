import { describe, expect, it } from 'vitest';

import { buildPath } from '../src/chart';

const box = { width: 110, height: 60, pad: 5 };

describe('buildPath', () => {
  it('scales steps to x and values to y, high values at the top', () => {
    const d = buildPath(
      [
        { step: 0, value: 1 },
        { step: 5, value: 0.5 },
        { step: 10, value: 0 }
      ],
      box
    );
    expect(d).toBe('M5,5 L55,30 L105,55');
  });

  it('draws a flat or single-point series across the middle', () => {
    expect(buildPath([{ step: 3, value: 2 }], box)).toBe('M55,30');
    expect(
      buildPath(
        [
          { step: 0, value: 2 },
          { step: 1, value: 2 }
        ],
        box
      )
    ).toBe('M5,30 L105,30');
  });

  it('skips non-finite points and gives nothing for no points', () => {
    expect(buildPath([], box)).toBe('');
    expect(buildPath([{ step: 0, value: NaN }], box)).toBe('');
    expect(
      buildPath(
        [
          { step: 0, value: 0 },
          { step: 1, value: Infinity },
          { step: 2, value: 1 }
        ],
        box
      )
    ).toBe('M5,55 L105,5');
  });

  it('rounds coordinates to two decimals', () => {
    const d = buildPath(
      [
        { step: 0, value: 0 },
        { step: 3, value: 1 },
        { step: 7, value: 2 }
      ],
      box
    );
    expect(d).toBe('M5,55 L47.86,30 L105,5');
  });
});
