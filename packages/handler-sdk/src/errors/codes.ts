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
  KILN_ERR_BAD_REQUEST: { status: 400, meaning: 'The handler could not use the request body (wrong format or missing field).' },
  KILN_ERR_BAD_IMAGE: { status: 400, meaning: 'The request body is not an image in a format Kiln decodes (JPEG, PNG, WebP, GIF, TIFF).' },
  KILN_ERR_INPUT_MISMATCH: {
    status: 400,
    meaning: "A request's tensors do not match the model's signature (name, datatype or shape).",
  },
  KILN_ERR_HANDLER_FAILED: { status: 500, meaning: 'The handler threw while processing a request.' },
  KILN_ERR_INFERENCE_FAILED: { status: 500, meaning: 'The inference step failed: ONNX Runtime, or an overridden inference().' },
  KILN_ERR_HANDLER_LOAD: {
    status: 500,
    meaning: "The model could not be loaded: the handler module, its export, initialize() or the ONNX session failed.",
  },
});

export type SdkErrorCode = keyof typeof sdkError.catalogue;
