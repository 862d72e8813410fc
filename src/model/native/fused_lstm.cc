// The seed LSTM's forward pass over all timesteps and its backward pass (BPTT) as two
// calls, for src/model/fused-lstm.ts. tfjs-layers runs the LSTM one small op per
// timestep (thousands of ops per batch), so per-op overhead, not arithmetic, bounds it;
// here each call is a few register-blocked matrix products and one fused pointwise loop
// per timestep, spread over threads by sample.
//
// Semantics are Keras' / tf.layers.lstm's with activation tanh and recurrent activation
// sigmoid, no masking, return_sequences false, zero initial state:
//   z_t = x_t·W + h_{t-1}·R + b        W: [D, 4U], R: [U, 4U], b: [4U], gate order i f c o
//   i, f, o = sigmoid(z_i, z_f, z_o); g = tanh(z_c)
//   c_t = f·c_{t-1} + i·g;  h_t = o·tanh(c_t)
// All arrays are row-major float32 owned by the caller (JavaScript); nothing is kept
// between calls, so the addon has no state to leak.
//
// The other entry points (Adam, the embedding gradient, the FMA peak loop) live in
// training_kernels.cc and fma_peak.cc; Init below registers them all.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "napi_args.h"

namespace {
using namespace textstream_native;


// One vector register of floats: 16 lanes with AVX-512, 8 with AVX2, 4 otherwise (SSE,
// NEON). gcc's vector extensions compile the same code for each; a vector wider than the
// target's registers would be split and passed through memory (measured 40× slower), so
// the width follows the target. aligned(4) lets it load from any float address.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float vf __attribute__((vector_size(kLanes * 4), aligned(4)));
typedef int32_t vi __attribute__((vector_size(kLanes * 4), aligned(4)));
// Register tile of the matrix products: kRows rows × 4 vectors of columns, accumulators
// held in registers over the whole inner loop (AVX-512 has 32 registers: 6×4 + 4 loads;
// AVX2 has 16: 3×4 + 4). Measured on the seed LSTM: 6 rows vs 4 is ≈ 15 % faster.
#if defined(__AVX512F__)
constexpr int kRows = 6;
#else
constexpr int kRows = 3;
#endif
constexpr int kTileCols = 4 * kLanes;

inline vf load(const float* p) { return *reinterpret_cast<const vf*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vf*>(p) = v; }
inline vf splat(float x) { return vf{} + x; }

// exp(x) with Cephes' single-precision polynomial (≈ 1 ulp on [-87, 88]), written once for
// floats and for vectors so the vector body and the scalar tail agree bit for bit
// in spirit (same formula), and vectorised so the 5·U transcendentals per step don't
// dominate the matrix products. NaN stays NaN (checked by the NaN-loss guard upstream).
// Round to nearest with the 1.5·2^23 trick (exact for |x| < 2^22). Without -ffast-math
// (never use it here) the compiler may not fold (x + m) - m back to x.
template <class F>
inline F round_nearest(F x) { return (x + 12582912.0f) - 12582912.0f; }
inline int32_t to_int(float x) { return static_cast<int32_t>(x); }
inline vi to_int(vf x) { return __builtin_convertvector(x, vi); }
inline float bits_to_float(int32_t x) { return std::bit_cast<float>(x); }
inline vf bits_to_float(vi x) { return (vf)x; }  // a vector cast reinterprets the bits
inline float clamp(float x, float lo, float hi) { return x > hi ? hi : (x < lo ? lo : x); }
inline vf clamp(vf x, float lo, float hi) {
  x = x > hi ? splat(hi) : x;
  return x < lo ? splat(lo) : x;
}
inline float keep_nan(float x, float y) { return x != x ? x : y; }
inline vf keep_nan(vf x, vf y) { return x != x ? x : y; }

template <class F>
inline F exp_approx(F x) {
  const F in = x;
  x = clamp(x, -87.33654f, 88.37626f);
  const F n = round_nearest(x * 1.44269504088896341f);
  x = x - n * 0.693359375f + n * 2.12194440e-4f;
  F p = x * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * x + 8.3334519073e-3f;
  p = p * x + 4.1665795894e-2f;
  p = p * x + 1.6666665459e-1f;
  p = p * x + 5.0000001201e-1f;
  p = p * x * x + x + 1.0f;
  // 2^n built in the exponent bits; n ∈ [-126, 127] after the clamp.
  const F scale = bits_to_float((to_int(n) + 127) << 23);
  return keep_nan(in, p * scale);
}
template <class F>
inline F sigmoid(F x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float select_small(float small_abs, float a, float b) { return small_abs < 0.625f ? a : b; }
inline vf select_small(vf small_abs, vf a, vf b) { return small_abs < 0.625f ? a : b; }
inline float abs_value(float x) { return x < 0.0f ? -x : x; }
inline vf abs_value(vf x) { return x < 0.0f ? -x : x; }
// Cephes' tanhf: an odd polynomial near 0 (where 1 - 2/(e^2x + 1) would lose relative
// precision, and BPTT through saturated steps amplifies it), the exp form elsewhere.
template <class F>
inline F tanh_approx(F x) {
  const F z = x * x;
  F p = z * -5.70498872745e-3f + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const F small = p * z * x + x;
  const F large = 1.0f - 2.0f / (exp_approx(x * 2.0f) + 1.0f);
  return select_small(abs_value(x), small, large);
}

// C[M×N] += A[M×K]·B[K×N], where A's element (m, k) is A[m·a_rs + k·a_ks] (so A may be
// read transposed), B is row-major with leading dimension ldb, C with ldc. The inner
// tile keeps MR × kTileCols accumulators in registers across the whole K loop.
template <int MR>
inline void tile(int K, const float* A, ptrdiff_t a_rs, ptrdiff_t a_ks, const float* B, ptrdiff_t ldb, float* C,
                 ptrdiff_t ldc) {
  vf acc[MR][4];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < 4; v++) acc[i][v] = load(C + i * ldc + v * kLanes);
  for (int k = 0; k < K; k++) {
    const float* b = B + k * ldb;
    const vf b0 = load(b), b1 = load(b + kLanes), b2 = load(b + 2 * kLanes), b3 = load(b + 3 * kLanes);
    for (int i = 0; i < MR; i++) {
      const float a = A[i * a_rs + k * a_ks];
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
      acc[i][2] += a * b2;
      acc[i][3] += a * b3;
    }
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < 4; v++) store(C + i * ldc + v * kLanes, acc[i][v]);
}

template <int MR>
inline void tile_rows_left(int rows, int K, const float* A, ptrdiff_t a_rs, ptrdiff_t a_ks, const float* B, ptrdiff_t ldb,
                           float* C, ptrdiff_t ldc) {
  if constexpr (MR > 1) {
    if (rows == MR - 1) return tile<MR - 1>(K, A, a_rs, a_ks, B, ldb, C, ldc);
    tile_rows_left<MR - 1>(rows, K, A, a_rs, a_ks, B, ldb, C, ldc);
  }
}

// Products with many row tiles first copy each column tile of B into a contiguous
// [K, kTileCols] buffer: B's rows are 4U floats apart (1 KB for the seed), so a column
// tile's K rows fall into a few L1 sets and evict each other before the next row tile
// reuses them (measured: dW = xᵀ·dz took twice the time of dx = dz·Wᵀ, the same FLOPs).
// The sums are formed in the same order, so packing changes no result.
void gemm_acc(int M, int N, int K, const float* A, ptrdiff_t a_rs, ptrdiff_t a_ks, const float* B, ptrdiff_t ldb,
              float* C, ptrdiff_t ldc) {
  const int n_tiled = N - N % kTileCols;
  const bool pack = ldb != kTileCols && M >= 4 * kRows;
  thread_local std::vector<float> packed;
  if (pack && packed.size() < static_cast<size_t>(K) * kTileCols) packed.resize(static_cast<size_t>(K) * kTileCols);
  for (int j = 0; j < n_tiled; j += kTileCols) {
    const float* b = B + j;
    ptrdiff_t ld = ldb;
    if (pack) {
      for (int k = 0; k < K; k++) std::memcpy(packed.data() + static_cast<ptrdiff_t>(k) * kTileCols, B + k * ldb + j, sizeof(float) * kTileCols);
      b = packed.data();
      ld = kTileCols;
    }
    int m = 0;
    for (; m + kRows <= M; m += kRows) tile<kRows>(K, A + m * a_rs, a_rs, a_ks, b, ld, C + m * ldc + j, ldc);
    if (m < M) tile_rows_left<kRows>(M - m, K, A + m * a_rs, a_rs, a_ks, b, ld, C + m * ldc + j, ldc);
  }
  if (n_tiled == N) return;
  // Columns past the last whole tile (small test networks only).
  for (int m = 0; m < M; m++)
    for (int k = 0; k < K; k++) {
      const float a = A[m * a_rs + k * a_ks];
      const float* b = B + k * ldb;
      float* c = C + m * ldc;
      for (int j = n_tiled; j < N; j++) c[j] += a * b[j];
    }
}

struct Dims {
  int B, T, D, U;
  int G() const { return 4 * U; }
};

// Applies vec(j) to [0, n) in whole vectors, then scalar(j) to the tail.
template <class VecBody, class ScalarBody>
inline void for_lanes(int n, VecBody vec, ScalarBody scalar) {
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) vec(j);
  for (; j < n; j++) scalar(j);
}

// Samples are processed in blocks so an inference scratch of block×T×4U floats suffices.
constexpr int kBlock = 32;
// Rows of dz per chunk of the weight-gradient products (see backward_range).
constexpr int kChunkRows = 128;

// Forward over samples [b0, b1). Training (gates != nullptr): the post-activation gates
// [B, T, 4U], cells c_t and hiddens h_t [B, T, U] are kept for the backward pass.
void forward_range(const Dims& d, const float* x, const float* W, const float* R, const float* bias, float* h_out,
                   float* gates, float* cells, float* hiddens, int b0, int b1) {
  const int T = d.T, D = d.D, U = d.U, G = d.G();
  const bool training = gates != nullptr;
  std::vector<float> z_scratch, c_scratch, h_scratch;
  if (!training) {
    z_scratch.resize(static_cast<size_t>(std::min(kBlock, b1 - b0)) * T * G);
    c_scratch.resize(static_cast<size_t>(kBlock) * U);
    h_scratch.resize(static_cast<size_t>(kBlock) * U);
  }
  for (int s0 = b0; s0 < b1; s0 += kBlock) {
    const int mb = std::min(kBlock, b1 - s0);
    float* Z = training ? gates + static_cast<ptrdiff_t>(s0) * T * G : z_scratch.data();
    // x·W + b for every timestep of the block at once: one large product.
    for (int r = 0; r < mb * T; r++) std::memcpy(Z + static_cast<ptrdiff_t>(r) * G, bias, sizeof(float) * G);
    gemm_acc(mb * T, G, D, x + static_cast<ptrdiff_t>(s0) * T * D, D, 1, W, G, Z, G);
    for (int t = 0; t < T; t++) {
      // Row s of timestep t in Z, and where h_{t-1} / c_{t-1} / h_t / c_t live.
      float* z_t = Z + static_cast<ptrdiff_t>(t) * G;
      const ptrdiff_t z_rs = static_cast<ptrdiff_t>(T) * G;
      float* h_t = training ? hiddens + (static_cast<ptrdiff_t>(s0) * T + t) * U : h_scratch.data();
      float* c_t = training ? cells + (static_cast<ptrdiff_t>(s0) * T + t) * U : c_scratch.data();
      const ptrdiff_t state_rs = training ? static_cast<ptrdiff_t>(T) * U : U;
      const float* h_prev = training ? h_t - U : h_scratch.data();
      const float* c_prev = training ? c_t - U : c_scratch.data();
      if (t > 0) gemm_acc(mb, G, U, h_prev, state_rs, 1, R, G, z_t, z_rs);
      for (int s = 0; s < mb; s++) {
        float* z = z_t + s * z_rs;
        float* h = h_t + s * state_rs;
        float* c = c_t + s * state_rs;
        const float* cp = c_prev + s * state_rs;
        const bool first = t == 0;
        for_lanes(
            U,
            [&](int j) {
              const vf i = sigmoid(load(z + j)), f = sigmoid(load(z + U + j));
              const vf g = tanh_approx(load(z + 2 * U + j)), o = sigmoid(load(z + 3 * U + j));
              const vf cv = (first ? vf{} : f * load(cp + j)) + i * g;
              store(c + j, cv);
              store(h + j, o * tanh_approx(cv));
              if (training) {
                store(z + j, i);
                store(z + U + j, f);
                store(z + 2 * U + j, g);
                store(z + 3 * U + j, o);
              }
            },
            [&](int j) {
              const float i = sigmoid(z[j]), f = sigmoid(z[U + j]), g = tanh_approx(z[2 * U + j]),
                          o = sigmoid(z[3 * U + j]);
              const float cv = (first ? 0.0f : f * cp[j]) + i * g;
              c[j] = cv;
              h[j] = o * tanh_approx(cv);
              if (training) {
                z[j] = i;
                z[U + j] = f;
                z[2 * U + j] = g;
                z[3 * U + j] = o;
              }
            });
      }
    }
    // h_{T-1} of each sample.
    for (int s = 0; s < mb; s++) {
      const float* h_last = training ? hiddens + ((static_cast<ptrdiff_t>(s0) + s) * T + T - 1) * U : h_scratch.data() + s * U;
      std::memcpy(h_out + static_cast<ptrdiff_t>(s0 + s) * U, h_last, sizeof(float) * U);
    }
  }
}

// Backward over samples [b0, b1): overwrites the gates of those samples with dz, writes dx
// rows, and adds into dW, dR, db (per thread; summed by the caller).
void backward_range(const Dims& d, const float* x, const float* WT, const float* RT, float* gates, const float* cells,
                    const float* hiddens, const float* dh_in, float* dx, float* dW, float* dR, float* db, int b0, int b1) {
  const int T = d.T, D = d.D, U = d.U, G = d.G();
  std::vector<float> dh(static_cast<size_t>(kBlock) * U), dc(static_cast<size_t>(kBlock) * U);
  for (int s0 = b0; s0 < b1; s0 += kBlock) {
    const int mb = std::min(kBlock, b1 - s0);
    float* DZ = gates + static_cast<ptrdiff_t>(s0) * T * G;
    const ptrdiff_t z_rs = static_cast<ptrdiff_t>(T) * G;
    std::memcpy(dh.data(), dh_in + static_cast<ptrdiff_t>(s0) * U, sizeof(float) * mb * U);
    std::fill(dc.begin(), dc.end(), 0.0f);
    for (int t = T - 1; t >= 0; t--) {
      for (int s = 0; s < mb; s++) {
        float* a = DZ + s * z_rs + static_cast<ptrdiff_t>(t) * G;  // i f g o in, dz out
        const float* c = cells + ((static_cast<ptrdiff_t>(s0) + s) * T + t) * U;
        const float* cp = c - U;
        const bool first = t == 0;
        float* dhs = dh.data() + s * U;
        float* dcs = dc.data() + s * U;
        for_lanes(
            U,
            [&](int j) {
              const vf i = load(a + j), f = load(a + U + j), g = load(a + 2 * U + j), o = load(a + 3 * U + j);
              const vf tc = tanh_approx(load(c + j));
              const vf dhv = load(dhs + j);
              const vf dcv = load(dcs + j) + dhv * o * (1.0f - tc * tc);
              const vf cpv = first ? vf{} : load(cp + j);
              store(a + j, dcv * g * i * (1.0f - i));
              store(a + U + j, dcv * cpv * f * (1.0f - f));
              store(a + 2 * U + j, dcv * i * (1.0f - g * g));
              store(a + 3 * U + j, dhv * tc * o * (1.0f - o));
              store(dcs + j, dcv * f);
            },
            [&](int j) {
              const float i = a[j], f = a[U + j], g = a[2 * U + j], o = a[3 * U + j];
              const float tc = tanh_approx(c[j]);
              const float dcv = dcs[j] + dhs[j] * o * (1.0f - tc * tc);
              const float cpv = first ? 0.0f : cp[j];
              a[j] = dcv * g * i * (1.0f - i);
              a[U + j] = dcv * cpv * f * (1.0f - f);
              a[2 * U + j] = dcv * i * (1.0f - g * g);
              a[3 * U + j] = dhs[j] * tc * o * (1.0f - o);
              dcs[j] = dcv * f;
            });
      }
      if (t > 0) {
        // dh_{t-1} = dz_t · Rᵀ
        std::fill(dh.begin(), dh.begin() + mb * U, 0.0f);
        gemm_acc(mb, U, G, DZ + static_cast<ptrdiff_t>(t) * G, z_rs, 1, RT, U, dh.data(), U);
      }
    }
    const float* X = x + static_cast<ptrdiff_t>(s0) * T * D;
    float* dX = dx + static_cast<ptrdiff_t>(s0) * T * D;
    std::fill(dX, dX + static_cast<ptrdiff_t>(mb) * T * D, 0.0f);
    gemm_acc(mb * T, D, G, DZ, G, 1, WT, D, dX, D);  // dx = dz · Wᵀ
    // dW += xᵀ · dz, over K in chunks: each register tile streams its chunk of dz, and a
    // chunk of kChunkRows rows (128 KB) stays in L2 for all the tiles, where the whole
    // block's dz (1.6 MB) did not (measured: this product took 2× the dx product's time).
    for (int k0 = 0; k0 < mb * T; k0 += kChunkRows) {
      const int kc = std::min(kChunkRows, mb * T - k0);
      gemm_acc(D, G, kc, X + static_cast<ptrdiff_t>(k0) * D, 1, D, DZ + static_cast<ptrdiff_t>(k0) * G, G, dW, G);
    }
    for (int s = 0; s < mb; s++) {                   // dR += h_{t-1}ᵀ · dz_t, t ≥ 1
      const float* H = hiddens + (static_cast<ptrdiff_t>(s0) + s) * T * U;
      if (T > 1) gemm_acc(U, G, T - 1, H, 1, U, DZ + s * z_rs + G, G, dR, G);
    }
    for (int r = 0; r < mb * T; r++) {
      const float* z = DZ + static_cast<ptrdiff_t>(r) * G;
      for (int j = 0; j < G; j++) db[j] += z[j];
    }
  }
}

// Runs body(b0, b1, worker) on up to `threads` contiguous sample ranges, the first on the
// calling thread. Ranges are whole multiples of 4 samples where possible (the tile height).
template <class Body>
void parallel_samples(int B, int threads, Body body) {
  threads = std::max(1, std::min(threads, (B + 3) / 4));
  if (threads == 1) {
    body(0, B, 0);
    return;
  }
  const int per = ((B + threads - 1) / threads + 3) / 4 * 4;
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; w++) {
    const int b0 = std::min(B, w * per), b1 = std::min(B, (w + 1) * per);
    if (b0 < b1) pool.emplace_back(body, b0, b1, w);
  }
  body(0, std::min(B, per), 0);
  for (auto& t : pool) t.join();
}

void transpose(const float* a, int rows, int cols, float* out) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
}



// forward(x, W, R, bias, B, T, D, U, threads, hOut, gates|null, cells|null, hiddens|null)
napi_value Forward(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value a[13];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  if (argc != 13) return throw_error(env, "forward takes 13 arguments"), nullptr;
  Dims d{};
  int threads;
  if (!get_int(env, a[4], "B", &d.B) || !get_int(env, a[5], "T", &d.T) || !get_int(env, a[6], "D", &d.D) ||
      !get_int(env, a[7], "U", &d.U) || !get_int(env, a[8], "threads", &threads))
    return nullptr;
  const size_t B = d.B, T = d.T, D = d.D, U = d.U, G = 4 * U;
  Arg x, W, R, bias, h, gates, cells, hiddens;
  if (!get_f32(env, a[0], "x", B * T * D, &x) || !get_f32(env, a[1], "kernel", D * G, &W) ||
      !get_f32(env, a[2], "recurrentKernel", U * G, &R) || !get_f32(env, a[3], "bias", G, &bias) ||
      !get_f32(env, a[9], "h", B * U, &h) || !get_f32(env, a[10], "gates", B * T * G, &gates, true) ||
      !get_f32(env, a[11], "cells", B * T * U, &cells, true) || !get_f32(env, a[12], "hiddens", B * T * U, &hiddens, true))
    return nullptr;
  if ((gates.data == nullptr) != (cells.data == nullptr) || (gates.data == nullptr) != (hiddens.data == nullptr))
    return throw_error(env, "gates, cells and hiddens are given together (training) or not at all"), nullptr;
  if (d.T == 0) return throw_error(env, "T must be positive"), nullptr;
  parallel_samples(d.B, threads, [&](int b0, int b1, int) {
    forward_range(d, x.data, W.data, R.data, bias.data, h.data, gates.data, cells.data, hiddens.data, b0, b1);
  });
  return nullptr;
}

// backward(x, W, R, B, T, D, U, threads, gates, cells, hiddens, dh, dx, dW, dR, db)
// `gates` is consumed (overwritten with dz).
napi_value Backward(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value a[16];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  if (argc != 16) return throw_error(env, "backward takes 16 arguments"), nullptr;
  Dims d{};
  int threads;
  if (!get_int(env, a[3], "B", &d.B) || !get_int(env, a[4], "T", &d.T) || !get_int(env, a[5], "D", &d.D) ||
      !get_int(env, a[6], "U", &d.U) || !get_int(env, a[7], "threads", &threads))
    return nullptr;
  const size_t B = d.B, T = d.T, D = d.D, U = d.U, G = 4 * U;
  Arg x, W, R, gates, cells, hiddens, dh, dx, dW, dR, db;
  if (!get_f32(env, a[0], "x", B * T * D, &x) || !get_f32(env, a[1], "kernel", D * G, &W) ||
      !get_f32(env, a[2], "recurrentKernel", U * G, &R) || !get_f32(env, a[8], "gates", B * T * G, &gates) ||
      !get_f32(env, a[9], "cells", B * T * U, &cells) || !get_f32(env, a[10], "hiddens", B * T * U, &hiddens) ||
      !get_f32(env, a[11], "dh", B * U, &dh) || !get_f32(env, a[12], "dx", B * T * D, &dx) ||
      !get_f32(env, a[13], "dKernel", D * G, &dW) || !get_f32(env, a[14], "dRecurrentKernel", U * G, &dR) ||
      !get_f32(env, a[15], "dBias", G, &db))
    return nullptr;
  if (d.T == 0) return throw_error(env, "T must be positive"), nullptr;
  std::vector<float> WT(D * G), RT(U * G);
  transpose(W.data, d.D, d.G(), WT.data());
  transpose(R.data, d.U, d.G(), RT.data());
  const int workers = std::max(1, threads);
  // Worker 0 adds straight into the outputs; the others into their own, summed after.
  std::vector<std::vector<float>> partial(workers - 1, std::vector<float>(D * G + U * G + G));
  std::fill(dW.data, dW.data + D * G, 0.0f);
  std::fill(dR.data, dR.data + U * G, 0.0f);
  std::fill(db.data, db.data + G, 0.0f);
  parallel_samples(d.B, workers, [&](int b0, int b1, int w) {
    float* gw = w == 0 ? dW.data : partial[w - 1].data();
    float* gr = w == 0 ? dR.data : gw + D * G;
    float* gb = w == 0 ? db.data : gr + U * G;
    backward_range(d, x.data, WT.data(), RT.data(), gates.data, cells.data, hiddens.data, dh.data, dx.data, gw, gr, gb, b0, b1);
  });
  for (const auto& p : partial) {
    for (size_t i = 0; i < D * G; i++) dW.data[i] += p[i];
    for (size_t i = 0; i < U * G; i++) dR.data[i] += p[D * G + i];
    for (size_t i = 0; i < G; i++) db.data[i] += p[D * G + U * G + i];
  }
  return nullptr;
}

// adam(param, m, v, grad, paramOut, mOut, vOut, scalars: Float64Array(8), threads): writes
// the updated parameter and moments (AdamScalars' order; each scalar a float32 value).
napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forward", nullptr, Forward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"backward", nullptr, Backward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"peakIsas", nullptr, PeakIsas, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"peak", nullptr, Peak, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"segmentSum", nullptr, SegmentSum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumOfSquares", nullptr, SumOfSquares, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
