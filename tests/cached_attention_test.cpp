#include "gannet/kernels/cached_attention.h"

#include <cmath>

#include "gannet/kernels/attention.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

TEST(CachedAttention, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  for (Isa isa : vector_isas()) {
    for (int64_t D : {1, 5, 16, 64, 70}) {
      for (int64_t L : {1, 2, 15, 16, 17, 64, 65, 300}) {
        const int64_t ldv = D + 3;
        auto q = random_vec(D, D + L);
        auto Kb = random_vec(k::key_plane(L, D), 2 * D + L);  // the last block's padding: random, unread
        auto V = random_vec(L * ldv, 3 * D + L);
        std::vector<float> want(D), got(D), sw(L), sg(L);
        k::ref::attend_cached(q.data(), Kb.data(), V.data(), ldv, L, D, 0.3f, sw.data(), want.data());
        auto fn = isa == Isa::avx512 ? k::avx512::attend_cached : k::avx2::attend_cached;
        fn(q.data(), Kb.data(), V.data(), ldv, L, D, 0.3f, sg.data(), got.data());
        expect_close(got, want, 1e-5f, 1e-5f, isa_name(isa));
        expect_close(sg, sw, 1e-5f, 1e-6f, "probabilities");
      }
    }
  }
}

// The last query row of causal attention over T tokens equals attending over the cached T keys.
TEST(CachedAttention, EqualsTrainingAttentionOnTheLastRow) {
  const int64_t T = 37, C = 24, H = 3, D = C / H;
  auto qkv = random_vec(T * 3 * C, 11);
  std::vector<float> out(T * C), lse(H * T);
  k::attention_forward(qkv.data(), out.data(), lse.data(), 1, T, C, H, true, nullptr);
  for (int64_t h = 0; h < H; ++h) {
    std::vector<float> Kb(k::key_plane(T, D), NAN), V(T * D), got(D), scores(T);  // padding never read
    for (int64_t j = 0; j < T; ++j)
      for (int64_t d = 0; d < D; ++d) {
        Kb[k::key_index(j, d, D)] = qkv[j * 3 * C + C + h * D + d];
        V[j * D + d] = qkv[j * 3 * C + 2 * C + h * D + d];
      }
    const float* q = qkv.data() + (T - 1) * 3 * C + h * D;
    k::attend_cached(q, Kb.data(), V.data(), D, T, D, 1.f / std::sqrt((float)D), scores.data(), got.data());
    for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(got[d], out[(T - 1) * C + h * D + d], 1e-5f);
  }
}
