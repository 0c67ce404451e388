/**
 * `@kiln/handler-sdk/runtime` (internal, for the server and the CLI): manifests, model configs,
 * schemas and the wire types that cross to workers. Loading it loads no native code (ONNX Runtime,
 * sharp): `kiln --help` and the server's HTTP process stay light. Handler authors never need it.
 */
export { DATATYPES, ONNX_ELEMENT_TYPES, ONNX_UNSUPPORTED_ELEMENT_TYPES } from '../manifest/datatypes.js';
export type { Datatype } from '../manifest/datatypes.js';
export { BUNDLED_HANDLER_FILE, MANIFEST_PATH } from '../manifest/manifest.js';
export type { FileEntry, Manifest, Signature, TensorSpec } from '../manifest/manifest.js';
export { manifestSchema } from '../manifest/manifest-schema.js';
export { archivePathProblem, isSafeArchivePath, parseManifest, validateManifest } from '../manifest/validate-manifest.js';

export {
  EXECUTION_PROVIDERS,
  ISOLATION_MODES,
  MODEL_CONFIG_DEFAULTS,
  MODEL_CONFIG_KEYS,
  modelConfigSchema,
  renderModelConfigTable,
} from '../config/model-config-schema.js';
export type { ExecutionProvider, Isolation, ModelConfig, ModelConfigFile, ModelConfigKey } from '../config/model-config-schema.js';
export { parseModelConfig, resolveModelConfig } from '../config/parse-model-config.js';

export { BUILTIN_HANDLERS, isBuiltinHandler } from '../builtin-handlers.js';
export type { BuiltinHandlerName } from '../builtin-handlers.js';
export { SDK_VERSION } from '../version.js';
export { AJV_OPTIONS, compileSchema, describeError, errorPath, formatErrors, schemaHash } from '../schema/ajv.js';
export type { Validator } from '../schema/ajv.js';
export { deepFreeze } from '../util/deep-freeze.js';

export { DATATYPE_TO_TENSOR_TYPE, TENSOR_TYPE_TO_DATATYPE } from '../tensor/datatypes.js';
export type { TensorType } from '../tensor/datatypes.js';
export { fromHalf, toHalf } from '../tensor/float16.js';
export { shapeSize } from '../tensor/shape.js';
export {
  TENSOR_DATATYPES,
  checkAgainstSpec,
  checkNoneMissing,
  decodeClientTensor,
  elementSize,
  inputSpec,
  shapeText,
  valuesFromBytes,
  valuesFromJson,
} from '../tensor/decode.js';
export type { ClientTensor, DecodedTensor, TensorDatatype, TensorValues, TypedArray } from '../tensor/decode.js';
export { jsonValues } from '../tensor/tensor-values.js';
export type { Device } from '../handler/types.js';

export { fromWireError, isJson, renderBody, tensorsAsJson, toWireError } from './wire.js';
export type { HookName, Result, WireBody, WireError, WirePhase, WireRequest, WireResult, WireTensor } from './wire.js';
export { handlerHooks, noDescribeHook, noExplainHook } from './hooks.js';
export type { HandlerHooks } from './hooks.js';
export type { LogLevel, LogSink } from './logger.js';
export { DEFAULT_BUCKETS } from './metrics.js';
export type { MetricSample, MetricSink } from './metrics.js';
export type { PhaseTimings } from '../handler/types.js';
export { contentTypeFor } from './content-type.js';
export { MODEL_NAME_PATTERN, checkModelName } from '../manifest/model-name.js';

// The execution-provider probe runs ONNX Runtime in a child process: importing it loads no native code.
export { explain as explainProviderFailure, probeProviders, providerSummary } from '../providers/probe.js';
export type { ProviderReport, ProviderStatus } from '../providers/probe.js';
export { GPU_PROVIDERS, chooseProviders, settleProviders } from '../providers/choose.js';
export { gpuForOrdinal, listNvidiaGpus, parseGpuUsage, parseNvidiaSmi, readGpuUsage, visibleCudaDevices } from '../providers/gpus.js';
export type { GpuUsage, NvidiaGpu, NvidiaGpuReport } from '../providers/gpus.js';
