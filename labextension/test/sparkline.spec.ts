import { describe, expect, it } from 'vitest';

import { formatValue, MAX_RUNS, sparkline } from '../src/sparkline';

const points = (line: string) =>
  line.split(' ').map(pair => pair.split(',').map(Number));

describe('sparkline', () => {
  it('maps steps across and values up the box, inset by the stroke', () => {
    const { lines, latest } = sparkline(
      {
        run: [
          [0, 1],
          [5, 0.5],
          [10, 0]
        ]
      },
      100,
      20,
      { pad: 0 }
    );
    expect(lines).toEqual([
      { run: 'run', points: '0,0 50,10 100,20', last: { step: 10, value: 0 } }
    ]);
    expect(latest).toEqual({ run: 'run', step: 10, value: 0 });

    const padded = sparkline(
      {
        run: [
          [0, 1],
          [10, 0]
        ]
      },
      100,
      20,
      { pad: 2 }
    );
    expect(points(padded.lines[0].points)).toEqual([
      [2, 2],
      [98, 18]
    ]);
  });

  it('puts every run on one step axis and one value scale', () => {
    const { lines, latest } = sparkline(
      {
        a: [
          [0, 4],
          [10, 2]
        ],
        b: [
          [0, 2],
          [20, 0]
        ]
      },
      40,
      8,
      { pad: 0 }
    );
    expect(lines.map(line => line.points)).toEqual(['0,0 20,4', '0,4 40,8']);
    // The run that got furthest gives the latest value.
    expect(latest).toEqual({ run: 'b', step: 20, value: 0 });
  });

  it('draws equal values along the middle and a lone point as a dot', () => {
    const flat = sparkline(
      {
        a: [
          [0, 3],
          [4, 3]
        ]
      },
      10,
      10,
      { pad: 0 }
    );
    expect(flat.lines[0].points).toBe('0,5 10,5');
    const dot = sparkline({ a: [[7, 0.25]] }, 10, 10, { pad: 0 });
    expect(dot.lines[0].points).toBe('5,5 5,5');
    expect(dot.latest).toEqual({ run: 'a', step: 7, value: 0.25 });
  });

  it('leaves out runs past the first few, and points that are not finite', () => {
    const runs = Object.fromEntries(
      Array.from({ length: MAX_RUNS + 2 }, (_, index) => [
        `r${index}`,
        [
          [0, index],
          [1, index + 1]
        ] as [number, number][]
      ])
    );
    expect(sparkline(runs, 10, 10).lines.map(line => line.run)).toEqual(
      Array.from({ length: MAX_RUNS }, (_, index) => `r${index}`)
    );
    const gaps = sparkline(
      {
        empty: [],
        a: [
          [0, 1],
          [1, NaN],
          [2, Infinity],
          [2.5, null],
          [3, 0]
        ]
      },
      30,
      10,
      { pad: 0 }
    );
    expect(gaps.lines).toEqual([
      { run: 'a', points: '0,0 30,10', last: { step: 3, value: 0 } }
    ]);
  });

  it('has no lines and no latest value without points', () => {
    expect(sparkline({}, 10, 10)).toEqual({ lines: [], latest: null });
    expect(sparkline({ a: [] }, 10, 10)).toEqual({ lines: [], latest: null });
  });

  it('rounds coordinates to a tenth of a pixel', () => {
    const { lines } = sparkline(
      {
        a: [
          [0, 0],
          [3, 1],
          [7, 2]
        ]
      },
      10,
      10,
      {
        pad: 0
      }
    );
    expect(lines[0].points).toBe('0,10 4.3,5 10,0');
  });
});

describe('formatValue', () => {
  it('shows four significant digits, or an exponent when tiny or huge', () => {
    expect(formatValue(0.25)).toBe('0.25');
    expect(formatValue(1.234567)).toBe('1.235');
    expect(formatValue(-42)).toBe('-42');
    expect(formatValue(12345.6)).toBe('12350');
    expect(formatValue(0)).toBe('0');
    expect(formatValue(0.000123)).toBe('1.23e-4');
    expect(formatValue(2e-7)).toBe('2e-7');
    expect(formatValue(3.5e9)).toBe('3.5e+9');
  });
});
