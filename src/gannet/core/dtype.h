// Element types a Tensor can hold. int4 is packed two per byte (low nibble first).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace gannet {

enum class DType : uint8_t { f32, bf16, f16, i8, u8, i32, i64, i4 };
enum class Device : uint8_t { cpu, cuda };

// Bits per element (4 for packed int4).
int dtype_bits(DType t);
const char* dtype_name(DType t);
// Parses a name as written by dtype_name; throws on an unknown name.
DType dtype_from_name(const std::string& name);
// Bytes needed for n elements (rounded up for int4).
size_t dtype_bytes(DType t, int64_t n);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::i8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }

// bf16 and f16 conversions (round to nearest even).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

}  // namespace gannet
