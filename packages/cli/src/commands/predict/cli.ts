import { ERROR_CATALOGUE, isKilnError } from '@kiln/handler-sdk/errors';
import { renderBody } from '@kiln/handler-sdk/runtime';
import type { CommandIO } from '../../command-spec.js';
import { cliError } from '../../errors.js';
import { predict, type Prediction } from './predict.js';

export async function execute(args: string[], options: Record<string, unknown>, io: CommandIO): Promise<void> {
  const [archive, inputs] = args as unknown as [string, string[]];
  let predictions: Prediction[];
  try {
    predictions = await predict({
      archive,
      inputs,
      batch: options.batch === true,
      ...(typeof options.contentType === 'string' ? { contentType: options.contentType } : {}),
      cwd: io.cwd,
      logSink: (level, message) => io.stderr(`[${level}] ${message}\n`),
    });
  } catch (error) {
    // A handler that fails to load: show where, mapped to its TypeScript source.
    if (isKilnError(error) && error.code === 'KILN_ERR_HANDLER_LOAD' && error.stack) io.stderr(`${error.stack}\n`);
    throw error;
  }
  io.stdout(options.json === true ? `${JSON.stringify(predictions.map(toJson), null, 2)}\n` : predictions.map(render).join(''));
  const failed = predictions.filter((p) => !p.result.ok);
  if (failed.length > 0) {
    throw cliError(
      'KILN_ERR_PREDICTION_FAILED',
      `${failed.length} of ${predictions.length} inputs failed: ${failed.map((p) => p.input).join(', ')}`,
    );
  }
}

function render({ input, result }: Prediction): string {
  if (!result.ok) {
    const { code, message, phase, stack } = result.error;
    const { status } = ERROR_CATALOGUE[code];
    const trace = status >= 500 && stack !== undefined ? `${stack.split('\n').slice(1).join('\n')}\n` : '';
    return `== ${input}: ${status} ${code}${phase ? ` (in ${phase})` : ''}\n${message}\n${trace}`;
  }
  const { contentType, data } = renderBody(result.body);
  if (typeof data === 'string') return `== ${input}: ${result.status}\n${JSON.stringify(JSON.parse(data), null, 2)}\n`;
  return `== ${input}: ${result.status} ${contentType}, ${data.length} bytes\n`;
}

function toJson({ input, result }: Prediction) {
  if (!result.ok) return { input, ok: false, status: ERROR_CATALOGUE[result.error.code].status, error: result.error };
  const { status, headers } = result;
  const { contentType, data } = renderBody(result.body);
  return typeof data === 'string'
    ? { input, ok: true, status, headers, contentType, body: JSON.parse(data) as unknown }
    : { input, ok: true, status, headers, contentType, bodyBase64: Buffer.from(data).toString('base64') };
}
