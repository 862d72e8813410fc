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
#include <node_api.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace {

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

void gemm_acc(int M, int N, int K, const float* A, ptrdiff_t a_rs, ptrdiff_t a_ks, const float* B, ptrdiff_t ldb,
              float* C, ptrdiff_t ldc) {
  const int n_tiled = N - N % kTileCols;
  for (int j = 0; j < n_tiled; j += kTileCols) {
    int m = 0;
    for (; m + kRows <= M; m += kRows) tile<kRows>(K, A + m * a_rs, a_rs, a_ks, B + j, ldb, C + m * ldc + j, ldc);
    if (m < M) tile_rows_left<kRows>(M - m, K, A + m * a_rs, a_rs, a_ks, B + j, ldb, C + m * ldc + j, ldc);
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
    gemm_acc(D, G, mb * T, X, 1, D, DZ, G, dW, G);   // dW += xᵀ · dz
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



// ---- Adam update ---------------------------------------------------------------------------
// tfjs' AdamOptimizer.applyGradients runs about ten whole-tensor ops per variable (each a
// pass over memory and an allocation); on the seed's 640 000-weight embedding that was
// ≈ 40 % of a training step. This is the same arithmetic in one pass, operation for
// operation in tfjs' order, each rounded to float32 as tfjs' float32 ops round it:
//   m' = m·β1 + g·(1-β1);  v' = v·β2 + (g·g)·(1-β2)
//   p' = ((m' / (1-β1^t)) / (sqrt(v' / (1-β2^t)) + ε))·(-lr) + p
// so the result is bit-identical (test/model/fused-adam.test.ts). fp-contract=off keeps
// the compiler from fusing a multiply and an add into one FMA, which rounds once instead
// of twice and would drift from tfjs.
struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, one_minus_acc_beta1, one_minus_acc_beta2, epsilon, neg_lr;
};

__attribute__((optimize("fp-contract=off"))) void adam_range(
    const AdamScalars& k, const float* __restrict__ p, const float* __restrict__ m, const float* __restrict__ v,
    const float* __restrict__ g, float* __restrict__ p_out, float* __restrict__ m_out, float* __restrict__ v_out, size_t i0,
    size_t i1) {
  for (size_t i = i0; i < i1; i++) {
    const float gi = g[i];
    const float mi = m[i] * k.beta1 + gi * k.one_minus_beta1;
    const float vi = v[i] * k.beta2 + (gi * gi) * k.one_minus_beta2;
    const float m_hat = mi / k.one_minus_acc_beta1;
    const float v_hat = vi / k.one_minus_acc_beta2;
    p_out[i] = (m_hat / (__builtin_sqrtf(v_hat) + k.epsilon)) * k.neg_lr + p[i];
    m_out[i] = mi;
    v_out[i] = vi;
  }
}

// ---- Measured compute peak -------------------------------------------------------------
// A register-resident FMA loop, so the bench compares the model against what this core
// really sustains instead of an assumed FLOP/cycle. kPeakAccumulators independent
// accumulators hide the FMA latency (4 cycles × 2 pipes needs ≥ 8 in flight); 12 fit in
// AVX2's 16 registers with the two operands. Each ISA is compiled with a target
// attribute whatever -march says and chosen at run time by what the CPU supports, so a
// portable build (x86-64-v3) still measures AVX2 and an AVX-512 machine measures both.
// Every accumulator starts at 0 and gets acc·one + one per iteration, so after n
// iterations each lane holds exactly n (n < 2^24): the sum of all lanes is the number of
// FMAs really executed, which the caller checks against the FLOP count it divides by.
// `one` comes from the caller at run time so the compiler cannot fold the multiply away.
constexpr int kPeakAccumulators = 12;

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iterations, float one) {
  const __m512 a = _mm512_set1_ps(one);
  __m512 acc[kPeakAccumulators];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t n = 0; n < iterations; n++)
    for (auto& v : acc) v = _mm512_fmadd_ps(v, a, a);
  double sum = 0;
  alignas(64) float lanes[16];
  for (auto& v : acc) {
    _mm512_store_ps(lanes, v);
    for (float l : lanes) sum += l;
  }
  return sum;
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iterations, float one) {
  const __m256 a = _mm256_set1_ps(one);
  __m256 acc[kPeakAccumulators];
  for (auto& v : acc) v = _mm256_setzero_ps();
  for (int64_t n = 0; n < iterations; n++)
    for (auto& v : acc) v = _mm256_fmadd_ps(v, a, a);
  double sum = 0;
  alignas(32) float lanes[8];
  for (auto& v : acc) {
    _mm256_store_ps(lanes, v);
    for (float l : lanes) sum += l;
  }
  return sum;
}
#endif

struct PeakIsa {
  const char* name;
  int lanes;
  double (*loop)(int64_t, float);
  bool (*supported)();
};

const PeakIsa kPeakIsas[] = {
#if defined(__x86_64__) || defined(__i386__)
    {"avx512", 16, fma_loop_avx512, [] { return __builtin_cpu_supports("avx512f") != 0; }},
    {"avx2", 8, fma_loop_avx2, [] { return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0; }},
#endif
};

// ---- N-API glue ----------------------------------------------------------------------

struct Arg {
  float* data = nullptr;
  size_t length = 0;
};

bool throw_error(napi_env env, const std::string& message) {
  napi_throw_type_error(env, "ERR_FUSED_LSTM", message.c_str());
  return false;
}

bool get_int(napi_env env, napi_value v, const char* name, int* out) {
  if (napi_get_value_int32(env, v, out) != napi_ok || *out < 0) return throw_error(env, std::string(name) + " must be a non-negative integer");
  return true;
}

// A Float32Array of exactly `expected` elements (or, with optional, null/undefined).
bool get_f32(napi_env env, napi_value v, const char* name, size_t expected, Arg* out, bool optional = false) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (optional && (type == napi_null || type == napi_undefined)) return true;
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  if (!is_typed) return throw_error(env, std::string(name) + " must be a Float32Array");
  napi_typedarray_type ta_type;
  void* data;
  napi_get_typedarray_info(env, v, &ta_type, &out->length, &data, nullptr, nullptr);
  if (ta_type != napi_float32_array) return throw_error(env, std::string(name) + " must be a Float32Array");
  if (out->length != expected)
    return throw_error(env, std::string(name) + " has " + std::to_string(out->length) + " elements, expected " + std::to_string(expected));
  out->data = static_cast<float*>(data);
  return true;
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
// The outputs are fresh arrays: none may overlap an input.
napi_value Adam(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value a[9];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  if (argc != 9) return throw_error(env, "adam takes 9 arguments"), nullptr;
  // The parameter's own length is the one the other arrays must have.
  Arg p;
  bool is_typed = false;
  napi_is_typedarray(env, a[0], &is_typed);
  if (!is_typed) return throw_error(env, "param must be a Float32Array"), nullptr;
  {
    napi_typedarray_type t;
    void* data;
    napi_get_typedarray_info(env, a[0], &t, &p.length, &data, nullptr, nullptr);
    if (t != napi_float32_array) return throw_error(env, "param must be a Float32Array"), nullptr;
    p.data = static_cast<float*>(data);
  }
  const size_t n = p.length;
  Arg m, v, g, p_out, m_out, v_out;
  if (!get_f32(env, a[1], "m", n, &m) || !get_f32(env, a[2], "v", n, &v) || !get_f32(env, a[3], "grad", n, &g) ||
      !get_f32(env, a[4], "paramOut", n, &p_out) || !get_f32(env, a[5], "mOut", n, &m_out) || !get_f32(env, a[6], "vOut", n, &v_out))
    return nullptr;
  napi_typedarray_type t;
  size_t count;
  void* data;
  bool scalars_typed = false;
  napi_is_typedarray(env, a[7], &scalars_typed);
  if (!scalars_typed) return throw_error(env, "scalars must be a Float64Array of 8"), nullptr;
  napi_get_typedarray_info(env, a[7], &t, &count, &data, nullptr, nullptr);
  if (t != napi_float64_array || count != 8) return throw_error(env, "scalars must be a Float64Array of 8"), nullptr;
  const double* s = static_cast<const double*>(data);
  const AdamScalars k{static_cast<float>(s[0]), static_cast<float>(s[1]), static_cast<float>(s[2]), static_cast<float>(s[3]),
                      static_cast<float>(s[4]), static_cast<float>(s[5]), static_cast<float>(s[6]), static_cast<float>(s[7])};
  int threads;
  if (!get_int(env, a[8], "threads", &threads)) return nullptr;
  // Memory-bound: a second thread helps only on large tensors (the embedding).
  threads = n < (1 << 16) ? 1 : std::max(1, threads);
  const size_t per = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; w++) {
    const size_t i0 = std::min(n, w * per), i1 = std::min(n, (w + 1) * per);
    if (i0 < i1) pool.emplace_back([&, i0, i1] { adam_range(k, p.data, m.data, v.data, g.data, p_out.data, m_out.data, v_out.data, i0, i1); });
  }
  adam_range(k, p.data, m.data, v.data, g.data, p_out.data, m_out.data, v_out.data, 0, std::min(n, per));
  for (auto& th : pool) th.join();
  return nullptr;
}

// peakIsas() → the ISAs the FMA loop can run here, widest first.
napi_value PeakIsas(napi_env env, napi_callback_info) {
  napi_value list;
  napi_create_array(env, &list);
  uint32_t n = 0;
  for (const auto& isa : kPeakIsas) {
    if (!isa.supported()) continue;
    napi_value name;
    napi_create_string_utf8(env, isa.name, NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, list, n++, name);
  }
  return list;
}

// peak(isa, iterations, threads, one) → { flop, fmas, seconds, lanes, accumulators }:
// the loop on `threads` threads at once (iterations each), timed from the first start to
// the last finish. flop is what the loop should have done (2 per lane per FMA); fmas is
// what the accumulators say it did (one = 1 makes them count).
napi_value Peak(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  if (argc != 4) return throw_error(env, "peak takes 4 arguments"), nullptr;
  char name[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, a[0], name, sizeof name, &len) != napi_ok) return throw_error(env, "isa must be a string"), nullptr;
  int threads;
  int64_t iterations;
  double one;
  if (napi_get_value_int64(env, a[1], &iterations) != napi_ok || iterations < 0 || iterations >= (1 << 24))
    return throw_error(env, "iterations must be an integer in [0, 2^24)"), nullptr;
  if (!get_int(env, a[2], "threads", &threads)) return nullptr;
  if (napi_get_value_double(env, a[3], &one) != napi_ok) return throw_error(env, "one must be a number"), nullptr;
  const PeakIsa* isa = nullptr;
  for (const auto& candidate : kPeakIsas)
    if (std::string(candidate.name) == name && candidate.supported()) isa = &candidate;
  if (isa == nullptr) return throw_error(env, std::string("FMA loop for ") + name + " is not available here"), nullptr;
  threads = std::max(1, threads);
  std::vector<double> sums(threads);
  const auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> pool;
    for (int w = 1; w < threads; w++) pool.emplace_back([&, w] { sums[w] = isa->loop(iterations, static_cast<float>(one)); });
    sums[0] = isa->loop(iterations, static_cast<float>(one));
    for (auto& t : pool) t.join();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double fmas = 0;
  for (double s : sums) fmas += s;
  const double flop = 2.0 * static_cast<double>(iterations) * kPeakAccumulators * isa->lanes * threads;
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_double(env, flop, &v);
  napi_set_named_property(env, out, "flop", v);
  napi_create_double(env, fmas, &v);
  napi_set_named_property(env, out, "fmas", v);
  napi_create_double(env, seconds, &v);
  napi_set_named_property(env, out, "seconds", v);
  napi_create_int32(env, isa->lanes, &v);
  napi_set_named_property(env, out, "lanes", v);
  napi_create_int32(env, kPeakAccumulators, &v);
  napi_set_named_property(env, out, "accumulators", v);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forward", nullptr, Forward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"backward", nullptr, Backward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"peakIsas", nullptr, PeakIsas, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"peak", nullptr, Peak, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 5, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
