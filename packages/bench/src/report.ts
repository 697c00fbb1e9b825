/**
 * Renders benchmark results: a terminal/markdown table, the JSON document `gumiho bench --json`
 * prints, and an SVG chart (speedup and tau per policy) for the README.
 */
import type { ContenderResult } from './harness.js';
import type { MachineInfo } from './machine.js';

/** Everything one bench run produced. */
export interface BenchReport {
  readonly machine: MachineInfo;
  readonly backend: string;
  readonly model: string;
  readonly settings: { maxNewTokens: number; temperature: number; seed: number; prompts: number; repeats: number };
  /** Weight bytes the backend reads per forward, measured read bandwidth, and the floor they imply. */
  readonly floor?: { weightBytes: number; bandwidthGBps: number; msPerToken: number; tokensPerSecond: number };
  readonly results: readonly ContenderResult[];
}

/** The `--json` document. */
export function toJson(report: BenchReport): Record<string, unknown> {
  return {
    machine: report.machine,
    backend: report.backend,
    model: report.model,
    settings: report.settings,
    floor: report.floor,
    results: report.results.map((result) => ({
      policy: result.policy,
      kind: result.kind,
      tokensPerSecond: round(result.tokensPerSecond, 2),
      speedup: result.speedup === null ? null : round(result.speedup, 3),
      meanAcceptedLength: round(result.meanAcceptedLength, 3),
      acceptanceByDepth: result.acceptanceByDepth.map((value) => round(value, 3)),
      draftMsPerRound: round(result.draftMsPerRound, 2),
      verifyMsPerRound: round(result.verifyMsPerRound, 2),
      prefillMs: round(result.prefillMs, 1),
      matchesVanilla: result.matchesVanilla,
      runs: result.runs,
    })),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function fixed(value: number | null, digits: number, suffix = ''): string {
  return value === null || !Number.isFinite(value) ? '-' : `${value.toFixed(digits)}${suffix}`;
}

/** A markdown table (also readable in a terminal). */
export function renderTable(report: BenchReport): string {
  const header = ['policy', 'tokens/s', 'speedup', 'tau', 'accept d1..d7', 'draft ms/round', 'verify ms/round', 'same tokens as vanilla'];
  const rows = report.results.map((result) => [
    result.policy,
    fixed(result.tokensPerSecond, 1),
    fixed(result.speedup, 2, 'x'),
    fixed(result.meanAcceptedLength, 2),
    result.acceptanceByDepth.length ? result.acceptanceByDepth.slice(0, 7).map((value) => value.toFixed(2)).join(' ') : '-',
    fixed(result.draftMsPerRound, 2),
    fixed(result.verifyMsPerRound, 2),
    result.matchesVanilla === null ? '-' : result.matchesVanilla ? 'yes' : 'NO',
  ]);
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join(' | ')} |`;
  const out = [line(header), `|${widths.map((width, column) => (column === 0 ? '-'.repeat(width + 2) : `${'-'.repeat(width + 1)}:`)).join('|')}|`, ...rows.map(line)];
  const { machine, settings } = report;
  out.push('');
  out.push(
    `${report.model} on ${report.backend}; ${settings.prompts} prompts x ${settings.repeats} repeat(s), ${settings.maxNewTokens} new tokens, ` +
      `temperature ${settings.temperature}, seed ${settings.seed}; ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}.`,
  );
  if (report.floor) {
    out.push(
      `Weight-bandwidth floor: ${(report.floor.weightBytes / 1e6).toFixed(1)} MB of weights / ${report.floor.bandwidthGBps.toFixed(1)} GB/s = ` +
        `${report.floor.msPerToken.toFixed(2)} ms/token (${report.floor.tokensPerSecond.toFixed(0)} tokens/s).`,
    );
  }
  out.push('tau = new tokens / target forwards (prefill and bonus included); speedup = median of same-prompt ratios over vanilla.');
  return out.join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** An SVG bar chart: speedup over vanilla per policy, with tau written on each bar. */
export function renderSvg(report: BenchReport): string {
  const results = report.results;
  const width = 640;
  const barHeight = 26;
  const gap = 10;
  const left = 150;
  const right = 90;
  const top = 48;
  const height = top + results.length * (barHeight + gap) + 40;
  const maxSpeedup = Math.max(1, ...results.map((result) => result.speedup ?? 0));
  const scale = (width - left - right) / (Math.ceil(maxSpeedup * 2) / 2);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`);
  parts.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  parts.push(
    `<text x="${left}" y="20" font-size="15" font-weight="bold">${escapeXml(`Speedup over vanilla (${report.backend}, T=${report.settings.temperature})`)}</text>`,
  );
  parts.push(`<text x="${left}" y="38" fill="#555">${escapeXml(`${report.model}; ${report.machine.cpu}; ${report.machine.date}`)}</text>`);
  results.forEach((result, index) => {
    const y = top + index * (barHeight + gap);
    const speedup = result.speedup ?? 0;
    const barWidth = Math.max(1, speedup * scale);
    const colour = result.kind === 'peer' ? '#9e9e9e' : result.policy === 'vanilla' ? '#78909c' : result.policy === 'gumiho' ? '#e65100' : '#1e88e5';
    parts.push(`<text x="${left - 8}" y="${y + barHeight / 2 + 4}" text-anchor="end">${escapeXml(result.policy)}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${barWidth.toFixed(1)}" height="${barHeight}" fill="${colour}" rx="3"/>`);
    parts.push(
      `<text x="${(left + barWidth + 6).toFixed(1)}" y="${y + barHeight / 2 + 4}">${escapeXml(`${fixed(result.speedup, 2, 'x')}  tau ${result.meanAcceptedLength.toFixed(2)}`)}</text>`,
    );
  });
  const axisY = top + results.length * (barHeight + gap);
  const oneX = left + scale;
  parts.push(`<line x1="${oneX.toFixed(1)}" y1="${top - 4}" x2="${oneX.toFixed(1)}" y2="${axisY}" stroke="#333" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${oneX.toFixed(1)}" y="${axisY + 16}" text-anchor="middle" fill="#333">1.0x</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
