/**
 * Module resolve hook (runs on Node's loader thread). A bundled handler imports onnxruntime-node,
 * sharp and @kiln/handler-sdk without carrying them; this resolves those imports as if from the
 * SDK itself, so every model uses the server's copies, wherever its archive was unpacked.
 */
const EXTERNAL = /^(onnxruntime-node|sharp|@kiln\/handler-sdk)(\/.*)?$/;
let parentURL: string | undefined;

export function initialize(data: { parentURL: string }): void {
  parentURL = data.parentURL;
}

type Next = (specifier: string, context: { parentURL?: string | undefined }) => Promise<unknown>;

export async function resolve(specifier: string, context: { parentURL?: string | undefined }, next: Next): Promise<unknown> {
  if (parentURL !== undefined && EXTERNAL.test(specifier)) return next(specifier, { ...context, parentURL });
  return next(specifier, context);
}
