#include "gannet/kernels/embedding.h"

#include <omp.h>

#include <string>

#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)rng.below((uint64_t)vocab);
  return t;
}

void fwd_isa(Isa isa, const int32_t* tok, const float* wte, const float* wpe, float* out, int64_t B, int64_t T,
             int64_t C, int64_t V) {
  if (isa == Isa::avx512) k::avx512::embedding_forward(tok, wte, wpe, out, B, T, C, V);
  else k::avx2::embedding_forward(tok, wte, wpe, out, B, T, C, V);
}

void bwd_isa(Isa isa, const int32_t* tok, const float* dout, float* dwte, float* dwpe, int64_t B, int64_t T,
             int64_t C) {
  if (isa == Isa::avx512) k::avx512::embedding_backward(tok, dout, dwte, dwpe, B, T, C);
  else k::avx2::embedding_backward(tok, dout, dwte, dwpe, B, T, C);
}

struct Shape {
  int64_t B, T, C, vocab;
};

// Awkward channel counts and vocabularies, plus shapes large enough for the parallel paths
// (including a tiny vocabulary so that many rows land on the same dwte row).
std::vector<Shape> shapes() {
  std::vector<Shape> s;
  for (int64_t C : {1, 3, 7, 16, 17, 33, 97, 1031})
    for (int64_t vocab : {1, 5, 97})
      s.push_back({2, 3, C, vocab});
  s.push_back({1, 1, 17, 8192});
  s.push_back({3, 7, 33, 8192});
  s.push_back({4, 64, 384, 1031});
  s.push_back({2, 5, 64, 8192});
  s.push_back({4, 64, 385, 3});
  s.push_back({2, 257, 129, 1031});
  return s;
}

}  // namespace

TEST(Embedding, ForwardVectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  for (Isa isa : vector_isas()) {
    uint64_t seed = 1;
    for (const Shape& s : shapes()) {
      const int64_t n = s.B * s.T * s.C;
      auto tok = random_tokens(s.B * s.T, s.vocab, seed++);
      auto wte = random_vec(s.vocab * s.C, seed++);
      auto wpe = random_vec(s.T * s.C, seed++);
      for (bool with_wpe : {true, false}) {
        std::vector<float> want(n, -7.f), got(n, 9.f);
        const float* p = with_wpe ? wpe.data() : nullptr;
        k::ref::embedding_forward(tok.data(), wte.data(), p, want.data(), s.B, s.T, s.C, s.vocab);
        fwd_isa(isa, tok.data(), wte.data(), p, got.data(), s.B, s.T, s.C, s.vocab);
        SCOPED_TRACE(::testing::Message() << "B=" << s.B << " T=" << s.T << " C=" << s.C << " vocab=" << s.vocab
                                          << " wpe=" << with_wpe);
        expect_close(got, want, 0.f, 0.f, isa_name(isa));  // one float add: exact
      }
    }
  }
}

TEST(Embedding, ForwardIsLookupPlusPosition) {
  // Independent of the reference: out[b,t,c] == wte[tok,c] + wpe[t,c] element by element.
  const int64_t B = 2, T = 5, C = 19, V = 11;
  auto tok = random_tokens(B * T, V, 3);
  auto wte = random_vec(V * C, 4), wpe = random_vec(T * C, 5);
  std::vector<float> out(B * T * C);
  k::embedding_forward(tok.data(), wte.data(), wpe.data(), out.data(), B, T, C, V);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c)
        ASSERT_EQ(out[(b * T + t) * C + c], wte[tok[b * T + t] * C + c] + wpe[t * C + c]);
}

TEST(Embedding, BackwardVectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  for (Isa isa : vector_isas()) {
    uint64_t seed = 100;
    for (const Shape& s : shapes()) {
      auto tok = random_tokens(s.B * s.T, s.vocab, seed++);
      auto dout = random_vec(s.B * s.T * s.C, seed++);
      // Start from non-zero gradients: the kernel accumulates.
      auto dwte0 = random_vec(s.vocab * s.C, seed++), dwpe0 = random_vec(s.T * s.C, seed++);
      for (bool with_wpe : {true, false}) {
        auto want_te = dwte0, got_te = dwte0, want_pe = dwpe0, got_pe = dwpe0;
        k::ref::embedding_backward(tok.data(), dout.data(), want_te.data(), with_wpe ? want_pe.data() : nullptr,
                                   s.B, s.T, s.C);
        bwd_isa(isa, tok.data(), dout.data(), got_te.data(), with_wpe ? got_pe.data() : nullptr, s.B, s.T, s.C);
        SCOPED_TRACE(::testing::Message() << "B=" << s.B << " T=" << s.T << " C=" << s.C << " vocab=" << s.vocab
                                          << " wpe=" << with_wpe);
        // Float accumulation in row order vs double: a few ulps of the larger partial sums.
        expect_close(got_te, want_te, 1e-5f, 2e-5f, isa_name(isa));
        expect_close(got_pe, want_pe, 1e-5f, 2e-5f, isa_name(isa));
        if (!with_wpe) {
          for (size_t i = 0; i < got_pe.size(); ++i) ASSERT_EQ(got_pe[i], dwpe0[i]);
        }
      }
    }
  }
}

TEST(Embedding, BackwardAccumulatesAndIsDeterministic) {
  // Many rows on a few tokens, big enough for the parallel path: 1 and 2 threads must agree bit for
  // bit, and a second call must add the same amount again.
  const int64_t B = 8, T = 64, C = 256, V = 4;
  auto tok = random_tokens(B * T, V, 7);
  auto dout = random_vec(B * T * C, 8);
  std::vector<float> te1(V * C, 0.f), pe1(T * C, 0.f), te2(V * C, 0.f), pe2(T * C, 0.f);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  k::embedding_backward(tok.data(), dout.data(), te1.data(), pe1.data(), B, T, C);
  omp_set_num_threads(2);
  k::embedding_backward(tok.data(), dout.data(), te2.data(), pe2.data(), B, T, C);
  omp_set_num_threads(saved);
  ASSERT_EQ(te1, te2);
  ASSERT_EQ(pe1, pe2);
  k::embedding_backward(tok.data(), dout.data(), te2.data(), pe2.data(), B, T, C);
  for (size_t i = 0; i < te1.size(); ++i) ASSERT_NEAR(te2[i], 2 * te1[i], 1e-4f + 1e-5f * std::fabs(te1[i]));
  for (size_t i = 0; i < pe1.size(); ++i) ASSERT_NEAR(pe2[i], 2 * pe1[i], 1e-5f + 1e-5f * std::fabs(pe1[i]));
}

TEST(Embedding, BackwardMatchesFiniteDifferences) {
  // L = sum_{b,t,c} R[b,t,c] * out[b,t,c], with an independent double-precision forward; dL/dout = R.
  const int64_t B = 2, T = 3, C = 5, V = 4;
  const std::vector<int32_t> tok = {1, 3, 1, 0, 1, 3};  // token 2 never appears; token 1 three times
  auto wte_f = random_vec(V * C, 11), wpe_f = random_vec(T * C, 12), R = random_vec(B * T * C, 13);
  std::vector<double> wte(wte_f.begin(), wte_f.end()), wpe(wpe_f.begin(), wpe_f.end());
  auto loss = [&]() {
    double L = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) L += R[(b * T + t) * C + c] * (wte[tok[b * T + t] * C + c] + wpe[t * C + c]);
    return L;
  };
  std::vector<float> dwte(V * C, 0.f), dwpe(T * C, 0.f);
  k::embedding_backward(tok.data(), R.data(), dwte.data(), dwpe.data(), B, T, C);
  const double h = 1e-4;
  for (auto [w, g] : {std::pair{&wte, &dwte}, std::pair{&wpe, &dwpe}}) {
    for (size_t i = 0; i < w->size(); ++i) {
      double keep = (*w)[i];
      (*w)[i] = keep + h;
      double lp = loss();
      (*w)[i] = keep - h;
      double lm = loss();
      (*w)[i] = keep;
      double fd = (lp - lm) / (2 * h);
      ASSERT_NEAR((*g)[i], fd, 1e-5 + 1e-5 * std::fabs(fd)) << "element " << i;
    }
  }
}

TEST(Embedding, BadTokenIdThrowsBeforeWriting) {
  const int64_t B = 2, T = 3, C = 17, V = 10;
  auto wte = random_vec(V * C, 1), wpe = random_vec(T * C, 2);
  for (int32_t bad : {-1, 10, 1 << 30}) {
    std::vector<int32_t> tok = {0, 1, 2, 3, bad, 5};  // position b=1, t=1
    std::vector<Isa> isas = vector_isas();
    isas.push_back(Isa::scalar);
    for (Isa isa : isas) {
      std::vector<float> out(B * T * C, 42.f);
      try {
        if (isa == Isa::scalar) k::ref::embedding_forward(tok.data(), wte.data(), wpe.data(), out.data(), B, T, C, V);
        else fwd_isa(isa, tok.data(), wte.data(), wpe.data(), out.data(), B, T, C, V);
        FAIL() << "no error for token " << bad << " on " << isa_name(isa);
      } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
        EXPECT_NE(msg.find("b=1"), std::string::npos) << msg;
        EXPECT_NE(msg.find("t=1"), std::string::npos) << msg;
      }
      for (float x : out) ASSERT_EQ(x, 42.f) << "output written before the check";
    }
    std::vector<float> out(B * T * C);
    EXPECT_THROW(k::embedding_forward(tok.data(), wte.data(), wpe.data(), out.data(), B, T, C, V), Error);
  }
  // Backward has no vocabulary size, but a negative id is caught.
  std::vector<int32_t> tok = {0, 1, 2, 3, -1, 5};
  std::vector<float> dout(B * T * C, 1.f), dwte(V * C, 0.f);
  EXPECT_THROW(k::embedding_backward(tok.data(), dout.data(), dwte.data(), nullptr, B, T, C), Error);
  EXPECT_THROW(k::ref::embedding_backward(tok.data(), dout.data(), dwte.data(), nullptr, B, T, C), Error);
  for (float x : dwte) ASSERT_EQ(x, 0.f);
}

TEST(Embedding, SlicesOfTheTableSumToTheWholeLookup) {
  // t ranks each hold vocab/t rows: the sum of their outputs is the whole lookup (each row comes
  // from one rank, the others write zeros), their table gradients are the whole one's rows, and
  // each computes the whole position gradient. Every ISA, against the scalar reference.
  std::vector<Isa> isas = vector_isas();
  isas.push_back(Isa::scalar);
  uint64_t seed = 100;
  for (Isa isa : isas) {
    for (const Shape& s : {Shape{2, 3, 17, 12}, Shape{3, 7, 33, 96}, Shape{4, 64, 385, 6}}) {
      auto tok = random_tokens(s.B * s.T, s.vocab, seed++);
      auto wte = random_vec(s.vocab * s.C, seed++), wpe = random_vec(s.T * s.C, seed++);
      auto dout = random_vec(s.B * s.T * s.C, seed++);
      std::vector<float> want(s.B * s.T * s.C), want_te(s.vocab * s.C, 0.f), want_pe(s.T * s.C, 0.f);
      k::ref::embedding_forward(tok.data(), wte.data(), wpe.data(), want.data(), s.B, s.T, s.C, s.vocab);
      k::ref::embedding_backward(tok.data(), dout.data(), want_te.data(), want_pe.data(), s.B, s.T, s.C);
      for (int64_t t : {2, 3}) {
        SCOPED_TRACE(::testing::Message() << isa_name(isa) << " C=" << s.C << " vocab=" << s.vocab << " t=" << t);
        const int64_t rows = s.vocab / t;
        std::vector<float> sum(want.size(), 0.f), got_te;
        for (int64_t r = 0; r < t; ++r) {
          std::vector<float> out(want.size(), -1.f), te(rows * s.C, 0.f), pe(s.T * s.C, 0.f);
          const float* mine = wte.data() + r * rows * s.C;
          if (isa == Isa::scalar) {
            k::ref::embedding_slice_forward(tok.data(), mine, wpe.data(), out.data(), s.B, s.T, s.C, r * rows, rows);
            k::ref::embedding_slice_backward(tok.data(), dout.data(), te.data(), pe.data(), s.B, s.T, s.C, r * rows, rows);
          } else if (isa == Isa::avx512) {
            k::avx512::embedding_slice_forward(tok.data(), mine, wpe.data(), out.data(), s.B, s.T, s.C, r * rows, rows);
            k::avx512::embedding_slice_backward(tok.data(), dout.data(), te.data(), pe.data(), s.B, s.T, s.C, r * rows,
                                                rows);
          } else {
            k::avx2::embedding_slice_forward(tok.data(), mine, wpe.data(), out.data(), s.B, s.T, s.C, r * rows, rows);
            k::avx2::embedding_slice_backward(tok.data(), dout.data(), te.data(), pe.data(), s.B, s.T, s.C, r * rows,
                                              rows);
          }
          for (size_t i = 0; i < sum.size(); ++i) sum[i] += out[i];
          got_te.insert(got_te.end(), te.begin(), te.end());
          expect_close(pe, want_pe, 1e-5f, 2e-5f, "position gradient");
        }
        for (size_t i = 0; i < sum.size(); ++i) ASSERT_EQ(sum[i], want[i]) << i;
        expect_close(got_te, want_te, 1e-5f, 2e-5f, "table gradient");
      }
    }
  }
}
