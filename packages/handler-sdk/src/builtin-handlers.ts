/**
 * Handlers that ship with the SDK and are chosen by name (`--handler image_classifier`).
 * An archive that names one carries no handler code of its own.
 */
export const BUILTIN_HANDLERS = ['image_classifier', 'object_detector', 'image_segmenter', 'tensor'] as const;
export type BuiltinHandlerName = (typeof BUILTIN_HANDLERS)[number];

export function isBuiltinHandler(name: string): name is BuiltinHandlerName {
  return (BUILTIN_HANDLERS as readonly string[]).includes(name);
}
