#include "gannet/kernels/skinny_matmul.h"

#include "gannet/core/dtype.h"
#include "gannet/core/error.h"
#include "gannet/kernels/gemm.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
constexpr k::PackedType kTypes[] = {k::PackedType::f32, k::PackedType::bf16};

// A packed copy of W that owns its storage.
struct Packed {
  std::vector<float> f;
  std::vector<uint16_t> h;
  k::PackedMatrix m;
  Packed(k::PackedType t, const std::vector<float>& W, int64_t N, int64_t K) {
    void* out;
    if (t == k::PackedType::f32) {
      f.resize(k::packed_size(t, N, K));
      out = f.data();
    } else {
      h.resize(k::packed_size(t, N, K));
      out = h.data();
    }
    k::pack_weights(t, W.data(), N, K, out);
    m = {t, out, N, K};
  }
};

// W's values as the packed type holds them.
std::vector<float> rounded(k::PackedType t, std::vector<float> W) {
  if (t == k::PackedType::bf16)
    for (float& w : W) w = bf16_to_f32(f32_to_bf16(w));
  return W;
}

int64_t kp(k::PackedType t, int64_t K) { return (K + k::packed_group(t) - 1) / k::packed_group(t) * k::packed_group(t); }
}  // namespace

TEST(SkinnyMatmul, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  const k::Epilogue epilogues[] = {k::Epilogue::store, k::Epilogue::gelu, k::Epilogue::accumulate};
  for (Isa isa : vector_isas()) {
    for (k::PackedType t : kTypes) {
      for (int64_t M : {1, 2, 3, 5, 9}) {
        for (int64_t N : {1, 3, 4, 17, 64}) {
          for (int64_t K : {1, 7, 16, 33, 100}) {
            for (k::Epilogue e : epilogues) {
              const int64_t ldx = K + 3, ldy = N + 2;
              auto X = random_vec(M * ldx, 1 + M + N + K);
              auto W = random_vec(N * K, 2 + N * K, 0.5f);
              Packed P(t, W, N, K);
              std::vector<float> Xp(M * kp(t, K));
              k::prepare_activations(t, X.data(), ldx, M, K, Xp.data());
              auto b = random_vec(N, 3 + N);
              auto Y0 = random_vec(M * ldy, 4);
              std::vector<float> want = Y0, got = Y0;
              k::ref::skinny_matmul_range(Xp.data(), M, P.m, b.data(), want.data(), ldy, e, 0, N);
              auto fn = isa == Isa::avx512 ? k::avx512::skinny_matmul_range : k::avx2::skinny_matmul_range;
              fn(Xp.data(), M, P.m, b.data(), got.data(), ldy, e, 0, N);
              expect_close(got, want, 1e-4f, 1e-4f, isa_name(isa));
            }
          }
        }
      }
    }
  }
}

TEST(SkinnyMatmul, EqualsGemmOnTheWeightsValues) {
  for (k::PackedType t : kTypes) {
    for (int64_t K : {250, 256}) {  // padded and unpadded rows
      const int64_t M = 6, N = 301;
      auto X = random_vec(M * K, 5);
      auto W = random_vec(N * K, 6, 0.1f);
      Packed P(t, W, N, K);
      auto Wr = rounded(t, W);
      std::vector<float> want(M * N), got(M * N);
      k::ref::gemm(false, true, M, N, K, 1.f, X.data(), K, Wr.data(), K, 0.f, want.data(), N);
      k::skinny_matmul(X.data(), K, M, P.m, nullptr, got.data(), N, k::Epilogue::store);
      expect_close(got, want, 1e-4f, 1e-4f, t == k::PackedType::f32 ? "f32" : "bf16");
    }
  }
}

TEST(SkinnyMatmul, PackedRowsRoundTrip) {
  const int64_t N = 19, K = 45;
  auto W = random_vec(N * K, 12);
  for (k::PackedType t : kTypes) {
    Packed P(t, W, N, K);
    auto Wr = rounded(t, W);
    std::vector<float> rows(5 * K);
    k::unpack_rows(P.m, 13, 5, rows.data());
    for (int64_t i = 0; i < 5 * K; ++i) ASSERT_EQ(rows[i], Wr[13 * K + i]);
    EXPECT_THROW(k::unpack_rows(P.m, 15, 5, rows.data()), Error);
  }
}

TEST(SkinnyMatmul, RowResultsDoNotDependOnTheBatchOrThreads) {
  const int64_t N = 517, K = 96;
  auto X = random_vec(7 * K, 7);
  auto W = random_vec(N * K, 8, 0.2f);
  auto b = random_vec(N, 9);
  int saved = k::num_threads();
  for (k::PackedType t : kTypes) {
    Packed P(t, W, N, K);
    std::vector<float> all(7 * N), one(N);
    k::skinny_matmul(X.data(), K, 7, P.m, b.data(), all.data(), N, k::Epilogue::gelu);
    for (int threads : {1, saved}) {
      k::set_num_threads(threads);
      for (int64_t m = 0; m < 7; ++m) {
        k::skinny_matmul(X.data() + m * K, K, 1, P.m, b.data(), one.data(), N, k::Epilogue::gelu);
        for (int64_t n = 0; n < N; ++n) ASSERT_EQ(one[n], all[m * N + n]) << "row " << m << " col " << n;
      }
    }
  }
  k::set_num_threads(saved);
}
