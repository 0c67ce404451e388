/**
 * `@kiln/handler-sdk`: what handler authors import. Internals live in `/runtime` (manifests,
 * configs, wire types; no native code) and `/worker` (loading a model, running batches).
 */
export { KilnError, isKilnError, isKilnErrorCode, sdkError, toKilnError } from './errors/kiln-error.js';
export type { ErrorCatalogue, ErrorFactory, ErrorSpec, FailurePhase, KilnErrorOptions } from './errors/kiln-error.js';
export { ERROR_CATALOGUE } from './errors/catalogue.js';
export type { KilnErrorCode, SdkErrorCode } from './errors/catalogue.js';

export { DATATYPES, ONNX_ELEMENT_TYPES, ONNX_UNSUPPORTED_ELEMENT_TYPES } from './manifest/datatypes.js';
export type { Datatype } from './manifest/datatypes.js';
export { BUNDLED_HANDLER_FILE, MANIFEST_PATH } from './manifest/manifest.js';
export type { FileEntry, Manifest, Signature, TensorSpec } from './manifest/manifest.js';

export { EXECUTION_PROVIDERS, ISOLATION_MODES, MODEL_CONFIG_DEFAULTS } from './config/model-config-schema.js';
export type { ExecutionProvider, Isolation, ModelConfig, ModelConfigFile } from './config/model-config-schema.js';

export { BUILTIN_HANDLERS, isBuiltinHandler } from './builtin-handlers.js';
export type { BuiltinHandlerName } from './builtin-handlers.js';
export { SDK_VERSION } from './version.js';

export { BaseHandler } from './handler/base-handler.js';
export type { HandlerPhase } from './handler/base-handler.js';
export { batchKey, collate, conformToSignature, split } from './handler/collate.js';
export { RequestError } from './handler/request-error.js';
export { HandlerResponse } from './handler/response.js';
export type { ResponseInit } from './handler/response.js';
export { createSession } from './handler/session.js';
export type { SessionOptions } from './handler/session.js';
export type {
  Answer,
  Counter,
  Device,
  Gauge,
  Handler,
  HandlerContext,
  InferenceSession,
  Histogram,
  JsonValue,
  KilnRequest,
  Labels,
  Logger,
  Metrics,
  PhaseTimings,
  RequestField,
  Tensors,
} from './handler/types.js';
export { DEFAULT_BUCKETS } from './runtime/metrics.js';
export { requestBytes } from './handler/request-bytes.js';

export { Tensor, datatypeOf, shapeSize, tensor, tensorFromDatatype, tensorToJson, tensorValues } from './tensor/tensor.js';
export type { TypedArray } from './tensor/tensor.js';
export { DATATYPE_TO_TENSOR_TYPE, TENSOR_TYPE_TO_DATATYPE } from './tensor/datatypes.js';
export type { TensorType } from './tensor/datatypes.js';
export { tensorsFromJson } from './tensor/json-tensors.js';
export { argmax, softmax, topK } from './tensor/softmax.js';
export type { Ranked } from './tensor/softmax.js';

export { DEFAULT_MAX_PIXELS, IMAGENET_MEAN, IMAGENET_STD, centerCrop, decodeImage, imageToTensor, resizeImage } from './image/image.js';
export type { RawImage, Size, ToTensorOptions } from './image/image.js';

export { fromHalf, toHalf } from './tensor/float16.js';
export type { LogLevel } from './runtime/logger.js';

export { ImageClassifier, readLabels } from './builtin/image-classifier.js';
export type { ImageClassifierConfig } from './builtin/image-classifier.js';
export { ObjectDetector } from './builtin/object-detector.js';
export type { Detection, ObjectDetectorConfig } from './builtin/object-detector.js';
export { ImageSegmenter } from './builtin/image-segmenter.js';
export type { ImageSegmenterConfig } from './builtin/image-segmenter.js';
export { TensorHandler } from './builtin/tensor-handler.js';
export { createBuiltinHandler } from './builtin/registry.js';
