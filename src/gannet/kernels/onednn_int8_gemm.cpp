#include "gannet/kernels/onednn_int8_gemm.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

#include "gannet/core/error.h"

namespace gannet::kernels {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct OnednnInt8Matmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul primitive;
  memory weights;  // in pd's layout
  memory src, dst;  // their handles set per call
};

OnednnInt8Matmul::OnednnInt8Matmul(int64_t M, int64_t N, int64_t K, const int8_t* B) : impl_(std::make_unique<Impl>()) {
  GANNET_CHECK(M >= 1 && N >= 1 && K >= 1, "oneDNN int8 matmul: M ", M, ", N ", N, ", K ", K, " must be >= 1");
  Impl& m = *impl_;
  try {
    // Logical shapes: src [M, K], weights [K, N], dst [M, N]; B stored [N, K] is weights in `ba`.
    const memory::desc src_md({M, K}, dt::u8, tag::ab), dst_md({M, N}, dt::s32, tag::ab);
    const memory::desc any_weights({K, N}, dt::s8, tag::any), user_weights({K, N}, dt::s8, tag::ba);
    m.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, any_weights, dst_md), m.engine);
    m.primitive = dnnl::matmul(m.pd);
    memory user(user_weights, m.engine, const_cast<int8_t*>(B));
    m.weights = memory(m.pd.weights_desc(), m.engine);
    dnnl::reorder(user, m.weights).execute(m.stream, user, m.weights);
    m.stream.wait();
    m.src = memory(m.pd.src_desc(), m.engine, nullptr);
    m.dst = memory(m.pd.dst_desc(), m.engine, nullptr);
  } catch (const dnnl::error& e) {
    fail(str("oneDNN int8 matmul for M ", M, ", N ", N, ", K ", K, " failed: ", e.what()));
  }
}

OnednnInt8Matmul::~OnednnInt8Matmul() = default;

void OnednnInt8Matmul::run(const uint8_t* A, int32_t* C) const {
  Impl& m = *impl_;
  try {
    m.src.set_data_handle(const_cast<uint8_t*>(A));
    m.dst.set_data_handle(C);
    m.primitive.execute(m.stream, {{DNNL_ARG_SRC, m.src}, {DNNL_ARG_WEIGHTS, m.weights}, {DNNL_ARG_DST, m.dst}});
    m.stream.wait();
  } catch (const dnnl::error& e) {
    fail(str("oneDNN int8 matmul failed: ", e.what()));
  }
}

std::string OnednnInt8Matmul::implementation() const {
  const memory::desc w = impl_->pd.weights_desc();
  const bool plain = w == memory::desc(w.dims(), dt::s8, tag::ab) || w == memory::desc(w.dims(), dt::s8, tag::ba);
  return std::string(impl_->pd.impl_info_str()) + (plain ? ", weights in a plain layout" : ", weights blocked");
}

bool OnednnInt8Matmul::exact_at_full_range() {
  static const bool exact = [] {
    constexpr int64_t K = 64;  // 255 x -128, twice, is -65280: past int16 in every pair
    const std::vector<uint8_t> a(K, 255);
    const std::vector<int8_t> b(K, -128);
    int32_t c = 0;
    OnednnInt8Matmul(1, 1, K, b.data()).run(a.data(), &c);
    return c == 255 * -128 * (int32_t)K;
  }();
  return exact;
}

double measure_onednn_int8_gops(int64_t n, int runs) {
  GANNET_CHECK(n >= 1 && runs >= 1, "measure_onednn_int8_gops: n and runs must be >= 1");
  std::vector<uint8_t> a(n * n, 3);
  std::vector<int8_t> b(n * n, -2);
  std::vector<int32_t> c(n * n);
  const OnednnInt8Matmul product(n, n, n, b.data());
  std::vector<double> t;
  for (int r = 0; r <= runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    product.run(a.data(), c.data());
    if (r > 0) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return 2.0 * (double)n * n * n / t[t.size() / 2] / 1e9;
}

}  // namespace gannet::kernels
