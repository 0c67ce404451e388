import { isKilnError } from '@kiln/handler-sdk/errors';
import type { CommandIO } from '../../command-spec.js';
import { cliError } from '../../errors.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { predict, type Prediction } from './predict.js';

export async function execute(args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const contentType = options.optionalString('contentType');
  let predictions: Prediction[];
  try {
    predictions = await predict({
      archive: args.string(0),
      inputs: args.list(1),
      batch: options.boolean('batch'),
      ...(contentType === undefined ? {} : { contentType }),
      cwd: io.cwd,
      logSink: (level, message) => io.stderr(`[${level}] ${message}\n`),
    });
  } catch (error) {
    // A handler that fails to load: show where, mapped to its TypeScript source.
    if (isKilnError(error) && error.code === 'KILN_ERR_HANDLER_LOAD' && error.stack) io.stderr(`${error.stack}\n`);
    throw error;
  }
  io.stdout(options.boolean('json') ? `${JSON.stringify(predictions.map(toJson), null, 2)}\n` : predictions.map(render).join(''));
  const failed = predictions.filter((p) => !p.result.ok);
  if (failed.length > 0) {
    throw cliError(
      'KILN_ERR_PREDICTION_FAILED',
      `${failed.length} of ${predictions.length} inputs failed: ${failed.map((p) => p.input).join(', ')}`,
    );
  }
}

function render({ input, result }: Prediction): string {
  if (result.error !== undefined) {
    const { code, message, phase, stack } = result.error;
    const trace = result.status >= 500 && stack !== undefined ? `${stack.split('\n').slice(1).join('\n')}\n` : '';
    return `== ${input}: ${result.status} ${code}${phase ? ` (in ${phase})` : ''}\n${message}\n${trace}`;
  }
  if (result.json !== undefined) return `== ${input}: ${result.status}\n${JSON.stringify(result.json, null, 2)}\n`;
  return `== ${input}: ${result.status} ${result.contentType}, ${result.bytes?.length ?? 0} bytes\n`;
}

function toJson({ input, result }: Prediction) {
  const { ok, status, headers, contentType } = result;
  if (result.error !== undefined) return { input, ok, status, error: result.error };
  return result.json !== undefined
    ? { input, ok, status, headers, contentType, body: result.json }
    : { input, ok, status, headers, contentType, bodyBase64: Buffer.from(result.bytes ?? []).toString('base64') };
}
