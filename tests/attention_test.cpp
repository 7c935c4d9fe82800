#include "gannet/kernels/attention.h"

#include <cmath>
#include <limits>

#include "gannet/core/error.h"
#include "gannet/kernels/gemm.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

using FwdFn = void (*)(const float*, float*, float*, int64_t, int64_t, int64_t, int64_t, bool,
                       const uint8_t*);
using BwdFn = void (*)(const float*, const float*, const float*, const float*, float*, int64_t,
                       int64_t, int64_t, int64_t, bool, const uint8_t*);

struct Impl {
  const char* name;
  FwdFn fwd;
  BwdFn bwd;
};

// The vector paths this CPU runs, plus the dispatching entry points.
std::vector<Impl> impls() {
  std::vector<Impl> out = {{"dispatch", &k::attention_forward, &k::attention_backward}};
  for (Isa isa : vector_isas()) {
    if (isa == Isa::avx2) out.push_back({"avx2", &k::avx2::attention_forward, &k::avx2::attention_backward});
    if (isa == Isa::avx512)
      out.push_back({"avx512", &k::avx512::attention_forward, &k::avx512::attention_backward});
  }
  return out;
}

// Even batches: random padding (about 30%); odd batches: a valid prefix of length T - T/3 - 1
// (so T = 1 gives a fully padded sequence, whose outputs must be zero).
std::vector<uint8_t> make_mask(int64_t B, int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> m(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      m[b * T + t] = b % 2 == 0 ? (rng.normal() > -0.5f) : (t < T - T / 3 - 1);
  return m;
}

void expect_lse_close(const std::vector<float>& got, const std::vector<float>& want, float atol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i])) {
      ASSERT_TRUE(std::isinf(got[i]) && got[i] < 0) << "lse at " << i << " = " << got[i];
    } else {
      ASSERT_NEAR(got[i], want[i], atol) << "lse at " << i;
    }
  }
}

}  // namespace

TEST(Attention, ForwardBackwardMatchReference) {
  uint64_t seed = 7;
  int cases = 0;
  for (int64_t B : {1, 2})
    for (int64_t T : {1, 5, 17, 64, 130})
      for (int64_t H : {1, 2, 3})
        for (int64_t D : {8, 16, 64})
          for (bool causal : {true, false})
            for (bool masked : {false, true}) {
              const int64_t C = H * D;
              auto qkv = random_vec(B * T * 3 * C, ++seed, 1.5f);
              auto dout = random_vec(B * T * C, ++seed);
              auto mask = make_mask(B, T, ++seed);
              const uint8_t* km = masked ? mask.data() : nullptr;
              std::vector<float> out_ref(B * T * C), lse_ref(B * H * T), dqkv_ref(B * T * 3 * C);
              k::ref::attention_forward(qkv.data(), out_ref.data(), lse_ref.data(), B, T, C, H, causal, km);
              k::ref::attention_backward(qkv.data(), out_ref.data(), dout.data(), lse_ref.data(),
                                         dqkv_ref.data(), B, T, C, H, causal, km);
              for (const Impl& im : impls()) {
                SCOPED_TRACE(::testing::Message() << im.name << " B=" << B << " T=" << T << " H=" << H
                                                  << " D=" << D << " causal=" << causal << " mask=" << masked);
                std::vector<float> out(B * T * C, 99.f), lse(B * H * T, 99.f), dqkv(B * T * 3 * C, 99.f);
                im.fwd(qkv.data(), out.data(), lse.data(), B, T, C, H, causal, km);
                expect_close(out, out_ref, 1e-4f, 2e-5f, "out");
                expect_lse_close(lse, lse_ref, 2e-5f);
                im.bwd(qkv.data(), out.data(), dout.data(), lse.data(), dqkv.data(), B, T, C, H, causal, km);
                expect_close(dqkv, dqkv_ref, 1e-3f, 5e-5f, "dqkv");
                ++cases;
              }
            }
  EXPECT_GT(cases, 360);
}

TEST(Attention, PaddingAndEmptyRows) {
  // Causal with key 0 padded: query 0 sees no key. Padded keys get exactly zero dk and dv.
  const int64_t B = 1, T = 9, H = 2, D = 8, C = H * D;
  auto qkv = random_vec(B * T * 3 * C, 3);
  auto dout = random_vec(B * T * C, 4);
  std::vector<uint8_t> mask = {0, 1, 1, 0, 1, 1, 1, 0, 1};
  std::vector<float> out(T * C), lse(H * T), dqkv(T * 3 * C, 99.f);
  k::attention_forward(qkv.data(), out.data(), lse.data(), B, T, C, H, true, mask.data());
  k::attention_backward(qkv.data(), out.data(), dout.data(), lse.data(), dqkv.data(), B, T, C, H, true,
                        mask.data());
  for (int64_t h = 0; h < H; ++h) EXPECT_TRUE(std::isinf(lse[h * T]) && lse[h * T] < 0);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(out[c], 0.f);
    EXPECT_EQ(dqkv[c], 0.f);  // dq of query 0
  }
  for (int64_t t : {0, 3, 7})
    for (int64_t c = C; c < 3 * C; ++c) EXPECT_EQ(dqkv[t * 3 * C + c], 0.f) << "t=" << t << " c=" << c;
  // Query 1 sees only key 1: its output is v_1 exactly (up to rounding).
  for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(out[C + c], qkv[3 * C + 2 * C + c], 1e-6f);
}

TEST(Attention, SameResultWithOneAndTwoThreads) {
  const int64_t B = 2, T = 70, H = 3, D = 16, C = H * D;
  auto qkv = random_vec(B * T * 3 * C, 11);
  auto dout = random_vec(B * T * C, 12);
  const int before = k::num_threads();
  std::vector<float> o1(B * T * C), l1(B * H * T), g1(B * T * 3 * C), o2 = o1, l2 = l1, g2 = g1;
  k::set_num_threads(1);
  k::attention_forward(qkv.data(), o1.data(), l1.data(), B, T, C, H, true, nullptr);
  k::attention_backward(qkv.data(), o1.data(), dout.data(), l1.data(), g1.data(), B, T, C, H, true, nullptr);
  k::set_num_threads(2);
  k::attention_forward(qkv.data(), o2.data(), l2.data(), B, T, C, H, true, nullptr);
  k::attention_backward(qkv.data(), o2.data(), dout.data(), l2.data(), g2.data(), B, T, C, H, true, nullptr);
  k::set_num_threads(before);
  EXPECT_EQ(o1, o2);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(g1, g2);
}

namespace {
// An independent double-precision attention: out[b, t, h*D + d] from qkv, straight from the definition.
std::vector<double> naive_forward_d(const std::vector<double>& qkv, int64_t B, int64_t T, int64_t C,
                                    int64_t H, bool causal, const uint8_t* mask) {
  const int64_t D = C / H;
  std::vector<double> out(B * T * C, 0.0);
  auto at = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) {
    return qkv[(b * T + t) * 3 * C + part * C + h * D + d];
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> w(T, 0.0);
        std::vector<bool> ok(T);
        double mx = -1e300;
        bool any = false;
        for (int64_t j = 0; j < T; ++j) {
          ok[j] = (!causal || j <= i) && (!mask || mask[b * T + j]);
          if (!ok[j]) continue;
          double s = 0.0;
          for (int64_t d = 0; d < D; ++d) s += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          w[j] = s / std::sqrt((double)D);
          mx = std::max(mx, w[j]);
          any = true;
        }
        if (!any) continue;
        double z = 0.0;
        for (int64_t j = 0; j < T; ++j) z += ok[j] ? (w[j] = std::exp(w[j] - mx)) : (w[j] = 0.0);
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < T; ++j) acc += w[j] / z * at(b, j, 2, h, d);
          out[(b * T + i) * C + h * D + d] = acc;
        }
      }
  return out;
}
}  // namespace

TEST(Attention, BackwardMatchesFiniteDifferences) {
  const int64_t B = 2, T = 5, H = 2, D = 3, C = H * D;
  std::vector<uint8_t> mask = {1, 1, 0, 1, 1, 0, 1, 1, 1, 0};
  for (bool causal : {true, false}) {
    for (const uint8_t* km : {(const uint8_t*)nullptr, (const uint8_t*)mask.data()}) {
      SCOPED_TRACE(::testing::Message() << "causal=" << causal << " mask=" << (km != nullptr));
      auto qkv = random_vec(B * T * 3 * C, 21 + causal, 1.2f);
      auto w = random_vec(B * T * C, 31);  // loss = sum(out * w), so dout = w
      std::vector<double> x(qkv.begin(), qkv.end());
      auto loss = [&](const std::vector<double>& xx) {
        auto o = naive_forward_d(xx, B, T, C, H, causal, km);
        double s = 0.0;
        for (size_t i = 0; i < o.size(); ++i) s += o[i] * w[i];
        return s;
      };
      std::vector<float> out(B * T * C), lse(B * H * T), dqkv(B * T * 3 * C);
      k::attention_forward(qkv.data(), out.data(), lse.data(), B, T, C, H, causal, km);
      // The float forward agrees with the double one.
      auto od = naive_forward_d(x, B, T, C, H, causal, km);
      for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], od[i], 1e-5) << "out " << i;
      k::attention_backward(qkv.data(), out.data(), w.data(), lse.data(), dqkv.data(), B, T, C, H, causal, km);
      const double h = 1e-6;
      for (size_t i = 0; i < x.size(); ++i) {
        auto xp = x, xm = x;
        xp[i] += h;
        xm[i] -= h;
        const double fd = (loss(xp) - loss(xm)) / (2 * h);
        ASSERT_NEAR(dqkv[i], fd, 2e-5 + 1e-4 * std::fabs(fd)) << "dqkv " << i;
      }
    }
  }
}

TEST(Attention, RejectsBadShape) {
  std::vector<float> buf(3 * 12 * 4);
  EXPECT_THROW(k::attention_forward(buf.data(), buf.data(), buf.data(), 1, 4, 10, 3, true, nullptr), Error);
  EXPECT_THROW(k::attention_forward(buf.data(), buf.data(), buf.data(), 1, 4, 12, 0, true, nullptr), Error);
}

TEST(Attention, LongSequenceSpansSeveralKeyBlocks) {
  // T beyond the kernel's key block (256): exercises the online-softmax rescaling across blocks.
  const int64_t B = 2, T = 600, H = 1, D = 16, C = H * D;
  auto qkv = random_vec(B * T * 3 * C, 41, 2.f);
  auto dout = random_vec(B * T * C, 42);
  auto mask = make_mask(B, T, 43);
  for (bool causal : {true, false})
    for (const uint8_t* km : {(const uint8_t*)nullptr, (const uint8_t*)mask.data()}) {
      std::vector<float> out_ref(B * T * C), lse_ref(B * H * T), dqkv_ref(B * T * 3 * C);
      k::ref::attention_forward(qkv.data(), out_ref.data(), lse_ref.data(), B, T, C, H, causal, km);
      k::ref::attention_backward(qkv.data(), out_ref.data(), dout.data(), lse_ref.data(), dqkv_ref.data(),
                                 B, T, C, H, causal, km);
      for (const Impl& im : impls()) {
        SCOPED_TRACE(::testing::Message() << im.name << " causal=" << causal << " mask=" << (km != nullptr));
        std::vector<float> out(B * T * C), lse(B * H * T), dqkv(B * T * 3 * C);
        im.fwd(qkv.data(), out.data(), lse.data(), B, T, C, H, causal, km);
        expect_close(out, out_ref, 1e-4f, 2e-5f, "out");
        expect_lse_close(lse, lse_ref, 2e-5f);
        im.bwd(qkv.data(), out.data(), dout.data(), lse.data(), dqkv.data(), B, T, C, H, causal, km);
        expect_close(dqkv, dqkv_ref, 1e-3f, 5e-5f, "dqkv");
      }
    }
}
