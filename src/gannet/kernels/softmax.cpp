#include "gannet/kernels/softmax.h"

#include <cmath>

#include "gannet/core/dispatch.h"

namespace gannet::kernels {

namespace ref {
// The reference computes in double, straight from the definition.

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double m = -INFINITY;
    for (int64_t c = 0; c < cols; ++c) m = std::fmax(m, (double)xr[c]);
    if (m == -INFINITY) {  // fully masked row
      for (int64_t c = 0; c < cols; ++c) yr[c] = 0.f;
      continue;
    }
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp((double)xr[c] - m);
    for (int64_t c = 0; c < cols; ++c) yr[c] = (float)(std::exp((double)xr[c] - m) / s);
  }
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = y + r * cols;
    const float* dyr = dy + r * cols;
    float* dxr = dx + r * cols;
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += (double)dyr[c] * yr[c];
    for (int64_t c = 0; c < cols; ++c) dxr[c] = (float)((double)yr[c] * ((double)dyr[c] - dot));
  }
}
}  // namespace ref

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols) {
  GANNET_DISPATCH(softmax_forward, x, y, rows, cols);
}
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
  GANNET_DISPATCH(softmax_backward, y, dy, dx, rows, cols);
}

}  // namespace gannet::kernels
