import { DATATYPES } from './datatypes.js';
import { MODEL_NAME_PATTERN } from './model-name.js';

const tensorSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'datatype'],
  properties: {
    name: { type: 'string', minLength: 1 },
    datatype: { enum: DATATYPES },
    shape: { type: 'array', items: { type: 'integer', minimum: -1 } },
  },
} as const;

/** JSON Schema (draft 2020-12 subset that ajv compiles) for MAR-INF/MANIFEST.json. */
export const manifestSchema = {
  $id: 'https://kiln.dev/schemas/manifest.json',
  type: 'object',
  additionalProperties: false,
  required: ['createdOn', 'runtime', 'archiverVersion', 'sdkVersion', 'model', 'files'],
  properties: {
    createdOn: { type: 'string', pattern: '^\\d{2}/\\d{2}/\\d{4} \\d{2}:\\d{2}:\\d{2}$' },
    runtime: { const: 'node' },
    archiverVersion: { type: 'string', minLength: 1 },
    sdkVersion: { type: 'string', minLength: 1 },
    model: {
      type: 'object',
      additionalProperties: false,
      required: ['modelName', 'modelVersion', 'handler'],
      properties: {
        modelName: { type: 'string', pattern: MODEL_NAME_PATTERN },
        // A version is a URL segment, a metric label and part of log lines, as a name is: the same rule.
        modelVersion: { type: 'string', pattern: MODEL_NAME_PATTERN },
        serializedFile: { type: 'string', minLength: 1 },
        handler: { type: 'string', minLength: 1 },
        configFile: { type: 'string', minLength: 1 },
        description: { type: 'string' },
      },
    },
    signature: {
      type: 'object',
      additionalProperties: false,
      required: ['inputs', 'outputs'],
      properties: {
        inputs: { type: 'array', items: tensorSpec },
        outputs: { type: 'array', items: tensorSpec },
      },
    },
    files: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['size', 'sha256'],
        properties: {
          size: { type: 'integer', minimum: 0 },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        },
      },
    },
  },
} as const;
