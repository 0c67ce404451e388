import type { RunningKiln } from './server.js';

/** /metrics as a map from series (name and labels, as written) to value. */
export async function scrape(kiln: RunningKiln, query = ''): Promise<Map<string, number>> {
  const text = await (await fetch(`${kiln.metrics}/metrics${query}`)).text();
  return new Map(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))]),
  );
}

/** The sum of every series of a family whose labels include all of `having`. */
export function total(samples: Map<string, number>, name: string, having = ''): number {
  let sum = 0;
  for (const [series, value] of samples) {
    const brace = series.indexOf('{');
    if ((brace === -1 ? series : series.slice(0, brace)) === name && having.split(',').every((l) => series.includes(l))) sum += value;
  }
  return sum;
}
