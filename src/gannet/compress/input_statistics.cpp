#include "gannet/compress/input_statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gannet/autograd/tape.h"
#include "gannet/compress/layerwise_gpt.h"
#include "gannet/compress/quantizer.h"
#include "gannet/compress/simulated_quant.h"

namespace gannet::compress {

namespace {
// Running sums of one product's input over the batches.
struct Accumulator {
  std::vector<float> channel_max;
  int64_t tokens = 0;
  double balance = 0, energy = 0, err8 = 0, err4 = 0, err4a = 0;

  void add(const Tensor& x) {
    const int64_t M = x.dim(0), K = x.dim(1);
    if (channel_max.empty()) channel_max.assign((size_t)K, 0.f);
    const float* X = x.f32();
    std::vector<float> q8((size_t)(M * K)), q4((size_t)(M * K)), q4a((size_t)(M * K));
    fake_quantize_activations(X, M, K, io::ActivationQuant{true, 0.f, 8, false}, q8.data());
    fake_quantize_activations(X, M, K, io::ActivationQuant{true, 0.f, 4, false}, q4.data());
    fake_quantize_activations(X, M, K, io::ActivationQuant{true, 0.f, 4, true}, q4a.data());
    for (int64_t m = 0; m < M; ++m) {
      float lo = 0.f, hi = 0.f;
      for (int64_t k = 0; k < K; ++k) {
        const float v = X[m * K + k];
        channel_max[(size_t)k] = std::max(channel_max[(size_t)k], std::fabs(v));
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        const size_t i = (size_t)(m * K + k);
        energy += (double)v * v;
        err8 += ((double)v - q8[i]) * ((double)v - q8[i]);
        err4 += ((double)v - q4[i]) * ((double)v - q4[i]);
        err4a += ((double)v - q4a[i]) * ((double)v - q4a[i]);
      }
      const float wide = std::max(-lo, hi);
      balance += wide > 0.f ? std::min(-lo, hi) / wide : 1.0;
    }
    tokens += M;
  }

  InputStatistics finish(const std::string& product) const {
    InputStatistics s;
    s.product = product;
    s.tokens = tokens;
    s.channels = (int64_t)channel_max.size();
    s.max_abs = *std::max_element(channel_max.begin(), channel_max.end());
    std::vector<float> sorted = channel_max;
    std::nth_element(sorted.begin(), sorted.begin() + (long)sorted.size() / 2, sorted.end());
    s.median_channel_max = sorted[sorted.size() / 2];
    std::vector<int64_t> order(channel_max.size());
    std::iota(order.begin(), order.end(), 0);
    const size_t top = std::min<size_t>(3, order.size());
    std::partial_sort(order.begin(), order.begin() + (long)top, order.end(),
                      [&](int64_t a, int64_t b) { return channel_max[(size_t)a] > channel_max[(size_t)b]; });
    s.top_channels.assign(order.begin(), order.begin() + (long)top);
    s.balance = balance / (double)tokens;
    const double e = energy > 0 ? energy : 1.0;
    s.error_int8 = err8 / e;
    s.error_int4 = err4 / e;
    s.error_int4_asym = err4a / e;
    return s;
  }
};
}  // namespace

std::vector<InputStatistics> input_statistics(const io::GptWeights& model, const std::vector<Tensor>& batches) {
  check_calibration_batches(batches, model.config);
  autograd::NoGrad ng;
  LayerwiseGpt m(model);
  const int64_t L = model.config.n_layer;
  std::vector<Accumulator> acc((size_t)(L * 4));
  for (const Tensor& tokens : batches) {
    const int64_t B = tokens.dim(0), T = tokens.dim(1);
    Var x = m.embed(tokens);
    for (int64_t l = 0; l < L; ++l) {
      const auto inputs = block_product_inputs(m.block(l), x, B, T);
      for (size_t i = 0; i < inputs.size(); ++i) acc[(size_t)l * 4 + i].add(inputs[i]);
      x = m.block(l).forward(x, B, T, true, Tensor());
    }
  }
  std::vector<InputStatistics> out;
  for (int64_t l = 0; l < L; ++l)
    for (size_t i = 0; i < kBlockProducts.size(); ++i)
      out.push_back(acc[(size_t)l * 4 + i].finish(str("h.", l, ".", kBlockProducts[i], ".weight")));
  return out;
}

}  // namespace gannet::compress
