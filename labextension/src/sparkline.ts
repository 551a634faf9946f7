/**
 * A sparkline's geometry: polyline points for a few runs' `[step, value]` series in
 * a small box, and the latest value to show beside it. Pure, so it is tested alone.
 */

/** How many runs a sparkline draws at most (as many as the server's preview holds). */
export const MAX_RUNS = 5;

/** One run's line: SVG polyline points ("x,y x,y ..."). */
export interface ISparklineLine {
  run: string;
  points: string;
  /** The run's last point. */
  last: { step: number; value: number };
}

/** What a sparkline draws. */
export interface ISparkline {
  lines: ISparklineLine[];
  /** The last point of the run that got furthest (the first such run on a tie). */
  latest: { run: string; step: number; value: number } | null;
}

const round = (value: number): number => Math.round(value * 10) / 10;

/**
 * Lines for up to `maxRuns` runs (in the order given; points whose value is null or
 * not finite, and runs left without any, are left out) in a `width` x `height` box, all on one step axis and one value scale,
 * inset by `pad` so strokes are not clipped. Equal values are drawn along the middle,
 * a single point as a zero-length segment (a dot with round line caps).
 */
export function sparkline(
  runs: Readonly<Record<string, readonly (readonly [number, number | null])[]>>,
  width: number,
  height: number,
  { maxRuns = MAX_RUNS, pad = 1.5 } = {}
): ISparkline {
  const series = Object.entries(runs)
    .map(([run, points]) => ({
      run,
      points: points.filter(
        (point): point is readonly [number, number] =>
          Number.isFinite(point[0]) && Number.isFinite(point[1])
      )
    }))
    .filter(({ points }) => points.length > 0)
    .slice(0, maxRuns);
  if (!series.length) {
    return { lines: [], latest: null };
  }
  const all = series.flatMap(({ points }) => points);
  const steps = all.map(([step]) => step);
  const values = all.map(([, value]) => value);
  const [minStep, maxStep] = [Math.min(...steps), Math.max(...steps)];
  const [minValue, maxValue] = [Math.min(...values), Math.max(...values)];
  const x = (step: number) =>
    maxStep === minStep
      ? width / 2
      : pad + ((step - minStep) / (maxStep - minStep)) * (width - 2 * pad);
  const y = (value: number) =>
    maxValue === minValue
      ? height / 2
      : height -
        pad -
        ((value - minValue) / (maxValue - minValue)) * (height - 2 * pad);
  let latest: ISparkline['latest'] = null;
  const lines = series.map(({ run, points }) => {
    const coordinates = points.map(
      ([step, value]) => `${round(x(step))},${round(y(value))}`
    );
    if (coordinates.length === 1) {
      coordinates.push(coordinates[0]);
    }
    const [step, value] = points[points.length - 1];
    if (!latest || step > latest.step) {
      latest = { run, step, value };
    }
    return { run, points: coordinates.join(' '), last: { step, value } };
  });
  return { lines, latest };
}

/** A scalar for the eye: four significant digits, exponent notation when tiny or huge. */
export function formatValue(value: number): string {
  if (value === 0 || !Number.isFinite(value)) {
    return String(value);
  }
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) {
    return value.toExponential(2).replace(/\.?0+e/, 'e');
  }
  return String(Number(value.toPrecision(4)));
}
