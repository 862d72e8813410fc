/**
 * Kernel fixes that make the seed model train at a usable speed on the wasm backend
 * (and, for UnsortedSegmentSum, on the pure-JS cpu backend when it is asked for).
 *
 * tfjs' kernel registry is process-wide (owned by tfjs, not by us), so registration is
 * idempotent: each replacement is installed once per backend and remembers the kernel it
 * replaced. Every replacement is checked against the stock kernel in
 * test/model/kernels.test.ts.
 *
 * Why each one exists (measured on the seed model, batch 32, seq 100):
 * - UnsortedSegmentSum: the Embedding layer's gradient (the gradient of Gather). wasm has
 *   no kernel at all; cpu's runs four tensor ops per vocabulary row (≈ 0.06 samples/s).
 * - Slice / Unpack / SplitV: the stock wasm Slice copies the WHOLE input out of the wasm
 *   heap (`readSync`) for every slice, so unstacking the [100, batch, 64] LSTM input
 *   costs O(T² · batch · 64) and dominated scoring; these read the heap in place.
 * - BatchMatMul with transposeA/transposeB: the stock wasm kernel only uses XNNPACK for
 *   the untransposed case and runs a naive triple loop otherwise; the LSTM's backward pass
 *   is all transposed products. Materialising the transpose (cheap) and calling the
 *   XNNPACK path is ≈ 4.7× faster for those products and ≈ 1.8× for a training step.
 * - Identity, and Transpose with the identity permutation (the Embedding gradient runs two
 *   on [10000, 64]): the stock wasm kernels copy; these share the input's data with a
 *   reference count, as the cpu backend's Identity does (tensors are immutable, so sharing
 *   is safe). ≈ 1 ms per training step of the seed model.
 * - GatherV2 on axis 0 (the Embedding lookup): the stock wasm kernel computes strides per
 *   element; copying whole rows is ≈ 20× faster (64 ms → 3 ms for 256 sequences of 100).
 */
import * as tf from '@tensorflow/tfjs';
import type { DataType, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BackendError, InputError, ModelError } from '../errors.js';
import { nativeGradientHelpers } from './fused-lstm.js';

type TypedArray = Float32Array | Int32Array | Uint8Array;

/** The part of the wasm backend these kernels use: tensors live in the wasm heap. */
interface HeapBackend {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): TypedArray;
  disposeData(dataId: object): boolean;
}

/** The part of the cpu backend the UnsortedSegmentSum kernel uses. */
interface ValuesBackend {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: DataType, values: TypedArray): TensorInfo;
}

const installed = new Set<string>();

/** Registers the wasm kernel fixes. Call after the wasm backend is initialised. */
export function registerWasmKernels(): void {
  if (installed.has('wasm')) return;
  installed.add('wasm');
  register({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm });
  replace('Slice', 'wasm', (stock) => (args) => sliceWasm(args, stock));
  replace('Unpack', 'wasm', (stock) => (args) => unpackWasm(args, stock));
  replace('SplitV', 'wasm', (stock) => (args) => splitVWasm(args, stock));
  replace('BatchMatMul', 'wasm', (stock) => (args) => batchMatMulWasm(args, stock));
  replace('GatherV2', 'wasm', (stock) => (args) => gatherRowsWasm(args, stock));
  replace('Identity', 'wasm', (stock) => (args) => shareWasm(args, 'x', stock));
  replace('Transpose', 'wasm', (stock) => (args) => {
    const perm = args.attrs!['perm'] as number[];
    return perm.every((axis, i) => axis === i) ? shareWasm(args, 'x', stock) : (stock(args));
  });
}

/** Registers the cpu fix (UnsortedSegmentSum only); cpu is never chosen implicitly. */
export function registerCpuKernels(): void {
  if (installed.has('cpu')) return;
  installed.add('cpu');
  replace('UnsortedSegmentSum', 'cpu', () => unsortedSegmentSumCpu);
}

function register(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) !== undefined) {
    tf.unregisterKernel(config.kernelName, config.backendName);
  }
  tf.registerKernel(config);
}

/** Replaces a stock kernel, keeping its setup/dispose hooks (they bind the wasm exports). */
function replace(kernelName: string, backendName: string, make: (stock: KernelFunc) => KernelFunc): void {
  const stock = tf.getKernel(kernelName, backendName);
  if (stock === undefined) throw new BackendError(`no stock ${kernelName} kernel on ${backendName} to replace`);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ ...stock, kernelFunc: make(stock.kernelFunc) });
}

type KernelArgs = Parameters<KernelFunc>[0];

function heap(backend: object): HeapBackend {
  return backend as BackendWasm as unknown as HeapBackend;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function input(args: KernelArgs, name: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined) throw new ModelError(`kernel input ${name} missing`);
  return t;
}

function segmentSum(x: Float32Array | Int32Array, ids: Int32Array, inner: number, out: Float32Array | Int32Array): void {
  const numSegments = out.length / inner;
  for (let row = 0; row < ids.length; row++) {
    const segment = ids[row]!;
    // TensorFlow's semantics: rows with an id outside [0, numSegments) are dropped.
    if (segment < 0 || segment >= numSegments) continue;
    const dst = segment * inner;
    const src = row * inner;
    for (let k = 0; k < inner; k++) out[dst + k]! += x[src + k]!;
  }
}

function segmentSumShape(x: TensorInfo, numSegments: number): { shape: number[]; inner: number } {
  return { shape: [numSegments, ...x.shape.slice(1)], inner: sizeOf(x.shape.slice(1)) };
}

function unsortedSegmentSumWasm(args: KernelArgs): TensorInfo {
  const backend = heap(args.backend);
  const x = input(args, 'x');
  const segmentIds = input(args, 'segmentIds');
  const numSegments = args.attrs!['numSegments'] as number;
  const { shape, inner } = segmentSumShape(x, numSegments);
  // Allocate before taking heap views: an allocation may grow (and detach) the heap.
  const out = backend.makeOutput(shape, x.dtype);
  const outVals = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  outVals.fill(0);
  const xVals = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  // The addon's scatter: the same loop in the same order, natively (bit-identical).
  const native = nativeGradientHelpers();
  if (native !== null && xVals instanceof Float32Array && outVals instanceof Float32Array && inner > 0) {
    native.segmentSum(xVals, ids, inner, outVals);
  } else {
    segmentSum(xVals, ids, inner, outVals);
  }
  return out;
}

function unsortedSegmentSumCpu(args: KernelArgs): TensorInfo {
  const backend = args.backend as ValuesBackend;
  const x = input(args, 'x');
  const segmentIds = input(args, 'segmentIds');
  const numSegments = args.attrs!['numSegments'] as number;
  const { shape, inner } = segmentSumShape(x, numSegments);
  const xVals = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = Int32Array.from(backend.readSync(segmentIds.dataId) as ArrayLike<number>);
  const outVals = x.dtype === 'int32' ? new Int32Array(sizeOf(shape)) : new Float32Array(sizeOf(shape));
  segmentSum(xVals, ids, inner, outVals);
  return backend.makeTensorInfo(shape, x.dtype, outVals);
}

/**
 * Copies the box `begin`..`begin+size` of a row-major array. Dimensions after the last
 * partial one are whole, so each step copies one contiguous run.
 */
export function copySlice(
  src: TypedArray,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  dst: TypedArray,
): void {
  const rank = shape.length;
  if (rank === 0) {
    dst[0] = src[0]!;
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k]) k--;
  const run = size[k]! * strides[k]!;
  const index = new Array<number>(k).fill(0);
  const outer = sizeOf(size.slice(0, k));
  let base = begin[k]! * strides[k]!;
  for (let d = 0; d < k; d++) base += begin[d]! * strides[d]!;
  for (let n = 0, out = 0; n < outer; n++, out += run) {
    let offset = base;
    for (let d = 0; d < k; d++) offset += index[d]! * strides[d]!;
    dst.set(src.subarray(offset, offset + run), out);
    for (let d = k - 1; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
}

function sliceInPlace(backend: HeapBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  if (sizeOf(size) === 0) return out;
  copySlice(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
  return out;
}

function sliceWasm(args: KernelArgs, stock: KernelFunc): TensorInfo {
  const x = input(args, 'x');
  if (x.dtype === 'string') return stock(args) as TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x,
    args.attrs!['begin'] as number[],
    args.attrs!['size'] as number[],
  ) as [number[], number[]];
  return sliceInPlace(heap(args.backend), x, begin, size);
}

function unpackWasm(args: KernelArgs, stock: KernelFunc): TensorInfo[] {
  const value = input(args, 'value');
  if (value.dtype === 'string') return stock(args) as TensorInfo[];
  const backend = heap(args.backend);
  let axis = args.attrs!['axis'] as number;
  if (axis < 0) axis += value.shape.length;
  const outShape = value.shape.filter((_, d) => d !== axis);
  const begin = new Array<number>(value.shape.length).fill(0);
  const size = value.shape.slice();
  size[axis] = 1;
  const outs: TensorInfo[] = [];
  for (let i = 0; i < value.shape[axis]!; i++) {
    begin[axis] = i;
    const out = sliceInPlace(backend, value, begin, size);
    outs.push({ dataId: out.dataId, dtype: out.dtype, shape: outShape });
  }
  return outs;
}

function splitVWasm(args: KernelArgs, stock: KernelFunc): TensorInfo[] {
  const x = input(args, 'x');
  if (x.dtype === 'string') return stock(args) as TensorInfo[];
  const backend = heap(args.backend);
  const axis = tf.util.parseAxisParam(args.attrs!['axis'] as number, x.shape)[0]!;
  const splitSizes = tf.backend_util.prepareSplitSize(
    x,
    args.attrs!['numOrSizeSplits'] as number[] | number,
    axis,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  return splitSizes.map((s) => {
    const size = x.shape.slice();
    size[axis] = s;
    const out = sliceInPlace(backend, x, begin, size);
    begin[axis]! += s;
    return out;
  });
}

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, d) => d);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

function batchMatMulWasm(args: KernelArgs, stock: KernelFunc): TensorInfo {
  const attrs = args.attrs!;
  if (!attrs['transposeA'] && !attrs['transposeB']) return stock(args) as TensorInfo;
  const transpose = tf.getKernel('Transpose', 'wasm').kernelFunc;
  const temporaries: TensorInfo[] = [];
  const materialise = (t: TensorInfo): TensorInfo => {
    const out = transpose({ inputs: { x: t }, attrs: { perm: swapLastTwo(t.shape.length) }, backend: args.backend }) as TensorInfo;
    temporaries.push(out);
    return out;
  };
  try {
    const a = attrs['transposeA'] ? materialise(input(args, 'a')) : input(args, 'a');
    const b = attrs['transposeB'] ? materialise(input(args, 'b')) : input(args, 'b');
    return stock({
      inputs: { a, b },
      attrs: { ...attrs, transposeA: false, transposeB: false },
      backend: args.backend,
    }) as TensorInfo;
  } finally {
    // Kernel-internal intermediates are not tracked by the engine: free them here. Freeing
    // a transposed `b` also drops the XNNPACK operator cached for it.
    for (const t of temporaries) heap(args.backend).disposeData(t.dataId);
  }
}

/** Gather along axis 0 without batch dims (an embedding lookup): one row copy per index. */
function gatherRowsWasm(args: KernelArgs, stock: KernelFunc): TensorInfo {
  const x = input(args, 'x');
  const indices = input(args, 'indices');
  const axis = tf.util.parseAxisParam(args.attrs!['axis'] as number, x.shape)[0];
  if (axis !== 0 || (args.attrs!['batchDims'] as number) !== 0 || x.dtype === 'string' || x.shape.length === 0) {
    return stock(args) as TensorInfo;
  }
  const backend = heap(args.backend);
  const rows = x.shape[0]!;
  const row = sizeOf(x.shape.slice(1));
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const ids = backend.typedArrayFromHeap(indices);
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  // Source and output share the wasm heap: copyWithin on one view of it moves each row
  // without creating a subarray object per row.
  const heapView = new (src.constructor as Float32ArrayConstructor)(src.buffer);
  const srcStart = src.byteOffset / src.BYTES_PER_ELEMENT;
  const dstStart = dst.byteOffset / dst.BYTES_PER_ELEMENT;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    // The stock kernel's check and message: an out-of-range id is an error, not a zero row.
    if (!(id >= 0 && id < rows)) throw new InputError(`GatherV2: the index value ${id} is not in [0, ${rows - 1}]`);
    heapView.copyWithin(dstStart + i * row, srcStart + id * row, srcStart + id * row + row);
  }
  return out;
}

/** The input itself as the output: one more reference to the same data, no copy. */
function shareWasm(args: KernelArgs, name: string, stock: KernelFunc): TensorInfo {
  const x = input(args, name);
  if (x.dtype === 'string') return stock(args) as TensorInfo;
  heap(args.backend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}
