#include "gannet/gnn/product_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gannet/core/error.h"
#include "gannet/core/format_number.h"
#include "gannet/core/parallel_errors.h"

namespace gannet::gnn {

namespace {
// Rows per encoding work item: a multiple of CentroidSet::kBlockRows, fixed (not a function of
// the thread count), so that the codes are the same on any number of threads.
constexpr int64_t kEncodeBlock = 1024;
}  // namespace

ProductQuantizer::ProductQuantizer(int64_t dim, int64_t subvectors, int64_t centroids, std::vector<float> codebooks)
    : dim_(dim), subvectors_(subvectors), centroids_(centroids), codebooks_(std::move(codebooks)) {
  GANNET_CHECK(dim >= 1 && subvectors >= 1 && dim % subvectors == 0, "product quantizer: dimension ", dim,
               " is not a positive multiple of the sub-vector count ", subvectors);
  GANNET_CHECK(centroids >= 1 && centroids <= kMaxCentroids, "product quantizer: ", centroids,
               " centroids per sub-space, expected 1..", kMaxCentroids);
  GANNET_CHECK((int64_t)codebooks_.size() == centroids * dim, "product quantizer: codebooks hold ", codebooks_.size(),
               " floats, expected ", centroids * dim, " (", subvectors, " x ", centroids, " x ", sub_dim(), ")");
  sets_.reserve((size_t)subvectors);
  for (int64_t m = 0; m < subvectors; ++m) sets_.emplace_back(centroid(m, 0), centroids, sub_dim());
}

ProductQuantizer ProductQuantizer::train(const float* sample, int64_t n, int64_t dim, const PqOptions& opt) {
  GANNET_CHECK(n >= 1, "product quantizer: no rows to train on");
  GANNET_CHECK(dim >= 1 && opt.subvectors >= 1 && dim % opt.subvectors == 0, "product quantizer: dimension ", dim,
               " is not a positive multiple of the sub-vector count ", opt.subvectors);
  const int64_t ds = dim / opt.subvectors;
  std::vector<float> codebooks((size_t)(opt.centroids * dim));
  std::vector<double> inertia;
  for (int64_t m = 0; m < opt.subvectors; ++m) {
    KMeansOptions km{opt.centroids, opt.iterations, opt.seed + (uint64_t)m};
    KMeansResult r = kmeans(sample + m * ds, n, ds, dim, km);
    std::copy(r.centroids.begin(), r.centroids.end(), codebooks.begin() + m * opt.centroids * ds);
    inertia.push_back(r.inertia.empty() ? 0.0 : r.inertia.back());
    if (opt.progress)
      opt.progress(str("k-means sub-space ", m + 1, "/", opt.subvectors, ": ", r.inertia.size(),
                       " assignment steps, inertia per row ", format_number("%.4g", inertia.back() / (double)n)));
  }
  ProductQuantizer pq(dim, opt.subvectors, opt.centroids, std::move(codebooks));
  pq.training_inertia_ = std::move(inertia);
  return pq;
}

void ProductQuantizer::encode(const float* matrix, int64_t ld, const int32_t* rows, int64_t n, uint8_t* codes) const {
  GANNET_CHECK(n >= 0 && ld >= dim_ && (n == 0 || (matrix && codes)), "product quantizer encode: bad arguments n=", n,
               " ld=", ld);
  const int64_t blocks = (n + kEncodeBlock - 1) / kEncodeBlock, M = subvectors_, ds = sub_dim();
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    errors.run([&] {
      const int64_t r0 = b * kEncodeBlock, count = std::min(kEncodeBlock, n - r0);
      thread_local std::vector<float> block;  // the block's rows, contiguous
      thread_local std::vector<int32_t> index;
      block.resize((size_t)(count * dim_));
      index.resize((size_t)count);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t row = rows ? rows[r0 + i] : r0 + i;
        std::memcpy(block.data() + i * dim_, matrix + row * ld, (size_t)dim_ * sizeof(float));
      }
      for (int64_t m = 0; m < M; ++m) {
        sets_[m].assign(block.data() + m * ds, count, dim_, index.data(), nullptr);
        for (int64_t i = 0; i < count; ++i) codes[(r0 + i) * M + m] = (uint8_t)index[i];
      }
    });
  }
  errors.rethrow();
}

void ProductQuantizer::decode(const uint8_t* codes, int64_t n, float* out) const {
  const int64_t M = subvectors_, ds = sub_dim();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t m = 0; m < M; ++m) {
      const int64_t c = codes[i * M + m];
      GANNET_CHECK(c < centroids_, "product quantizer decode: code ", c, " of row ", i, " sub-space ", m,
                   " is not below ", centroids_);
      std::memcpy(out + i * dim_ + m * ds, centroid(m, c), (size_t)ds * sizeof(float));
    }
  }
}

Int8Codebooks quantize_codebooks(const ProductQuantizer& pq) {
  const int64_t M = pq.subvectors(), K = pq.centroids(), ds = pq.sub_dim();
  Int8Codebooks q;
  q.values.resize((size_t)(M * K * ds));
  q.scales.resize((size_t)(M * ds));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t j = 0; j < ds; ++j) {
      float amax = 0.f;
      for (int64_t c = 0; c < K; ++c) amax = std::max(amax, std::fabs(pq.centroid(m, c)[j]));
      const float scale = amax / 127.f;
      q.scales[m * ds + j] = scale;
      for (int64_t c = 0; c < K; ++c) {
        const float r = scale > 0.f ? std::nearbyint(pq.centroid(m, c)[j] / scale) : 0.f;
        q.values[(m * K + c) * ds + j] = (int8_t)std::clamp(r, -127.f, 127.f);
      }
    }
  }
  return q;
}

ProductQuantizer dequantize_codebooks(int64_t dim, int64_t subvectors, int64_t centroids, const Int8Codebooks& q) {
  GANNET_CHECK(dim >= 1 && subvectors >= 1 && dim % subvectors == 0 &&
                   (int64_t)q.values.size() == centroids * dim && (int64_t)q.scales.size() == dim,
               "product quantizer: 8-bit codebooks of ", q.values.size(), " values and ", q.scales.size(),
               " scales do not fit ", subvectors, " x ", centroids, " x ", dim, " / ", subvectors);
  const int64_t ds = dim / subvectors;
  std::vector<float> cb(q.values.size());
  for (size_t i = 0; i < cb.size(); ++i) {
    const int64_t m = (int64_t)i / (centroids * ds), j = (int64_t)i % ds;
    cb[i] = (float)q.values[i] * q.scales[m * ds + j];
  }
  return ProductQuantizer(dim, subvectors, centroids, std::move(cb));
}

}  // namespace gannet::gnn
