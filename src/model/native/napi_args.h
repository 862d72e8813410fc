// N-API argument helpers shared by the addon's source files, and the entry points each
// file defines (registered together in fused_lstm.cc's Init).
#pragma once
#include <node_api.h>

#include <cstddef>
#include <string>

namespace textstream_native {

struct Arg {
  float* data = nullptr;
  size_t length = 0;
};

inline bool throw_error(napi_env env, const std::string& message) {
  napi_throw_type_error(env, "ERR_FUSED_LSTM", message.c_str());
  return false;
}

inline bool get_int(napi_env env, napi_value v, const char* name, int* out) {
  if (napi_get_value_int32(env, v, out) != napi_ok || *out < 0) return throw_error(env, std::string(name) + " must be a non-negative integer");
  return true;
}

// A Float32Array of exactly `expected` elements (or, with optional, null/undefined).
inline bool get_f32(napi_env env, napi_value v, const char* name, size_t expected, Arg* out, bool optional = false) {
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


// A typed array's data of the given type, or a thrown error.
inline bool get_typed(napi_env env, napi_value v, const char* name, napi_typedarray_type want, void** data, size_t* length) {
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  napi_typedarray_type t;
  if (is_typed) napi_get_typedarray_info(env, v, &t, length, data, nullptr, nullptr);
  if (!is_typed || t != want) return throw_error(env, std::string(name) + (want == napi_int32_array ? " must be an Int32Array" : " must be a Float32Array"));
  return true;
}

// segmentSum(x: Float32Array, ids: Int32Array, inner, out: Float32Array): adds row r of x

// training_kernels.cc
napi_value Adam(napi_env env, napi_callback_info info);
napi_value SegmentSum(napi_env env, napi_callback_info info);
napi_value SumOfSquares(napi_env env, napi_callback_info info);
// fma_peak.cc
napi_value PeakIsas(napi_env env, napi_callback_info info);
napi_value Peak(napi_env env, napi_callback_info info);

}  // namespace textstream_native
