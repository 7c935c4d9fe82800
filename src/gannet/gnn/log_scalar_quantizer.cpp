#include "gannet/gnn/log_scalar_quantizer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gannet/core/error.h"
#include "gannet/core/parallel_errors.h"

namespace gannet::gnn {

namespace {

// The floors tried below a column's largest magnitude: kFloorStep, 2 kFloorStep, ... octaves.
constexpr double kFloorStep = 0.5;
constexpr int kFloorCandidates = 64;

struct Range {
  float lo = 0.f, step = 0.f;
};

float magnitude(double lo, double step, int m) { return (float)std::exp2(lo + ((double)m - 0.5) * step); }

// (lo, step) as floats, with lo + L step >= hi in double: the largest magnitude stays within the
// top bucket, so the bound holds for it after rounding the range to floats.
Range finish_range(double lo, double hi, int levels) {
  Range r;
  r.lo = (float)lo;
  if ((double)r.lo > lo) r.lo = std::nextafter(r.lo, -std::numeric_limits<float>::infinity());
  r.step = (float)std::max(0.0, (hi - (double)r.lo) / levels);
  while ((double)r.lo + levels * (double)r.step < hi) r.step = std::nextafter(r.step, std::numeric_limits<float>::infinity());
  return r;
}

// The level of magnitude a (> 0, log2 t) under (lo, step); mag1 is level 1's magnitude.
int level_of_magnitude(double a, double t, Range r, int levels, float mag1) {
  if (t < (double)r.lo) return a < 0.5 * (double)mag1 ? 0 : 1;  // below the floor: 0 or level 1, the nearer
  if (r.step == 0.f) return 1;
  const double m = std::floor((t - (double)r.lo) / (double)r.step) + 1.0;
  return (int)std::min<double>(m, levels);
}

// Squared error of quantizing `values` (one column's sample) under r.
double squared_error(const std::vector<float>& values, const std::vector<double>& logs, Range r, int levels) {
  std::vector<float> mags((size_t)levels + 1, 0.f);
  for (int m = 1; m <= levels; ++m) mags[m] = magnitude(r.lo, r.step, m);
  double sse = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double a = std::fabs((double)values[i]);
    if (a == 0) continue;
    const double e = a - (double)mags[level_of_magnitude(a, logs[i], r, levels, mags[1])];
    sse += e * e;
  }
  return sse;
}

// Per column: the largest magnitude and the smallest nonzero one, over the listed rows.
struct ColumnExtremes {
  std::vector<double> max_abs, min_abs;  // min_abs is +inf for a column of zeros
};

ColumnExtremes column_extremes(const float* matrix, int64_t ld, int64_t dim, const int32_t* rows, int64_t n) {
  const double inf = std::numeric_limits<double>::infinity();
  ColumnExtremes ex{std::vector<double>((size_t)dim, 0.0), std::vector<double>((size_t)dim, inf)};
  ParallelErrors errors;
#pragma omp parallel
  {
    std::vector<double> mx((size_t)dim, 0.0), mn((size_t)dim, inf);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      errors.run([&] {
        const int64_t row = rows ? rows[i] : i;
        const float* x = matrix + row * ld;
        for (int64_t d = 0; d < dim; ++d) {
          GANNET_CHECK(std::isfinite(x[d]), "log scalar quantizer: row ", row, " column ", d, " is ", x[d]);
          const double a = std::fabs((double)x[d]);
          mx[d] = std::max(mx[d], a);
          if (a > 0) mn[d] = std::min(mn[d], a);
        }
      });
    }
#pragma omp critical
    for (int64_t d = 0; d < dim; ++d) {
      ex.max_abs[d] = std::max(ex.max_abs[d], mx[d]);
      ex.min_abs[d] = std::min(ex.min_abs[d], mn[d]);
    }
  }
  errors.rethrow();
  return ex;
}

// The range of one column with the least squared error on its sample.
Range best_range(double max_abs, double min_abs, const std::vector<float>& values, int levels) {
  if (max_abs == 0) return Range{0.f, 0.f};  // a column of zeros: only level 0 is used
  const double hi = std::log2(max_abs), lowest = std::log2(min_abs);
  std::vector<double> logs(values.size());
  for (size_t i = 0; i < values.size(); ++i) logs[i] = values[i] == 0.f ? 0.0 : std::log2(std::fabs((double)values[i]));
  Range best = finish_range(lowest, hi, levels);
  double best_sse = squared_error(values, logs, best, levels);
  for (int k = 1; k <= kFloorCandidates && hi - k * kFloorStep > lowest; ++k) {
    const Range r = finish_range(hi - k * kFloorStep, hi, levels);
    const double sse = squared_error(values, logs, r, levels);
    if (sse < best_sse) best_sse = sse, best = r;
  }
  return best;
}

}  // namespace

LogScalarQuantizer::LogScalarQuantizer(int bits, std::vector<float> lo, std::vector<float> step)
    : bits_(bits), lo_(std::move(lo)), step_(std::move(step)) {
  GANNET_CHECK(bits == 8 || bits == 4, "log scalar quantizer: ", bits, " bits, expected 8 or 4");
  GANNET_CHECK(!lo_.empty() && lo_.size() == step_.size(), "log scalar quantizer: ", lo_.size(), " floors and ",
               step_.size(), " steps, expected the same positive count");
  const int64_t C = table_stride();
  magnitudes_.assign((size_t)(dim() * C), 0.f);
  for (int64_t d = 0; d < dim(); ++d) {
    GANNET_CHECK(std::isfinite(lo_[d]) && std::isfinite(step_[d]) && step_[d] >= 0.f, "log scalar quantizer: column ",
                 d, " has range lo=", lo_[d], " step=", step_[d], " (expected finite, step >= 0)");
    for (int m = 1; m < C; ++m) {
      const float v = magnitude(lo_[d], step_[d], m);
      GANNET_CHECK(std::isfinite(v), "log scalar quantizer: column ", d, " range lo=", lo_[d], " step=", step_[d],
                   " overflows a float at level ", m);
      magnitudes_[d * C + m] = v;
    }
  }
}

LogScalarQuantizer LogScalarQuantizer::fit(const float* matrix, int64_t ld, int64_t dim, const int32_t* rows,
                                           int64_t n, int bits, int64_t sample_rows) {
  GANNET_CHECK(bits == 8 || bits == 4, "log scalar quantizer: ", bits, " bits, expected 8 or 4");
  GANNET_CHECK(dim >= 1 && ld >= dim && n >= 0 && sample_rows >= 1, "log scalar quantizer fit: bad arguments dim=",
               dim, " ld=", ld, " n=", n, " sample_rows=", sample_rows);
  const ColumnExtremes ex = column_extremes(matrix, ld, dim, rows, n);
  const int64_t s = std::min(n, sample_rows);
  std::vector<int64_t> sample((size_t)s);  // evenly spaced rows of the list
  for (int64_t i = 0; i < s; ++i) sample[i] = rows ? rows[i * n / s] : i * n / s;
  const int levels = (1 << (bits - 1)) - 1;
  std::vector<float> lo((size_t)dim), step((size_t)dim);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t d = 0; d < dim; ++d) {
    std::vector<float> values((size_t)s);
    for (int64_t i = 0; i < s; ++i) values[i] = matrix[sample[i] * ld + d];
    const Range r = best_range(ex.max_abs[d], ex.min_abs[d], values, levels);
    lo[d] = r.lo;
    step[d] = r.step;
  }
  return LogScalarQuantizer(bits, std::move(lo), std::move(step));
}

double LogScalarQuantizer::relative_error_bound(int64_t d) const { return std::exp2(0.5 * (double)step_[d]) - 1.0; }
double LogScalarQuantizer::floor_value(int64_t d) const { return std::exp2((double)lo_[d]); }

int LogScalarQuantizer::level_of(float x, int64_t d) const {
  GANNET_CHECK(std::isfinite(x), "log scalar quantizer: column ", d, " holds ", x);
  if (x == 0.f) return 0;
  const double a = std::fabs((double)x);
  const int m = level_of_magnitude(a, std::log2(a), Range{lo_[d], step_[d]}, levels(), magnitudes_[d * table_stride() + 1]);
  return m == 0 ? 0 : (x < 0 ? (int)table_stride() : 0) | m;  // the sign bit sits above the level bits
}

void LogScalarQuantizer::encode_row(const float* x, uint8_t* codes) const {
  const int64_t D = dim();
  if (bits_ == 8) {
    for (int64_t d = 0; d < D; ++d) codes[d] = (uint8_t)level_of(x[d], d);
    return;
  }
  for (int64_t d = 0; d < D; d += 2) {
    const int low = level_of(x[d], d), high = d + 1 < D ? level_of(x[d + 1], d + 1) : 0;
    codes[d / 2] = (uint8_t)(low | (high << 4));
  }
}

void LogScalarQuantizer::encode(const float* matrix, int64_t ld, const int32_t* rows, int64_t n, uint8_t* codes) const {
  GANNET_CHECK(n >= 0 && ld >= dim() && (n == 0 || (matrix && codes)), "log scalar quantizer encode: bad arguments n=",
               n, " ld=", ld);
  ParallelErrors errors;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    errors.run([&] { encode_row(matrix + (rows ? rows[i] : i) * ld, codes + i * row_bytes()); });
  errors.rethrow();
}

void LogScalarQuantizer::decode_row(const uint8_t* codes, float* out) const {
  const int64_t D = dim(), C = table_stride();
  for (int64_t d = 0; d < D; ++d) {
    const int code = bits_ == 8 ? codes[d] : (codes[d / 2] >> (4 * (d & 1))) & 15;
    const float mag = magnitudes_[d * C + (code & (C - 1))];
    out[d] = (code & C) ? -mag : mag;
  }
}

int64_t LogScalarQuantizer::first_bad_code(const uint8_t* codes) const {
  const int64_t D = dim(), C = table_stride();
  for (int64_t d = 0; d < D; ++d) {
    const int code = bits_ == 8 ? codes[d] : (codes[d / 2] >> (4 * (d & 1))) & 15;
    if (code == C) return d;  // sign set, level 0
  }
  if (bits_ == 4 && D % 2 == 1 && (codes[D / 2] >> 4) != 0) return D;
  return -1;
}

}  // namespace gannet::gnn
