/**
 * Byte counts in binary units, as the server writes them ("512 MiB", "3.5 GiB"): the
 * extension's one byte formatter, for memory and S3 mirrors alike. Pure: no side effects.
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * A byte count for people, in binary units with at most one decimal: "812 B",
 * "1.5 KiB", "312 MiB", "1 GiB".
 */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) {
    return `${Math.round(value)} B`;
  }
  // One decimal below 10, none above: about three significant digits.
  let shown = value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
  if (shown >= 1024 && unit < UNITS.length - 1) {
    shown = 1; // 1023.7 MiB rounds up into the next unit
    unit++;
  }
  return `${shown} ${UNITS[unit]}`;
}
