#include "gannet/kernels/skinny_matmul.h"

#include <omp.h>

#include "gannet/core/dtype.h"
#include "gannet/core/error.h"
#include "gannet/kernels/gemm.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
std::vector<uint16_t> packed(const std::vector<float>& W, int64_t N, int64_t K) {
  std::vector<uint16_t> out(k::packed_bf16_size(N, K));
  k::pack_bf16(W.data(), N, K, out.data());
  return out;
}

// The activations as the bf16 kernel takes them.
std::vector<float> reordered(const std::vector<float>& X, int64_t ldx, int64_t M, int64_t K) {
  std::vector<float> out(M * ((K + 31) / 32 * 32));
  k::reorder_activations(X.data(), ldx, M, K, out.data());
  return out;
}

void run_range(Isa isa, bool bf16, const float* X, int64_t ldx, const float* Xr, int64_t M, const float* W,
               const uint16_t* Wb, int64_t N, int64_t K, const float* b, float* Y, int64_t ldy, k::Epilogue e) {
  if (isa == Isa::avx512) {
    bf16 ? k::avx512::skinny_matmul_bf16_range(Xr, M, Wb, K, b, Y, ldy, e, 0, N)
         : k::avx512::skinny_matmul_range(X, ldx, M, W, K, b, Y, ldy, e, 0, N);
  } else {
    bf16 ? k::avx2::skinny_matmul_bf16_range(Xr, M, Wb, K, b, Y, ldy, e, 0, N)
         : k::avx2::skinny_matmul_range(X, ldx, M, W, K, b, Y, ldy, e, 0, N);
  }
}
}  // namespace

TEST(SkinnyMatmul, VectorMatchesScalarReference) {
  const k::Epilogue epilogues[] = {k::Epilogue::store, k::Epilogue::gelu, k::Epilogue::accumulate};
  for (Isa isa : vector_isas()) {
    for (bool bf16 : {false, true}) {
      for (int64_t M : {1, 2, 3, 5, 9}) {
        for (int64_t N : {1, 3, 4, 17, 64}) {
          for (int64_t K : {1, 7, 16, 33, 100}) {
            for (k::Epilogue e : epilogues) {
              const int64_t ldx = K + 3, ldy = N + 2;
              auto X = random_vec(M * ldx, 1 + M + N + K);
              auto W = random_vec(N * K, 2 + N * K, 0.5f);
              auto Wb = packed(W, N, K);
              auto Xr = reordered(X, ldx, M, K);
              auto b = random_vec(N, 3 + N);
              auto Y0 = random_vec(M * ldy, 4);
              std::vector<float> want = Y0, got = Y0;
              bf16 ? k::ref::skinny_matmul_bf16_range(Xr.data(), M, Wb.data(), K, b.data(), want.data(), ldy, e, 0, N)
                   : k::ref::skinny_matmul_range(X.data(), ldx, M, W.data(), K, b.data(), want.data(), ldy, e, 0, N);
              run_range(isa, bf16, X.data(), ldx, Xr.data(), M, W.data(), Wb.data(), N, K, b.data(), got.data(), ldy, e);
              expect_close(got, want, 1e-4f, 1e-4f, isa_name(isa));
            }
          }
        }
      }
    }
  }
}

TEST(SkinnyMatmul, EqualsGemmAndBf16WeightsAreTheirF32Values) {
  const int64_t M = 6, N = 301, K = 250;
  auto X = random_vec(M * K, 5);
  auto W = random_vec(N * K, 6, 0.1f);
  auto Wb = packed(W, N, K);
  std::vector<float> Wr(W.size());  // the bf16 weights' exact values
  for (size_t i = 0; i < W.size(); ++i) Wr[i] = bf16_to_f32(f32_to_bf16(W[i]));
  std::vector<float> want(M * N), got(M * N), got_b(M * N);
  k::ref::gemm(false, true, M, N, K, 1.f, X.data(), K, W.data(), K, 0.f, want.data(), N);
  k::skinny_matmul(X.data(), K, M, W.data(), N, K, nullptr, got.data(), N, k::Epilogue::store);
  expect_close(got, want, 1e-4f, 1e-4f, "f32");
  k::ref::gemm(false, true, M, N, K, 1.f, X.data(), K, Wr.data(), K, 0.f, want.data(), N);
  k::skinny_matmul_bf16(X.data(), K, M, Wb.data(), N, K, nullptr, got_b.data(), N, k::Epilogue::store);
  expect_close(got_b, want, 1e-4f, 1e-4f, "bf16");
}

TEST(SkinnyMatmul, PackedBf16RoundTrips) {
  const int64_t N = 19, K = 45;
  auto W = random_vec(N * K, 12);
  auto Wb = packed(W, N, K);
  std::vector<float> rows(5 * K);
  k::unpack_bf16_rows(Wb.data(), N, K, 13, 5, rows.data());
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t c = 0; c < K; ++c) ASSERT_EQ(rows[i * K + c], bf16_to_f32(f32_to_bf16(W[(13 + i) * K + c])));
  EXPECT_THROW(k::unpack_bf16_rows(Wb.data(), N, K, 15, 5, rows.data()), Error);
}

TEST(SkinnyMatmul, RowResultsDoNotDependOnTheBatchOrThreads) {
  const int64_t N = 517, K = 96;
  auto X = random_vec(7 * K, 7);
  auto W = random_vec(N * K, 8, 0.2f);
  auto b = random_vec(N, 9);
  auto Wb = packed(W, N, K);
  int saved = k::num_threads();
  for (bool bf16 : {false, true}) {
    auto run = [&](const float* x, int64_t M, float* y) {
      if (bf16) k::skinny_matmul_bf16(x, K, M, Wb.data(), N, K, b.data(), y, N, k::Epilogue::gelu);
      else k::skinny_matmul(x, K, M, W.data(), N, K, b.data(), y, N, k::Epilogue::gelu);
    };
    std::vector<float> all(7 * N), one(N);
    run(X.data(), 7, all.data());
    for (int threads : {1, saved}) {
      k::set_num_threads(threads);
      for (int64_t m = 0; m < 7; ++m) {
        run(X.data() + m * K, 1, one.data());
        for (int64_t n = 0; n < N; ++n) ASSERT_EQ(one[n], all[m * N + n]) << "row " << m << " col " << n << " bf16 " << bf16;
      }
    }
  }
  k::set_num_threads(saved);
}
