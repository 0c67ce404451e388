import { KilnError } from '../errors/kiln-error.js';

/**
 * TorchServe's rule for model names: letters, digits, `_`, `-` and `.`, starting with a letter or a
 * digit. A name becomes a folder, a URL segment and a metric label, so nothing else gets through:
 * no `/`, no `..`, no whitespace.
 */
export const MODEL_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_\\-.]*$';
const MODEL_NAME = new RegExp(MODEL_NAME_PATTERN);

/**
 * The one check every entry point makes: `kiln archive --model-name`, `kiln serve --models NAME=…`,
 * `model_name=` on register, and the manifest's name when no other is given. `where` names the
 * flag or parameter, for the message.
 */
export function checkModelName(name: string, where: string): void {
  if (MODEL_NAME.test(name)) return;
  throw new KilnError(
    'KILN_ERR_INVALID_MODEL_NAME',
    `${where} "${printable(name)}" is not allowed: use letters, digits, '_', '-' and '.', starting with a letter or digit (${MODEL_NAME_PATTERN})`,
    { details: { where, received: name } },
  );
}

/** Control characters (a newline, say) shown escaped, so the message stays one line. */
function printable(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
