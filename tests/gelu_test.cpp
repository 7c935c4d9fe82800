#include "gannet/kernels/gelu.h"

#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

static void run_isa(Isa isa, const float* x, float* y, int64_t n, bool backward, const float* dy) {
  if (isa == Isa::avx512) backward ? k::avx512::gelu_backward(x, dy, y, n) : k::avx512::gelu_forward(x, y, n);
  else backward ? k::avx2::gelu_backward(x, dy, y, n) : k::avx2::gelu_forward(x, y, n);
}

TEST(Gelu, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  for (Isa isa : vector_isas()) {
    for (int64_t n : awkward_sizes()) {
      auto x = random_vec(n, n, 3.f);
      auto dy = random_vec(n, n + 1);
      std::vector<float> want(n), got(n);
      k::ref::gelu_forward(x.data(), want.data(), n);
      run_isa(isa, x.data(), got.data(), n, false, nullptr);
      expect_close(got, want, 1e-5f, 1e-6f, isa_name(isa));
      k::ref::gelu_backward(x.data(), dy.data(), want.data(), n);
      run_isa(isa, x.data(), got.data(), n, true, dy.data());
      expect_close(got, want, 1e-5f, 1e-6f, isa_name(isa));
    }
  }
}

TEST(Gelu, BackwardMatchesFiniteDifferences) {
  // Central differences in double on the reference formula's forward.
  auto gelu_d = [](double v) {
    return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  };
  auto x = random_vec(101, 3, 2.f);
  std::vector<float> ones(101, 1.f), dx(101);
  k::gelu_backward(x.data(), ones.data(), dx.data(), 101);
  for (int i = 0; i < 101; ++i) {
    double h = 1e-5, fd = (gelu_d(x[i] + h) - gelu_d(x[i] - h)) / (2 * h);
    EXPECT_NEAR(dx[i], fd, 1e-5 + 1e-5 * std::fabs(fd));
  }
}
