import type { BuiltinHandlerName } from '../builtin-handlers.js';
import type { Handler } from '../handler/types.js';

/** Creates a built-in handler by name; each is imported only when a model uses it. */
export async function createBuiltinHandler(name: BuiltinHandlerName): Promise<Handler> {
  switch (name) {
    case 'tensor':
      return new (await import('./tensor-handler.js')).TensorHandler();
    case 'image_classifier':
      return new (await import('./image-classifier.js')).ImageClassifier();
    case 'object_detector':
      return new (await import('./object-detector.js')).ObjectDetector();
    case 'image_segmenter':
      return new (await import('./image-segmenter.js')).ImageSegmenter();
  }
}
