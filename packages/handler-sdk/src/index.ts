export { KilnError, defineErrors, isKilnError } from './errors/kiln-error.js';
export type { ErrorCatalogue, ErrorFactory, ErrorSpec, KilnErrorOptions } from './errors/kiln-error.js';
export { sdkError } from './errors/codes.js';
export type { SdkErrorCode } from './errors/codes.js';

export { DATATYPES, ONNX_ELEMENT_TYPES, ONNX_UNSUPPORTED_ELEMENT_TYPES } from './manifest/datatypes.js';
export type { Datatype } from './manifest/datatypes.js';
export { BUNDLED_HANDLER_FILE, MANIFEST_PATH } from './manifest/manifest.js';
export type { FileEntry, Manifest, Signature, TensorSpec } from './manifest/manifest.js';
export { manifestSchema } from './manifest/manifest-schema.js';
export { archivePathProblem, isSafeArchivePath, parseManifest, validateManifest } from './manifest/validate-manifest.js';

export { EXECUTION_PROVIDERS, MODEL_CONFIG_DEFAULTS, modelConfigSchema } from './config/model-config-schema.js';
export type { ExecutionProvider, ModelConfig, ModelConfigFile } from './config/model-config-schema.js';
export { parseModelConfig, resolveModelConfig } from './config/parse-model-config.js';

export { BUILTIN_HANDLERS, isBuiltinHandler } from './builtin-handlers.js';
export type { BuiltinHandlerName } from './builtin-handlers.js';
export { SDK_VERSION } from './version.js';
