// BiFeat's first level, for the most important nodes: log scalar quantization. A value is a sign
// and a magnitude; log2 of the magnitude is quantized uniformly over its column's range [lo, hi]
// into L = 2^(bits-1) - 1 levels and decoded at its bucket's centre in the log domain, so that the
// error is relative (feature values are heavy-tailed: a fixed absolute step would erase the small
// ones). Zero has a code of its own and is exact.
//
// Codes. bits = 8: one byte per value, bit 7 the sign, bits 0..6 the level m: 0 is zero, 1..127
// the magnitude 2^(lo + (m - 1/2) step). bits = 4: one nibble per value (bit 3 the sign, bits 0..2
// the level, 1..7), two per byte, column 2j in the low nibble; a row of odd D ends with a zero
// nibble. "Sign set, level 0" (negative zero) is never written and is refused when read.
//
// Ranges are per column, not per matrix: columns of real feature matrices differ in scale (counts
// beside normalized embeddings), and a column's own range never has wider buckets than the
// matrix's (relative MSE at 8 bits, per column vs per matrix: 2.3e-4 vs 2.9e-4 on heavy-tailed
// columns of different scales, 1.09e-4 vs 1.16e-4 on standard normal ones). hi = log2 of the column's largest magnitude over every row encoded (nothing is clipped
// from above); lo is the floor, chosen per column among hi - 1/2, hi - 1, ..., hi - 32 octaves and
// the column's smallest magnitude as the one with the least squared error on a sample of rows (a
// wide range spends levels on values too small to matter; 4 bits wants a high floor, 8 bits a low
// one). step = (hi - lo) / L. The cost of per-column ranges: a decode table of D * 2^(bits-1)
// floats (64 KiB for D = 128 at 8 bits), which the store counts.
//
// Error bound (the tests check it): a value with |x| >= 2^lo decodes with the same sign and
// |x_hat - x| / |x| <= 2^(step/2) - 1 (8 bits over 20 octaves: 5.6%); a nonzero value below the
// floor decodes to 0 or to the first level, whichever is nearer, an absolute error of at most
// 2^(lo + step/2) / 2.
#pragma once
#include <cstdint>
#include <vector>

namespace gannet::gnn {

class LogScalarQuantizer {
 public:
  // lo, step: per column (step >= 0, finite); bits 8 or 4. Throws on bad ranges, including ranges
  // whose magnitudes overflow a float.
  LogScalarQuantizer(int bits, std::vector<float> lo, std::vector<float> step);
  // Fits the ranges to rows rows[i] of `matrix` (row stride ld; rows == nullptr: rows 0 .. n-1):
  // hi over all of them (one multi-threaded pass), the floor on up to `sample_rows` of them,
  // evenly spaced. Throws naming the row and column of a non-finite value.
  static LogScalarQuantizer fit(const float* matrix, int64_t ld, int64_t dim, const int32_t* rows, int64_t n, int bits,
                                int64_t sample_rows = 16384);

  int bits() const { return bits_; }
  int64_t dim() const { return (int64_t)lo_.size(); }
  int levels() const { return (1 << (bits_ - 1)) - 1; }               // L, nonzero magnitudes
  int64_t table_stride() const { return int64_t(1) << (bits_ - 1); }  // magnitude entries per column
  int64_t row_bytes() const { return bits_ == 8 ? dim() : (dim() + 1) / 2; }
  const std::vector<float>& lo() const { return lo_; }
  const std::vector<float>& step() const { return step_; }
  // [dim, table_stride()]: entry 0 of each column is 0, entry m the magnitude of level m.
  const std::vector<float>& magnitudes() const { return magnitudes_; }
  // The bound on |x_hat - x| / |x| for values of column d at or above its floor 2^lo[d].
  double relative_error_bound(int64_t d) const;
  double floor_value(int64_t d) const;

  // codes[i * row_bytes() ..] = the codes of row rows[i] (as in fit), multi-threaded. Throws on
  // a non-finite value.
  void encode(const float* matrix, int64_t ld, const int32_t* rows, int64_t n, uint8_t* codes) const;
  void encode_row(const float* x, uint8_t* codes) const;
  // The reference decode (the gather's fused decode is gnn/bifeat_decode.h).
  void decode_row(const uint8_t* codes, float* out) const;
  // The first column whose code is malformed (negative zero, or a nonzero padding nibble: column
  // dim()), or -1 when the row is well formed.
  int64_t first_bad_code(const uint8_t* codes) const;

 private:
  int level_of(float x, int64_t d) const;
  int bits_ = 8;
  std::vector<float> lo_, step_;
  std::vector<float> magnitudes_;
};

}  // namespace gannet::gnn
