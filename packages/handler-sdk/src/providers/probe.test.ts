import { describe, expect, test } from 'vitest';
import { parseNvidiaSmi } from './gpus.js';
import { explain } from './probe.js';

describe('explain', () => {
  test.each([
    [
      'cuda',
      'Failed to load shared library',
      'libcudart.so.12: cannot open shared object file: No such file or directory',
      /^libcudart\.so\.12, which the CUDA provider needs, is missing$/,
      /CUDA 12 and cuDNN 9/,
    ],
    ['tensorrt', 'x', 'libnvinfer.so.10: cannot open shared object file', /^TensorRT's libnvinfer\.so\.10 is missing$/, /TensorRT 10/],
    [
      'cuda',
      'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library',
      // What ONNX Runtime 1.30 prints when the file is there but is not a library (here, 4 bytes).
      '[E:onnxruntime:onnxruntime-node, provider_bridge_ort.cc:2146 Create] ... FAIL : Failed to load library /ort/bin/libonnxruntime_providers_shared.so with error: /ort/bin/libonnxruntime_providers_shared.so: file too short\n',
      /^onnxruntime-node's CUDA provider is installed, but libonnxruntime_providers_shared\.so does not load \(file too short\)$/,
      /--install cuda/,
    ],
    ['cuda', 'CUDA failure 100: no CUDA-capable device is detected', '', /^no GPU is visible to CUDA/, /nvidia-smi/],
    [
      'webgpu',
      'Failed to get a WebGPU adapter: No supported adapters',
      "Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file",
      /^no Vulkan loader \(libvulkan\.so\.1 is missing\)$/,
      /libvulkan1/,
    ],
    ['webgpu', 'Failed to get a WebGPU adapter: No supported adapters', '', /^no WebGPU adapter/, /Vulkan/],
  ])('%s: %s', (name, error, stderr, reason, fix) => {
    const found = explain(name, error, stderr);
    expect(found.reason).toMatch(reason);
    expect(found.fix).toMatch(fix);
  });
});

describe('parseNvidiaSmi', () => {
  test("nvidia-smi's CSV, one GPU a line; anything else left out", () => {
    expect(
      parseNvidiaSmi('0, NVIDIA H200, 143771 MiB, 580.159.03\n1, NVIDIA H200, 143771 MiB, 580.159.03\nNo devices were found\n'),
    ).toEqual([
      { index: 0, name: 'NVIDIA H200', memoryMib: 143771, driver: '580.159.03' },
      { index: 1, name: 'NVIDIA H200', memoryMib: 143771, driver: '580.159.03' },
    ]);
  });
});
