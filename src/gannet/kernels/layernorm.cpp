#include "gannet/kernels/layernorm.h"

#include <cmath>
#include <vector>

#include "gannet/core/dispatch.h"

namespace gannet::kernels {

namespace ref {
// The reference computes in double, straight from the definition (two-pass variance).

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps) {
  if (cols <= 0) return;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double m = 0;
    for (int64_t c = 0; c < cols; ++c) m += xr[c];
    m /= (double)cols;
    double v = 0;
    for (int64_t c = 0; c < cols; ++c) v += ((double)xr[c] - m) * ((double)xr[c] - m);
    v /= (double)cols;
    double s = 1.0 / std::sqrt(v + (double)eps);
    for (int64_t c = 0; c < cols; ++c) yr[c] = (float)(((double)xr[c] - m) * s * gamma[c] + beta[c]);
    if (mean) mean[r] = (float)m;
    if (rstd) rstd[r] = (float)s;
  }
}

void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols) {
  if (cols <= 0) return;
  std::vector<double> dg(cols, 0.0), db(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    float* dxr = dx + r * cols;
    double m = mean[r], s = rstd[r];
    // dx = s * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
    double sg = 0, sgx = 0;
    for (int64_t c = 0; c < cols; ++c) {
      double xh = ((double)xr[c] - m) * s, g = (double)dyr[c] * gamma[c];
      sg += g;
      sgx += g * xh;
      dg[c] += (double)dyr[c] * xh;
      db[c] += dyr[c];
    }
    sg /= (double)cols;
    sgx /= (double)cols;
    for (int64_t c = 0; c < cols; ++c) {
      double xh = ((double)xr[c] - m) * s, g = (double)dyr[c] * gamma[c];
      dxr[c] = (float)(s * (g - sg - xh * sgx));
    }
  }
  for (int64_t c = 0; c < cols; ++c) {
    dgamma[c] = (float)(dgamma[c] + dg[c]);
    dbeta[c] = (float)(dbeta[c] + db[c]);
  }
}
}  // namespace ref

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps) {
  GANNET_DISPATCH(layernorm_forward, x, gamma, beta, y, mean, rstd, rows, cols, eps);
}
void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols) {
  GANNET_DISPATCH(layernorm_backward, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols);
}

}  // namespace gannet::kernels
