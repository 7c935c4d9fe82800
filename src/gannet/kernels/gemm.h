// fp32 GEMM: a thin layer over OpenBLAS's cblas_sgemm (the OpenMP build), plus a strided batched
// form and the thread-count setting shared by OpenMP and OpenBLAS.
//
// All matrices are row-major. C = alpha * op(A) * op(B) + beta * C, where op(A) is M x K and op(B)
// is K x N; op(X) = X^T when trans_x. lda/ldb/ldc are the row strides (in floats) of A, B and C as
// stored. beta == 0 overwrites C (NaNs in C are not propagated), as in BLAS.
#pragma once
#include <cstdint>

namespace gannet::kernels {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// batch independent products; product i uses A + i*strideA, B + i*strideB, C + i*strideC.
// Runs the batch in parallel (single-threaded sgemm per product) when the batch is large and each
// product small, otherwise calls the threaded sgemm once per product. Called from inside an OpenMP
// parallel region it runs serially on the calling thread.
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC);

// The machine's fp32 GEMM peak in GFLOP/s as the current threads reach it: best of square
// products (n = 1024, 2048), median of 5 runs each. Benchmarks measure it beside their figure.
double measure_gemm_peak_gflops();
// GFLOP/s of an n x n x n sgemm, median of `runs` after one warm-up.
double measure_gemm_gflops(int64_t n, int runs);

// The most threads a config or option may ask for: above any machine's cores, far below the
// point where the runtimes would fail to start them.
constexpr int kMaxThreads = 4096;
// Sets the thread count of both OpenMP (omp_set_num_threads) and OpenBLAS; 1 <= n <= kMaxThreads.
void set_num_threads(int n);
// The OpenMP thread count a parallel region started now would get (omp_get_max_threads).
int num_threads();

namespace ref {
// Naive triple loop, accumulating in double.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC);
}  // namespace ref

}  // namespace gannet::kernels
