import { resolve } from 'node:path';
import type { TensorSpec } from '@kiln/handler-sdk/runtime';
import { integrityError, verifyArchive, type ArchiveReport } from '@kiln/server';
import type { CommandIO } from '../../command-spec.js';
import { humanSize } from '../../util/files.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';

export async function execute(args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const report = await verifyArchive(resolve(io.cwd, args.string(0)));
  io.stdout(options.boolean('json') ? `${JSON.stringify(toJson(report), null, 2)}\n` : render(report));
  if (!report.ok) throw integrityError(report);
}

function toJson(report: ArchiveReport) {
  return {
    path: report.path,
    format: report.format,
    ok: report.ok,
    manifest: report.manifest,
    files: report.files.map((f) => ({ path: f.path, size: f.size ?? null, sha256: f.sha256 ?? null, status: f.status })),
  };
}

function render(report: ArchiveReport): string {
  const { manifest } = report;
  const m = manifest.model;
  const lines = [`${m.modelName} ${m.modelVersion} (${report.format})`];
  const field = (label: string, value: string | undefined) => {
    if (value !== undefined) lines.push(`  ${label.padEnd(12)} ${value}`);
  };
  field('handler', m.handler);
  field('model', m.serializedFile);
  field('config', m.configFile);
  field('description', m.description);
  field(
    'created',
    `${manifest.createdOn} UTC by kiln archive ${manifest.archiverVersion} (sdk ${manifest.sdkVersion}, runtime ${manifest.runtime})`,
  );
  if (manifest.signature !== undefined) {
    lines.push('', 'signature');
    for (const [title, specs] of [
      ['inputs', manifest.signature.inputs],
      ['outputs', manifest.signature.outputs],
    ] as const) {
      lines.push(`  ${title}`);
      const width = Math.max(4, ...specs.map((s) => s.name.length));
      for (const spec of specs) lines.push(`    ${spec.name.padEnd(width)}  ${spec.datatype.padEnd(6)} ${formatShape(spec)}`);
    }
  }
  lines.push('', 'files');
  const sizes = report.files.map((f) => humanSize(f.size ?? f.expected?.size ?? 0));
  const width = Math.max(...sizes.map((s) => s.length));
  report.files.forEach((f, i) => lines.push(`  ${f.status.padEnd(15)} ${sizes[i]!.padStart(width)}  ${f.path}`));
  lines.push('', report.ok ? 'all files match the manifest' : 'ARCHIVE DOES NOT MATCH ITS MANIFEST');
  return `${lines.join('\n')}\n`;
}

function formatShape(spec: TensorSpec): string {
  return spec.shape === undefined ? '(any rank)' : `[${spec.shape.join(', ')}]`;
}
