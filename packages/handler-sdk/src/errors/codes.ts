import { defineErrors } from './kiln-error.js';

/** Errors raised by the SDK itself: reading manifests and model configs. */
export const sdkError = defineErrors({
  KILN_ERR_MANIFEST_INVALID: {
    status: 400,
    meaning: 'MAR-INF/MANIFEST.json is missing a field, has a wrong type, or is not JSON.',
  },
  KILN_ERR_MODEL_CONFIG_INVALID: {
    status: 400,
    meaning: 'model-config.yaml has an unknown key, a wrong type or a value out of range.',
  },
});

export type SdkErrorCode = keyof typeof sdkError.catalogue;
