// Vocabulary parallelism in one process: t ranks as threads (thread_communicator.h), each holding
// its rows of the token table or its columns of the logits, against the whole-vocabulary ops
// (autograd::cross_entropy, autograd::embedding) and finite differences; then a tensor-parallel
// GPT over 2 threads against one whole model, gradients included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/dist/tensor_parallel.h"
#include "gannet/dist/vocab_parallel.h"
#include "test_files.h"
#include "thread_communicator.h"

using namespace gannet;
using autograd::Var;

namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, float scale) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * rng.normal();
  return t;
}

// Targets in [0, V) with a few ignored rows (-1).
Tensor random_targets(int64_t N, int64_t V, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({N}, DType::i32);
  for (int64_t i = 0; i < N; ++i) t.data<int32_t>()[i] = i % 4 == 2 ? -1 : (int32_t)rng.below((uint64_t)V);
  return t;
}

// Columns [c0, c0 + n) of a [rows, V] tensor.
Tensor columns(const Tensor& x, int64_t c0, int64_t n) {
  const int64_t rows = x.dim(0), V = x.dim(1);
  Tensor out = Tensor::empty({rows, n});
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) out.f32()[i * n + j] = x.f32()[i * V + c0 + j];
  return out;
}

TEST(VocabParallel, CrossEntropyMatchesTheWholeVocabulary) {
  const int64_t N = 11, V = 24;
  const Tensor logits = random_tensor({N, V}, 1, 3.f);
  const Tensor targets = random_targets(N, V, 2);
  // The whole-vocabulary loss, with an upstream gradient of 2 (loss + loss).
  Var whole(logits.clone(), true);
  Var ref = autograd::cross_entropy(whole, targets);
  autograd::tape().backward(autograd::add(ref, ref));
  for (int t : {1, 2, 3, 4}) {
    std::vector<float> loss((size_t)t), loss_nograd((size_t)t);
    std::vector<Tensor> grad((size_t)t);
    gannet::testing::ThreadGroup(t).run([&](dist::Communicator& g) {
      const int64_t n = V / t;
      {
        autograd::NoGrad ng;
        Var mine(columns(logits, g.rank() * n, n), true);
        loss_nograd[(size_t)g.rank()] = dist::vocab_parallel_cross_entropy(g, mine, targets).value().f32()[0];
      }
      Var mine(columns(logits, g.rank() * n, n), true);
      Var l = dist::vocab_parallel_cross_entropy(g, mine, targets);
      loss[(size_t)g.rank()] = l.value().f32()[0];
      autograd::tape().backward(autograd::add(l, l));
      grad[(size_t)g.rank()] = mine.grad();
    });
    for (int r = 0; r < t; ++r) {
      SCOPED_TRACE(str("t=", t, " rank ", r));
      EXPECT_NEAR(loss[(size_t)r], ref.value().f32()[0], 1e-6 * ref.value().f32()[0]);
      EXPECT_NEAR(loss_nograd[(size_t)r], ref.value().f32()[0], 1e-6 * ref.value().f32()[0]);
      const Tensor want = columns(whole.grad(), r * (V / t), V / t);
      ASSERT_EQ(grad[(size_t)r].shape(), want.shape());
      for (int64_t i = 0; i < want.numel(); ++i) ASSERT_NEAR(grad[(size_t)r].f32()[i], want.f32()[i], 1e-6) << i;
    }
  }
}

TEST(VocabParallel, CrossEntropyGradientMatchesFiniteDifferences) {
  const int64_t N = 6, V = 10, t = 2, n = V / t;
  const Tensor logits = random_tensor({N, V}, 3, 1.f);
  const Tensor targets = random_targets(N, V, 4);
  std::vector<Tensor> grad(t);
  std::vector<std::vector<double>> fd(t, std::vector<double>((size_t)(N * V)));
  gannet::testing::ThreadGroup(t).run([&](dist::Communicator& g) {
    Var mine(columns(logits, g.rank() * n, n), true);
    autograd::tape().backward(dist::vocab_parallel_cross_entropy(g, mine, targets));
    grad[(size_t)g.rank()] = mine.grad();
    autograd::NoGrad ng;
    const double eps = 1e-2;
    for (int64_t i = 0; i < N; ++i)  // every rank steps through every element, in the same order
      for (int64_t j = 0; j < V; ++j) {
        double l[2];
        for (int side = 0; side < 2; ++side) {
          Tensor x = columns(logits, g.rank() * n, n);
          if (j / n == g.rank()) x.f32()[i * n + j % n] += (float)(side ? eps : -eps);
          l[side] = dist::vocab_parallel_cross_entropy(g, Var(x), targets).value().f32()[0];
        }
        fd[(size_t)g.rank()][(size_t)(i * V + j)] = (l[1] - l[0]) / (2 * eps);
      }
  });
  for (int r = 0; r < t; ++r)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = r * n; j < (r + 1) * n; ++j) {
        const double want = fd[(size_t)r][(size_t)(i * V + j)];
        EXPECT_NEAR(grad[(size_t)r].f32()[i * n + j - r * n], want, 2e-4 + 1e-2 * std::fabs(want))
            << "row " << i << " column " << j;
      }
}

TEST(VocabParallel, EmbeddingMatchesTheWholeTable) {
  const int64_t B = 3, T = 5, V = 12, C = 8;
  Rng rng(5);
  Tensor tokens = Tensor::empty({B, T}, DType::i32);
  for (int64_t i = 0; i < B * T; ++i) tokens.data<int32_t>()[i] = (int32_t)rng.below(V);
  tokens.data<int32_t>()[4] = tokens.data<int32_t>()[9];  // a repeated token: its gradient rows add up
  const Tensor wte0 = random_tensor({V, C}, 6, 0.5f), wpe0 = random_tensor({6, C}, 7, 0.5f);
  const Tensor head = random_tensor({7, C}, 8, 1.f);  // a loss on top, for an upstream gradient that varies
  const Tensor targets = random_targets(B * T, 7, 9);
  auto loss_of = [&](const Var& x) { return autograd::cross_entropy(autograd::linear(x, Var(head), Var()), targets); };
  Var wte(wte0.clone(), true), wpe(wpe0.clone(), true);
  Var ref = autograd::embedding(tokens, wte, wpe);
  const Tensor ref_value = ref.value().clone();
  autograd::tape().backward(loss_of(ref));
  for (int t : {1, 2, 3}) {
    std::vector<Tensor> value((size_t)t), dwte((size_t)t), dwpe((size_t)t);
    gannet::testing::ThreadGroup(t).run([&](dist::Communicator& g) {
      const int64_t rows = V / t;
      Tensor mine_rows = Tensor::empty({rows, C});
      std::memcpy(mine_rows.f32(), wte0.f32() + g.rank() * rows * C, (size_t)(rows * C) * 4);
      Var mine(mine_rows, true), pos(wpe0.clone(), true);
      Var x = dist::vocab_parallel_embedding(g, tokens, mine, pos);
      value[(size_t)g.rank()] = x.value().clone();
      autograd::tape().backward(loss_of(x));
      dwte[(size_t)g.rank()] = mine.grad();
      dwpe[(size_t)g.rank()] = pos.grad();
    });
    for (int r = 0; r < t; ++r) {
      SCOPED_TRACE(str("t=", t, " rank ", r));
      for (int64_t i = 0; i < ref_value.numel(); ++i) ASSERT_EQ(value[(size_t)r].f32()[i], ref_value.f32()[i]) << i;
      const int64_t rows = V / t;
      for (int64_t i = 0; i < rows * C; ++i)
        ASSERT_NEAR(dwte[(size_t)r].f32()[i], wte.grad().f32()[r * rows * C + i], 1e-6) << i;
      for (int64_t i = 0; i < wpe.grad().numel(); ++i) ASSERT_NEAR(dwpe[(size_t)r].f32()[i], wpe.grad().f32()[i], 1e-6) << i;
    }
  }
}

TEST(VocabParallel, GatherJoinsTheColumnsAndSplitsTheGradient) {
  const int64_t N = 5, V = 9, t = 3, n = V / t;
  const Tensor logits = random_tensor({N, V}, 10, 2.f);
  const Tensor targets = random_targets(N, V, 11);
  Var whole(logits.clone(), true);
  autograd::tape().backward(autograd::cross_entropy(whole, targets));
  std::vector<Tensor> joined(t), grad(t);
  gannet::testing::ThreadGroup(t).run([&](dist::Communicator& g) {
    Var mine(columns(logits, g.rank() * n, n), true);
    Var all = dist::gather_vocab(g, mine);
    joined[(size_t)g.rank()] = all.value().clone();
    autograd::tape().backward(autograd::cross_entropy(all, targets));
    grad[(size_t)g.rank()] = mine.grad();
  });
  for (int r = 0; r < t; ++r) {
    ASSERT_EQ(joined[(size_t)r].shape(), logits.shape());
    for (int64_t i = 0; i < N * V; ++i) ASSERT_EQ(joined[(size_t)r].f32()[i], logits.f32()[i]) << i;
    const Tensor want = columns(whole.grad(), r * n, n);
    for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(grad[(size_t)r].f32()[i], want.f32()[i]) << i;
  }
}

models::GptConfig tiny_gpt(int64_t vocab) {
  models::GptConfig c;
  c.vocab_size = vocab;
  c.n_ctx = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  return c;
}

TEST(VocabParallel, TensorParallelGptMatchesOneProcess) {
  const int64_t B = 2, T = 8, V = 24;
  Rng rng(12);
  Tensor tokens = Tensor::empty({B, T}, DType::i32), targets = Tensor::empty({B, T}, DType::i32);
  for (int64_t i = 0; i < B * T; ++i) {
    tokens.data<int32_t>()[i] = (int32_t)rng.below(V);
    targets.data<int32_t>()[i] = i % 5 == 3 ? -1 : (int32_t)rng.below(V);  // some ignored
  }
  models::Gpt one(tiny_gpt(V));
  one.init(13);
  Var ref = one.loss(tokens, targets);
  autograd::tape().backward(ref);
  Tensor ref_logits;
  {
    autograd::NoGrad ng;
    ref_logits = one.logits(tokens).value();
  }
  const int t = 2;
  const size_t P = one.parameters().size();
  std::vector<float> loss(t);
  std::vector<Tensor> logits(t);
  std::vector<std::vector<Tensor>> grads(t);
  std::vector<int64_t> wte_rows(t);
  gannet::testing::ThreadGroup(t).run([&](dist::Communicator& g) {
    models::Gpt m(tiny_gpt(V));
    m.init(13);
    dist::TensorParallel tp(m, g);
    wte_rows[(size_t)g.rank()] = m.token_embedding().value().dim(0);
    Var l = m.loss(tokens, targets);
    loss[(size_t)g.rank()] = l.value().f32()[0];
    autograd::tape().backward(l);
    for (size_t i = 0; i < P; ++i) {  // whole gradients, gathered from the slices
      const Tensor& local = m.parameters()[i].var.grad();
      Tensor whole = Tensor::empty(one.parameters()[i].var.value().shape());
      if (tp.owns(i)) tp.gather(i, local, whole);
      else whole.copy_from(local);
      grads[(size_t)g.rank()].push_back(whole);
    }
    autograd::NoGrad ng;
    logits[(size_t)g.rank()] = m.logits(tokens).value();
  });
  for (int r = 0; r < t; ++r) {
    SCOPED_TRACE(str("rank ", r));
    EXPECT_EQ(wte_rows[(size_t)r], V / t);
    EXPECT_NEAR(loss[(size_t)r], ref.value().f32()[0], 1e-6 * ref.value().f32()[0]);
    ASSERT_EQ(logits[(size_t)r].shape(), ref_logits.shape());
    for (int64_t i = 0; i < ref_logits.numel(); ++i)
      ASSERT_NEAR(logits[(size_t)r].f32()[i], ref_logits.f32()[i], 1e-5) << i;
    for (size_t i = 0; i < P; ++i) {
      const Tensor& want = one.parameters()[i].var.grad();
      double d = 0, n = 0;
      for (int64_t j = 0; j < want.numel(); ++j) {
        d += std::pow((double)grads[(size_t)r][i].f32()[j] - want.f32()[j], 2);
        n += std::pow((double)want.f32()[j], 2);
      }
      EXPECT_LT(std::sqrt(d / std::max(n, 1e-30)), 1e-5) << one.parameters()[i].name;
    }
  }
}

TEST(VocabParallel, VocabularyThatDoesNotSplitIsAClearError) {
  try {
    gannet::testing::ThreadGroup(2).run([](dist::Communicator& g) {
      models::Gpt m(tiny_gpt(25));
      dist::TensorParallel tp(m, g);
    });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(gannet::testing::has(e.what(), "vocab_size 25 is not a multiple of parallel.tensor 2")) << e.what();
  }
  // Without vocabulary parallelism the table stays whole.
  gannet::testing::ThreadGroup(2).run([](dist::Communicator& g) {
    models::Gpt m(tiny_gpt(25));
    dist::TensorParallel tp(m, g, dist::TensorParallelOptions{false, false});
    EXPECT_EQ(m.token_embedding().value().dim(0), 25);
    EXPECT_FALSE(m.vocab_parallel());
  });
}

}  // namespace
