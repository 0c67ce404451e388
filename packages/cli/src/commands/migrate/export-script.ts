import { EXPORT_SCRIPT, TORCHSERVE_DIR, onnxName } from './layout.js';

/*
 * The Python that exports TorchServe's PyTorch weights to ONNX, as TorchServe's BaseHandler loads
 * them: with a --model-file, an eager state dict loaded into that file's nn.Module class; without
 * one, TorchScript (torch.jit.load). The batch dimension is exported dynamic so Kiln can batch.
 */

/** Weights the script can load. Others (.onnx needs nothing; .so, .pt2, .safetensors) are explained in MIGRATION.md. */
export const EXPORTABLE = /\.(pt|pth|ckpt|bin)$/;

export interface ExportInput {
  serializedFile: string;
  /** The --model-file, as named in the model (`model.py`; the project keeps it under torchserve/). */
  modelFile: string | undefined;
  /** Its nn.Module class, when the file has one. */
  modelClass: string | undefined;
  /** The Kiln built-in the model is served with, which fixes the input and output shapes. */
  builtin: string | undefined;
}

/** The script's text; run from the project folder as `python torchserve/export_onnx.py`. */
export function exportScript(input: ExportInput): string {
  const weights = `${TORCHSERVE_DIR}/${input.serializedFile}`;
  const target = onnxName(input.serializedFile);
  const load =
    input.modelFile === undefined
      ? [
          '# TorchServe loaded a --serialized-file without a --model-file as TorchScript, and so does this.',
          `model = torch.jit.load(${py(weights)}, map_location="cpu")`,
        ]
      : [
          `# An eager model: its state dict needs the model class, from ${TORCHSERVE_DIR}/${input.modelFile} (--model-file).`,
          `sys.path.insert(0, ${py(TORCHSERVE_DIR)})`,
          `from ${moduleName(input.modelFile)} import ${input.modelClass ?? 'Model'}  # TODO: the nn.Module class, if not this one`,
          '',
          `model = ${input.modelClass ?? 'Model'}()  # TODO: its constructor's arguments, as the handler passed them`,
          `model.load_state_dict(torch.load(${py(weights)}, map_location="cpu"))`,
        ];
  const shaped = shapes(input.builtin);
  return `# Exports the TorchServe weights to ONNX for Kiln. Run it from the project folder:
#   python ${EXPORT_SCRIPT}
# It needs PyTorch and onnx (pip install torch onnx), and writes ${target}.
${input.modelFile === undefined ? '' : 'import sys\n\n'}import torch

${load.join('\n')}
model.eval()
${shaped.wrapper}
${shaped.example}

torch.onnx.export(
    ${shaped.wrapper === '' ? 'model' : 'Exported(model)'},
    (example,),
    ${py(target)},
    input_names=["input"],
    output_names=[${shaped.outputs.map(py).join(', ')}],
    # Dynamic dimensions: the batch (so Kiln can batch requests), and whatever else varies.
    dynamic_axes=${shaped.dynamicAxes},
    opset_version=17,
)
print("wrote ${target}")
`;
}

function shapes(builtin: string | undefined) {
  const batch = (outputs: string[]) => `{${['input', ...outputs].map((name) => `${JSON.stringify(name)}: {0: "batch"}`).join(', ')}}`;
  switch (builtin) {
    case 'image_classifier':
      return {
        wrapper: '',
        example:
          "# One RGB image of 224×224, the centre crop Kiln's image_classifier feeds the model (handler.crop).\nexample = torch.randn(1, 3, 224, 224)",
        outputs: ['scores'],
        dynamicAxes: batch(['scores']),
      };
    case 'image_segmenter':
      return {
        wrapper: `

class Exported(torch.nn.Module):
    """torchvision's segmentation models answer {"out": ...}; Kiln's image_segmenter takes the scores [N, C, H, W]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        out = self.model(images)
        return out["out"] if isinstance(out, dict) else out

`,
        example: '# One RGB image; Kiln resizes requests to the height and width exported here.\nexample = torch.randn(1, 3, 520, 520)',
        outputs: ['scores'],
        dynamicAxes: batch(['scores']),
      };
    case 'object_detector':
      return {
        wrapper: `

class Exported(torch.nn.Module):
    """One image [1, 3, H, W] in; boxes [D, 4], labels [D] and scores [D] out, as Kiln's object_detector expects."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        detections = self.model([images[0]])
        if isinstance(detections, tuple):  # a scripted torchvision detector answers (losses, detections)
            detections = detections[1]
        found = detections[0]
        return found["boxes"], found["labels"], found["scores"]

`,
        example: '# One RGB image; the height and width stay dynamic.\nexample = torch.randn(1, 3, 480, 640)',
        outputs: ['boxes', 'labels', 'scores'],
        dynamicAxes:
          '{"input": {2: "height", 3: "width"}, "boxes": {0: "detections"}, "labels": {0: "detections"}, "scores": {0: "detections"}}',
      };
    default:
      return {
        wrapper: '',
        example:
          "# One example input, with a batch of 1. TODO: the shape and dtype your handler's preprocess gave the model\n# (for several inputs, pass a tuple and name each in input_names).\nexample = torch.randn(1, 3, 224, 224)",
        outputs: ['output'],
        dynamicAxes: batch(['output']),
      };
  }
}

function moduleName(file: string): string {
  return file.split('/').pop()!.replace(/\.py$/, '');
}

/** A Python string literal. */
function py(text: string): string {
  return JSON.stringify(text);
}
