// The work around the fused LSTM in a training step that tfjs or JavaScript did in many
// passes over memory: Adam's update, the embedding gradient's scatter and the gradient
// sum of squares. Each keeps the replaced code's order of float operations, so the
// results are bit-identical (test/model/fused-adam.test.ts, native-gradients.test.ts).
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "napi_args.h"

namespace textstream_native {
namespace {

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


// ---- Embedding gradient and gradient check -----------------------------------------------
// Two passes over the embedding's [10 000, 64] gradient that ran in JavaScript: the
// scatter-add that builds it (tfjs' UnsortedSegmentSum) and the sum of squares the
// training step's finiteness check and clipping read. Both keep the JavaScript's order of
// operations exactly (rows in order; eight float64 partial sums by index mod 8), so the
// results are bit-identical to what they replace.

// out[ids[r]·inner + k] += x[r·inner + k]; rows with an id outside [0, segments) are
// dropped (TensorFlow's semantics).
void segment_sum(const float* x, const int32_t* ids, size_t rows, size_t inner, float* out, size_t segments) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t id = ids[r];
    if (id < 0 || static_cast<size_t>(id) >= segments) continue;
    float* __restrict__ dst = out + static_cast<size_t>(id) * inner;
    const float* __restrict__ src = x + r * inner;
    for (size_t k = 0; k < inner; k++) dst[k] += src[k];
  }
}

__attribute__((optimize("fp-contract=off"))) double sum_of_squares(const float* a, size_t n) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      const double v = a[i + l];
      s[l] += v * v;
    }
  for (; i < n; i++) s[0] += static_cast<double>(a[i]) * a[i];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

}  // namespace

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

// into row ids[r] of out (out is not cleared).
napi_value SegmentSum(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  if (argc != 4) return throw_error(env, "segmentSum takes 4 arguments"), nullptr;
  void *x, *ids, *out;
  size_t nx, nids, nout;
  int inner;
  if (!get_typed(env, a[0], "x", napi_float32_array, &x, &nx) || !get_typed(env, a[1], "ids", napi_int32_array, &ids, &nids) ||
      !get_int(env, a[2], "inner", &inner) || !get_typed(env, a[3], "out", napi_float32_array, &out, &nout))
    return nullptr;
  if (inner == 0 || nx != nids * inner || nout % inner != 0) return throw_error(env, "segmentSum: x, ids, inner and out disagree"), nullptr;
  segment_sum(static_cast<const float*>(x), static_cast<const int32_t*>(ids), nids, inner, static_cast<float*>(out), nout / inner);
  return nullptr;
}

// sumOfSquares(a: Float32Array) → number (float64 sums; see sum_of_squares).
napi_value SumOfSquares(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  void* data;
  size_t n;
  if (argc != 1 || !get_typed(env, a[0], "a", napi_float32_array, &data, &n)) return nullptr;
  napi_value out;
  napi_create_double(env, sum_of_squares(static_cast<const float*>(data), n), &out);
  return out;
}

}  // namespace textstream_native
