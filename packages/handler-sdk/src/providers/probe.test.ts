import { describe, expect, test } from 'vitest';
import { gpuForOrdinal, parseGpuUsage, parseNvidiaSmi, visibleCudaDevices, type GpuUsage } from './gpus.js';
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
    [
      'webgpu',
      'Failed to get a WebGPU adapter: No supported adapters',
      // Dawn on Debian 12's lavapipe (Mesa 22.3), as the probe child's stderr has it.
      'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\n - While initializing adapter (backend=BackendType::Vulkan)\n    at InitializeImpl (/build/Release/_deps/dawn-src/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:253)\n',
      /^no WebGPU adapter: Vulkan found a driver that WebGPU cannot use \(Vulkan shaderUniform\*ArrayDynamicIndexing required\.\)$/,
      /Mesa 24 or later/,
    ],
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

describe('parseGpuUsage', () => {
  test('utilization and memory per GPU, without units; a field nvidia-smi cannot give is undefined', () => {
    expect(
      parseGpuUsage('0, GPU-5f1c2a, 35, 12, 4023, 143771\n1, GPU-77aa01, [N/A], [Not Supported], 0, 143771\nNo devices were found\n'),
    ).toEqual([
      { index: 0, uuid: 'GPU-5f1c2a', utilizationGpu: 35, utilizationMemory: 12, memoryUsedMib: 4023, memoryTotalMib: 143771 },
      { index: 1, uuid: 'GPU-77aa01', utilizationGpu: undefined, utilizationMemory: undefined, memoryUsedMib: 0, memoryTotalMib: 143771 },
    ]);
  });
});

describe('CUDA_VISIBLE_DEVICES', () => {
  test('read as CUDA reads it: indices or UUIDs, up to the first entry that names no GPU', () => {
    expect(visibleCudaDevices({})).toBeUndefined();
    expect(visibleCudaDevices({ CUDA_VISIBLE_DEVICES: '2,3' })).toEqual(['2', '3']);
    expect(visibleCudaDevices({ CUDA_VISIBLE_DEVICES: ' 1, GPU-5f1c ' })).toEqual(['1', 'GPU-5f1c']);
    expect(visibleCudaDevices({ CUDA_VISIBLE_DEVICES: '0,-1,2' })).toEqual(['0']);
    for (const none of ['', '-1', 'NoDevFiles']) expect(visibleCudaDevices({ CUDA_VISIBLE_DEVICES: none })).toEqual([]);
  });

  test("a CUDA ordinal is the GPU its entry names, by nvidia-smi's index or by UUID", () => {
    const gpu = (index: number, uuid: string): GpuUsage => ({
      index,
      uuid,
      utilizationGpu: index,
      utilizationMemory: 0,
      memoryUsedMib: 0,
      memoryTotalMib: 1,
    });
    const gpus = [gpu(0, 'GPU-aaaa1111'), gpu(1, 'GPU-bbbb2222'), gpu(2, 'GPU-cccc3333'), gpu(3, 'GPU-dddd4444')];
    expect(gpuForOrdinal(gpus, 1, undefined)?.index).toBe(1);
    expect(gpuForOrdinal(gpus, 0, ['2', '3'])?.index).toBe(2);
    expect(gpuForOrdinal(gpus, 1, ['2', '3'])?.index).toBe(3);
    expect(gpuForOrdinal(gpus, 2, ['2', '3'])).toBeUndefined();
    expect(gpuForOrdinal(gpus, 0, ['GPU-DDDD'])?.index).toBe(3);
  });
});
