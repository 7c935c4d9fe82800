#include "gannet/kernels/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <vector>

#include "gannet/core/error.h"

namespace gannet::kernels {

namespace {

// Products with at most this many multiply-adds run one per thread in gemm_batched; larger ones
// get the threaded sgemm each.
constexpr int64_t kSmallProductMacs = int64_t(1) << 22;

void check_args(const char* fn, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                const float* A, int64_t lda, const float* B, int64_t ldb, const float* C,
                int64_t ldc) {
  GANNET_CHECK(M >= 0 && N >= 0 && K >= 0, fn, ": negative size M=", M, " N=", N, " K=", K);
  GANNET_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
                   ldc <= INT_MAX,
               fn, ": size or leading dimension exceeds the BLAS int range");
  int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  GANNET_CHECK(lda >= (a_cols > 1 ? a_cols : 1), fn, ": lda=", lda, " < ", a_cols);
  GANNET_CHECK(ldb >= (b_cols > 1 ? b_cols : 1), fn, ": ldb=", ldb, " < ", b_cols);
  GANNET_CHECK(ldc >= (N > 1 ? N : 1), fn, ": ldc=", ldc, " < ", N);
  GANNET_CHECK(M == 0 || N == 0 || C != nullptr, fn, ": C is null");
  GANNET_CHECK(M == 0 || N == 0 || K == 0 || (A != nullptr && B != nullptr), fn, ": A or B is null");
}

// C = beta * C, with beta == 0 overwriting.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f) {
      for (int64_t j = 0; j < N; ++j) c[j] = 0.f;
    } else if (beta != 1.f) {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

// One product, arguments already checked.
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.f) return scale_c(M, N, beta, C, ldc);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC) {
  check_args("gemm_batched", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  GANNET_CHECK(batch >= 0, "gemm_batched: negative batch ", batch);
  if (batch == 0 || M == 0 || N == 0) return;
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  bool per_thread = nt > 1 && batch >= nt && M * N * K <= kSmallProductMacs;
  if (per_thread) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i)
      sgemm(trans_a, trans_b, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
            C + i * strideC, ldc);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      sgemm(trans_a, trans_b, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
            C + i * strideC, ldc);
  }
}

void set_num_threads(int n) {
  GANNET_CHECK(n >= 1 && n <= kMaxThreads, "set_num_threads: n=", n, " must be in [1, ", kMaxThreads, "]");
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

namespace ref {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      double c = beta == 0.f ? 0.0 : (double)beta * C[i * ldc + j];
      C[i * ldc + j] = (float)((double)alpha * acc + c);
    }
  }
}

void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC) {
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
         C + i * strideC, ldc);
}

}  // namespace ref

double measure_gemm_gflops(int64_t n, int runs) {
  GANNET_CHECK(n >= 1 && runs >= 1, "measure_gemm_gflops: n and runs must be >= 1");
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  std::vector<double> t;
  for (int r = 0; r <= runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    gemm(false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    if (r > 0) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return 2.0 * n * n * n / t[t.size() / 2] / 1e9;
}

double measure_gemm_peak_gflops() {
  return std::max(measure_gemm_gflops(1024, 5), measure_gemm_gflops(2048, 5));
}

}  // namespace gannet::kernels
