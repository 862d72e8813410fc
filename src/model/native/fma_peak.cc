// The machine's compute peak, for the bench (bench/machine.ts).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "napi_args.h"

namespace textstream_native {
namespace {
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

}  // namespace

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
}  // namespace textstream_native
