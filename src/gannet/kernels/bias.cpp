#include "gannet/kernels/bias.h"

#include "gannet/core/dispatch.h"

namespace gannet::kernels {

namespace ref {
// Single float operations are exact-rounded already; only the column sums use double.

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += bias[c];
}

void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += dy[r * cols + c];
    dbias[c] = (float)(dbias[c] + s);
  }
}

void add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void scale_inplace(float* y, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}
}  // namespace ref

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) {
  GANNET_DISPATCH(add_bias, y, bias, rows, cols);
}
void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols) {
  GANNET_DISPATCH(bias_grad, dy, dbias, rows, cols);
}
void add(const float* a, const float* b, float* y, int64_t n) { GANNET_DISPATCH(add, a, b, y, n); }
void add_inplace(float* y, const float* x, int64_t n) { GANNET_DISPATCH(add_inplace, y, x, n); }
void scale_inplace(float* y, float s, int64_t n) { GANNET_DISPATCH(scale_inplace, y, s, n); }

}  // namespace gannet::kernels
