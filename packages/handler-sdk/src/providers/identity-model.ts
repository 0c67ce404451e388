/** An ONNX model of one Identity node (FLOAT [1] in, the same out): what the provider probe loads. */
export const IDENTITY_MODEL_BASE64 =
  'CAgSCmtpbG4tdGVzdHM6RgoYCgF4EgV4X291dBoCbjAiCElkZW50aXR5EgR0ZXN0Wg8KAXgSCgoICAESBAoCCAFiEwoFeF9vdXQSCgoICAESBAoCCAFCBAoAEBE=';

/** Starts the probe child's stderr lines that name the provider the lines after it belong to. */
export const STDERR_MARK = '@@kiln-probe ';
