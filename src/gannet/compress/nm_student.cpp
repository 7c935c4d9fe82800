#include "gannet/compress/nm_student.h"

#include <algorithm>
#include <cmath>

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/straight_through.h"
#include "gannet/compress/nm_mask.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/core/error.h"

namespace gannet::compress {

namespace {
using autograd::Var;

// The mask keeping the `kept` largest |W * previous| of every run of m (all of them at kept == m).
void magnitude_mask(const Tensor& W, int kept, int m, Tensor& mask) {
  const int64_t N = W.dim(0), K = W.dim(1);
  float* out = mask.f32();
  if (kept == m) {
    for (int64_t i = 0; i < N * K; ++i) out[i] = 1.f;  // nothing pruned yet (gradual's first steps)
    return;
  }
  std::vector<float> masked((size_t)(N * K));
  for (int64_t i = 0; i < N * K; ++i) masked[(size_t)i] = W.f32()[i] * out[i];
  const std::vector<uint8_t> keep = nm_mask(masked.data(), N, K, NmPattern{kept, m});
  for (int64_t i = 0; i < N * K; ++i) out[i] = keep[(size_t)i] ? 1.f : 0.f;
}
}  // namespace

NmStudent::NmStudent(const NmConfig& config, const nn::Transformer& student)
    : config_(config), student_(student), prepared_step_(Tensor::full({1}, -1.f)) {
  const int64_t L = student.n_layer();
  const auto forms = config.resolve(L);
  products_.resize((size_t)L);
  for (int64_t l = 0; l < L; ++l) {
    Layer& layer = products_[(size_t)l];
    layer.forms = forms[(size_t)l];
    for (int p = 0; p < 4; ++p) {
      if (!layer.forms[(size_t)p].pattern) continue;
      const Shape shape = latent(l, p).shape();
      GANNET_CHECK(shape[1] % layer.forms[(size_t)p].pattern->m == 0, "h.", l, ".", kBlockProducts[(size_t)p],
                   ": input width ", shape[1], " is not a multiple of the pattern's run of ",
                   layer.forms[(size_t)p].pattern->m);
      Sparse& s = layer.sparse[(size_t)p];
      s.mask = Tensor::full(shape, 1.f);
      if (config.method == PruneMethod::admm) s.z = Tensor::zeros(shape), s.u = Tensor::zeros(shape);
    }
  }
}

const Tensor& NmStudent::latent(int64_t layer, int p) const {
  return student_.block(layer).product(p).weight.value();
}

bool NmStudent::masked(int64_t layer, int p) const {
  if (!products_[(size_t)layer].forms[(size_t)p].pattern || step() < 0) return false;
  return step() >= (config_.method == PruneMethod::admm ? config_.offset_end : config_.offset);
}

bool NmStudent::in_admm_phase() const {
  return config_.method == PruneMethod::admm && step() >= config_.offset && step() < config_.offset_end;
}

template <class F>
void NmStudent::each_admm_product(const F& f) const {
  for (size_t l = 0; l < products_.size(); ++l)
    for (int p = 0; p < 4; ++p)
      if (products_[l].sparse[(size_t)p].z.defined()) f((int64_t)l, p, products_[l].sparse[(size_t)p]);
}

Var NmStudent::weight(int64_t layer, int p, const Var& w) const {
  const NmProductForm& form = products_[(size_t)layer].forms[(size_t)p];
  const WeightQuantSpec spec = form.quant;
  if (form.pattern && in_admm_phase() && config_.forward == AdmmForward::projected) {
    const NmPattern pattern = *form.pattern;
    return autograd::straight_through(w, [&spec, pattern](const Tensor& x, Tensor& y) {
      std::copy(x.f32(), x.f32() + x.numel(), y.f32());
      nm_project(y.f32(), x.dim(0), x.dim(1), pattern);
      fake_quantize_weights(y.f32(), x.dim(0), x.dim(1), spec, y.f32());
    });
  }
  if (!masked(layer, p)) return fake_quantize_weight(w, spec);
  const Tensor& mask = products_[(size_t)layer].sparse[(size_t)p].mask;
  return autograd::straight_through_masked(w, mask, [&spec, &mask](const Tensor& x, Tensor& y) {
    const int64_t n = x.numel();
    const float *a = x.f32(), *m = mask.f32();
    float* out = y.f32();
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] * m[i];
    fake_quantize_weights(out, x.dim(0), x.dim(1), spec, out);
  });
}

float NmStudent::rho_at(int64_t step) const {
  return config_.rho * std::pow(config_.rho_growth, (float)((step - config_.offset) / config_.stride));
}

void NmStudent::prepare(int64_t step) {
  const bool done = step == this->step();
  GANNET_CHECK(step >= this->step(), "nm student: step ", step, " after step ", this->step());
  if (!done) {
    prepared_step_.f32()[0] = (float)step;
    act(step);
  }
  if (!in_admm_phase()) return;
  refresh_target();  // also after a resume, which loaded Z and U
  if (!done && config_.penalty == AdmmPenalty::proximal) proximal_step();
}

// Z - U, if Z or U changed since it was taken.
void NmStudent::refresh_target() {
  if (!target_stale_) return;
  for (Layer& layer : products_)
    for (Sparse& s : layer.sparse)
      if (s.z.defined()) {
        if (!s.target.defined()) s.target = Tensor::empty(s.z.shape());
        for (int64_t i = 0; i < s.z.numel(); ++i) s.target.f32()[i] = s.z.f32()[i] - s.u.f32()[i];
      }
  target_stale_ = false;
}

// W <- argmin_V rho / 2 ||V - (Z - U)||^2 + 1 / 2 ||V - W||^2 = (W + rho (Z - U)) / (1 + rho).
void NmStudent::proximal_step() {
  const float rho = rho_at(step()), keep = 1.f / (1.f + rho), pull = rho / (1.f + rho);
  each_admm_product([&](int64_t layer, int p, const Sparse& s) {
    const Tensor& W = latent(layer, p);
    float* w = W.f32();
    const float* t = s.target.f32();
    for (int64_t i = 0; i < W.numel(); ++i) w[i] = keep * w[i] + pull * t[i];
  });
}

// The schedule's event at the start of `step`, if any.
void NmStudent::act(int64_t step) {
  const int64_t from = config_.offset, to = config_.offset_end;
  switch (config_.method) {
    case PruneMethod::l1:
      if (step == from) set_masks(1.0);
      return;
    case PruneMethod::gradual:
      if (step >= from && step <= to && ((step - from) % config_.stride == 0 || step == to)) {
        const double left = 1.0 - (double)(step - from) / (double)(to - from);
        set_masks(1.0 - left * left * left);
      }
      return;
    case PruneMethod::admm:
      if (step == from) admm_update(true);
      else if (step > from && step < to && (step - from) % config_.stride == 0) admm_update(false);
      if (step == to) set_masks(1.0);
      return;
  }
}

// Every sparse product's mask with `share` of the m - n prunable entries of each run pruned (1:
// the n:m mask), by magnitude among the entries its mask keeps so far (all of them until the
// first pruning).
void NmStudent::set_masks(double share) {
  for (size_t l = 0; l < products_.size(); ++l)
    for (int p = 0; p < 4; ++p) {
      const auto& pattern = products_[l].forms[(size_t)p].pattern;
      if (!pattern) continue;
      const int k = pattern->m - (int)std::lround((double)(pattern->m - pattern->n) * share);
      magnitude_mask(latent((int64_t)l, p), k, pattern->m, products_[l].sparse[(size_t)p].mask);
    }
}

// Z = proj(W + U), then U += W - Z (first: U = 0, Z = proj(W)).
void NmStudent::admm_update(bool first) {
  target_stale_ = true;
  each_admm_product([&](int64_t layer, int p, const Sparse& s) {
    const Tensor& W = latent(layer, p);
    const int64_t n = W.numel();
    float *z = s.z.f32(), *u = s.u.f32();
    const float* w = W.f32();
    if (first)
      for (int64_t i = 0; i < n; ++i) u[i] = 0.f;
    for (int64_t i = 0; i < n; ++i) z[i] = w[i] + u[i];
    nm_project(z, W.dim(0), W.dim(1), *products_[(size_t)layer].forms[(size_t)p].pattern);
    for (int64_t i = 0; i < n; ++i) u[i] += w[i] - z[i];
  });
}

Var NmStudent::penalty() const {
  if (!in_admm_phase() || config_.penalty != AdmmPenalty::loss) return {};
  const float rho = rho_at(step());
  Var total;
  each_admm_product([&](int64_t layer, int p, const Sparse& s) {
    const Var& w = student_.block(layer).product(p).weight;
    // mse is the mean of the squares: times numel / 2 for rho / 2 times the sum.
    Var term = autograd::scale(autograd::mse(w, s.target), rho * (float)s.target.numel() / 2.f);
    total = total.defined() ? autograd::add(total, term) : term;
  });
  return total;
}

double NmStudent::penalty_value() const {
  if (!in_admm_phase() || target_stale_) return 0.0;
  double sum = 0;
  each_admm_product([&](int64_t layer, int p, const Sparse& s) {
    const float *w = latent(layer, p).f32(), *t = s.target.f32();
    for (int64_t i = 0; i < s.target.numel(); ++i) sum += (double)(w[i] - t[i]) * (w[i] - t[i]);
  });
  return rho_at(step()) / 2.0 * sum;
}

double NmStudent::distance_from_pattern() const {
  double sum = 0;
  int count = 0;
  for (size_t l = 0; l < products_.size(); ++l)
    for (int p = 0; p < 4; ++p) {
      const auto& pattern = products_[l].forms[(size_t)p].pattern;
      if (!pattern) continue;
      const Tensor& W = latent((int64_t)l, p);
      std::vector<float> w(W.f32(), W.f32() + W.numel());  // as the forward uses it
      if (masked((int64_t)l, p)) {
        const float* m = products_[l].sparse[(size_t)p].mask.f32();
        for (size_t i = 0; i < w.size(); ++i) w[i] *= m[i];
      }
      // The projection drops the entries outside the n:m mask of |w|.
      const std::vector<uint8_t> keep = nm_mask(w.data(), W.dim(0), W.dim(1), *pattern);
      double w2 = 0, d2 = 0;
      for (size_t i = 0; i < w.size(); ++i) {
        w2 += (double)w[i] * w[i];
        if (!keep[i]) d2 += (double)w[i] * w[i];
      }
      sum += w2 > 0 ? std::sqrt(d2 / w2) : 0.0;
      ++count;
    }
  return count ? sum / count : 0.0;
}

std::vector<std::pair<std::string, Tensor>> NmStudent::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out{{"nm.step", prepared_step_}};
  target_stale_ = true;  // a checkpoint may load Z and U into these tensors
  for (size_t l = 0; l < products_.size(); ++l)
    for (int p = 0; p < 4; ++p) {
      const Sparse& s = products_[l].sparse[(size_t)p];
      if (!s.mask.defined()) continue;
      const std::string name = str("h.", l, ".", kBlockProducts[(size_t)p]);
      out.emplace_back("nm.mask." + name, s.mask);
      if (s.z.defined()) out.emplace_back("admm.z." + name, s.z), out.emplace_back("admm.u." + name, s.u);
    }
  return out;
}

}  // namespace gannet::compress
