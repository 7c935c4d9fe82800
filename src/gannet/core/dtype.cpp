#include "gannet/core/dtype.h"

#include <cstring>

#include "gannet/core/error.h"

namespace gannet {

int dtype_bits(DType t) {
  switch (t) {
    case DType::f32: return 32;
    case DType::bf16: return 16;
    case DType::f16: return 16;
    case DType::i8: return 8;
    case DType::u8: return 8;
    case DType::i32: return 32;
    case DType::i64: return 64;
    case DType::i4: return 4;
  }
  return 0;
}

static const char* const kNames[] = {"f32", "bf16", "f16", "i8", "u8", "i32", "i64", "i4"};

const char* dtype_name(DType t) { return kNames[(int)t]; }

DType dtype_from_name(const std::string& name) {
  for (int i = 0; i < 8; ++i)
    if (name == kNames[i]) return (DType)i;
  fail(str("unknown dtype '", name, "'"));
}

size_t dtype_bytes(DType t, int64_t n) { return (size_t)((n * dtype_bits(t) + 7) / 8); }

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x007fffffu;
  int exp = (int)((x >> 23) & 0xff);
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0u));
  exp = exp - 127 + 15;
  if (exp >= 0x1f) return (uint16_t)(sign | 0x7c00u);  // overflow to inf
  if (exp <= 0) {                                       // subnormal or zero
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x00800000u;
    int shift = 14 - exp;
    uint32_t half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((uint32_t)exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // may carry into the exponent: fine
  return (uint16_t)(sign | r);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while (!(mant & 0x400u));
      x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace gannet
