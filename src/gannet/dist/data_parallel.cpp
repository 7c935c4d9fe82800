#include "gannet/dist/data_parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "gannet/core/error.h"
#include "gannet/core/parse_number.h"
#include "gannet/kernels/adamw.h"

namespace gannet::dist {

DataParallel::DataParallel(const nn::ParameterList& params, const BucketPlan& plan, Communicator& data,
                           Communicator* expert_data, Communicator* expert, int zero_stage,
                           const optim::AdamWOptions& adamw, const std::vector<bool>& tensor_sliced,
                           Communicator* tensor)
    : params_(params), plan_(plan), data_(data), expert_(expert), tensor_(tensor), tensor_sliced_(tensor_sliced),
      stage_(zero_stage), opt_(adamw) {
  if (tensor_sliced_.empty()) tensor_sliced_.assign(params.size(), false);
  GANNET_CHECK(tensor_sliced_.size() == params.size(), "data parallel: ", tensor_sliced_.size(),
               " tensor-parallel flags for ", params.size(), " parameters");
  const std::vector<int>& bucket_of = plan.bucket_of;
  GANNET_CHECK(zero_stage >= 0 && zero_stage <= 2, "zero_optimization.stage ", zero_stage,
               " is not supported (0, 1 or 2)");
  GANNET_CHECK(bucket_of.size() == params.size(), "data parallel: ", bucket_of.size(), " bucket ids for ",
               params.size(), " parameters");
  int nb = 0;
  for (int b : bucket_of) {
    GANNET_CHECK(b >= 0, "data parallel: negative bucket id");
    nb = std::max(nb, b + 1);
  }
  buckets_.resize((size_t)nb);
  GANNET_CHECK(plan.expert.size() == (size_t)nb, "data parallel: expert flags for ", plan.expert.size(), " of ", nb,
               " buckets");
  for (size_t i = 0; i < params.size(); ++i) {
    Bucket& b = buckets_[(size_t)bucket_of[i]];
    b.params.push_back(i);
    b.offset.push_back(b.size);
    if (tensor_sliced_[i]) b.sliced_ranges.insert(b.sliced_ranges.end(), {b.size, b.size + params[i].var.value().numel()});
    b.size += params[i].var.value().numel();
  }
  for (size_t k = 0; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    GANNET_CHECK(!b.params.empty(), "data parallel: bucket ", k, " holds no parameter");
    b.expert = plan.expert[k];
    b.group = b.expert && expert_data ? expert_data : &data;
  }
  layout_shards();
  if (stage_ == 0) full_ = std::make_unique<optim::AdamW>(params_, opt_);
}

void DataParallel::reduce_moe_over_tensor_group(Communicator& tensor_data, Communicator& tensor_expert_data) {
  GANNET_CHECK(step_count() == 0, "data parallel: the MoE reduction groups change before the first step only");
  for (size_t k = 0; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    if (b.expert) b.group = &tensor_expert_data;
    else if (plan_.moe_shared[k]) b.group = &tensor_data;
    else continue;
    b.world_wide = true;
  }
  layout_shards();
}

void DataParallel::layout_shards() {
  for (size_t k = 0; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    const int N = b.group->size(), r = b.group->rank();
    b.owned.clear();
    b.chunk = (b.size + N - 1) / N;
    b.padded = b.chunk * N;
    const int64_t lo = r * b.chunk, hi = std::min(b.size, lo + b.chunk);
    for (size_t j = 0; j < b.params.size(); ++j) {
      const int64_t p_lo = b.offset[j], p_hi = p_lo + params_[b.params[j]].var.value().numel();
      const int64_t s = std::max(lo, p_lo), e = std::min(hi, p_hi);
      if (s < e) b.owned.push_back({b.params[j], s - p_lo, s - lo, e - s});
    }
    if (stage_ >= 1) {
      b.m = Tensor::zeros({b.chunk});
      b.v = Tensor::zeros({b.chunk});
    }
    if (stage_ == 2) b.grad = Tensor::zeros({b.chunk});
  }
  allocate_staging();
}

int64_t DataParallel::chunk_tile(const Bucket& b, int64_t tile) const {
  if (tile <= 0) return b.chunk;
  return std::min(b.chunk, std::max<int64_t>(1, tile / b.group->size()));
}

void DataParallel::allocate_staging() {
  int64_t staging = 0, chunk_out = 0;
  for (const Bucket& b : buckets_) {
    const int64_t N = b.group->size();
    if (stage_ == 2) {
      staging = std::max(staging, N * chunk_tile(b, reduce_tile_));
      chunk_out = std::max(chunk_out, chunk_tile(b, reduce_tile_));
    } else {
      staging = std::max(staging, reduce_tile_ > 0 ? std::min(b.padded, reduce_tile_) : b.padded);
    }
    staging = std::max(staging, N * chunk_tile(b, gather_tile_));
  }
  for (int s = 0; s < 2; ++s) {
    staging_[s] = Tensor::empty({staging});
    chunk_out_[s] = stage_ == 2 ? Tensor::empty({chunk_out}) : Tensor();
  }
}

void DataParallel::set_tiles(int64_t reduce_tile, int64_t gather_tile) {
  GANNET_CHECK(reduce_tile >= 0 && gather_tile >= 0, "data parallel: tile sizes must not be negative");
  GANNET_CHECK(in_flight_.empty(), "data parallel: tiles change with no reduction in flight");
  reduce_tile_ = reduce_tile;
  gather_tile_ = gather_tile;
  allocate_staging();
}

int64_t DataParallel::staging_bytes() const {
  int64_t n = 0;
  for (int s = 0; s < 2; ++s) n += staging_[s].numel() + (chunk_out_[s].defined() ? chunk_out_[s].numel() : 0);
  return n * 4;
}

template <class TensorOf>
void DataParallel::copy_range(const Bucket& b, int64_t lo, int64_t hi, float* buf, bool to_buf,
                              TensorOf tensor_of) const {
  if (to_buf) std::memset(buf, 0, (size_t)(hi - lo) * 4);
  for (size_t j = 0; j < b.params.size(); ++j) {
    const int64_t p_lo = b.offset[j], p_hi = p_lo + params_[b.params[j]].var.value().numel();
    const int64_t s = std::max(lo, p_lo), e = std::min(hi, p_hi);
    if (s >= e) continue;
    Tensor& t = tensor_of(b.params[j]);
    if (to_buf) {
      if (t.defined()) std::memcpy(buf + (s - lo), t.f32() + (s - p_lo), (size_t)(e - s) * 4);
    } else {
      std::memcpy(t.f32() + (s - p_lo), buf + (s - lo), (size_t)(e - s) * 4);
    }
  }
}

template <class TensorOf>
void DataParallel::copy_chunk_range(const Bucket& b, int64_t c, int64_t n, float* buf, bool to_buf,
                                    TensorOf tensor_of) const {
  for (int r = 0; r < b.group->size(); ++r) {
    const int64_t lo = r * b.chunk + c;
    copy_range(b, lo, lo + n, buf + r * n, to_buf, tensor_of);
  }
}

void DataParallel::begin_micro_batch(int micro, int count) {
  GANNET_CHECK(in_flight_.empty(), "data parallel: a micro-batch began with reductions in flight");
  GANNET_CHECK(micro >= 0 && micro < count, "data parallel: micro-batch ", micro, " of ", count);
  first_micro_ = micro == 0;
  for (Bucket& b : buckets_) b.launched = false;
  if (stage_ == 2) {
    for (const auto& p : params_) p.var.grad() = Tensor();  // written fresh by the backward pass
    reduce_now_ = true;
  } else {
    if (first_micro_) nn::zero_grad(params_);
    reduce_now_ = micro == count - 1;
  }
}

void DataParallel::bucket_ready(int b) {
  GANNET_CHECK(b >= 0 && b < (int)buckets_.size(), "data parallel: no bucket ", b);
  if (!reduce_now_) return;
  GANNET_CHECK(!buckets_[(size_t)b].launched, "data parallel: bucket ", b, " reported twice in one backward pass");
  launch(b);
}

void DataParallel::block_done(int64_t block) {
  GANNET_CHECK(block >= 0 && block < (int64_t)plan_.of_block.size(), "data parallel: no block ", block);
  for (int b : plan_.of_block[(size_t)block]) bucket_ready(b);
}

void DataParallel::launch(int k) {
  Bucket& b = buckets_[(size_t)k];
  b.launched = true;
  if (stage_ == 2) {
    const int64_t t = chunk_tile(b, reduce_tile_);
    for (int64_t c = 0; c < b.chunk; c += t) launch_tile(k, c, std::min(b.chunk, c + t));
    for (size_t i : b.params) params_[i].var.grad() = Tensor();  // the shard is all this rank keeps
  } else {
    const int64_t t = reduce_tile_ > 0 ? reduce_tile_ : b.padded;
    for (int64_t lo = 0; lo < b.padded; lo += t) launch_tile(k, lo, std::min(b.padded, lo + t));
  }
}

void DataParallel::launch_tile(int k, int64_t lo, int64_t hi) {
  Bucket& b = buckets_[(size_t)k];
  if (in_flight_.size() == 2) complete_oldest();
  const int slot = slot_busy_[0] ? 1 : 0;
  slot_busy_[slot] = true;
  float* buf = staging_[slot].f32();
  auto grad_of = [this](size_t i) -> Tensor& { return params_[i].var.grad(); };
  std::unique_ptr<Request> req;
  if (stage_ == 2) {
    copy_chunk_range(b, lo, hi - lo, buf, true, grad_of);
    req = b.group->reduce_scatter_sum_async(buf, chunk_out_[slot].f32(), hi - lo);
  } else {
    copy_range(b, lo, hi, buf, true, grad_of);
    req = b.group->all_reduce_sum_async(buf, hi - lo);
  }
  in_flight_.push_back({k, slot, lo, hi, std::move(req)});
  for (InFlight& f : in_flight_) f.request->test();  // lets the transport progress
}

void DataParallel::complete_oldest() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  f.request->wait();
  Bucket& b = buckets_[(size_t)f.bucket];
  if (stage_ == 2) {
    float* acc = b.grad.f32() + f.lo;
    const float* in = chunk_out_[f.slot].f32();
    const int64_t n = f.hi - f.lo;
    if (first_micro_) std::memcpy(acc, in, (size_t)n * 4);
    else
      for (int64_t i = 0; i < n; ++i) acc[i] += in[i];
  } else {
    copy_range(b, f.lo, std::min(f.hi, b.size), staging_[f.slot].f32(), false,
               [this](size_t i) -> Tensor& { return params_[i].var.grad(); });
  }
  slot_busy_[f.slot] = false;
}

void DataParallel::end_micro_batch() {
  if (reduce_now_)
    for (size_t k = 0; k < buckets_.size(); ++k)
      if (!buckets_[k].launched) launch((int)k);
  while (!in_flight_.empty()) complete_oldest();
}

double DataParallel::grad_norm(float grad_scale) {
  // Each element once. Stage 2 shards partition the dense weights over the data group and each
  // expert's over its expert-data group, so one sum over the data group counts every element of
  // this tensor-parallel rank once; otherwise every rank holds all dense gradients and its own
  // experts' in full, and the expert group adds the other experts. Tensor-parallel slices are then
  // summed over the tensor group; what every rank of that group holds alike is counted once.
  double sums[2] = {0, 0};  // [0]: the same on every tensor-parallel rank, [1]: tensor-sliced
  double experts = 0;
  for (const Bucket& b : buckets_) {
    if (stage_ == 2) {
      // This rank's chunk [lo, lo + chunk) of the bucket, split where it meets the sliced ranges.
      const int64_t lo = (int64_t)b.group->rank() * b.chunk, hi = lo + b.chunk;
      const float* g = b.grad.f32();
      double all = kernels::sum_squares(g, b.chunk), sliced = 0;
      for (size_t j = 0; j < b.sliced_ranges.size(); j += 2) {
        const int64_t s = std::max(lo, b.sliced_ranges[j]), e = std::min(hi, b.sliced_ranges[j + 1]);
        if (s < e) sliced += kernels::sum_squares(g + (s - lo), e - s);
      }
      if (b.world_wide) sums[1] += all;  // shards spread over the tensor ranks too
      else {
        sums[0] += all - sliced;
        sums[1] += sliced;
      }
      continue;
    }
    for (size_t i : b.params) {
      const Tensor& g = params_[i].var.grad();
      const double sq = kernels::sum_squares(g.f32(), g.numel());
      if (b.expert) experts += sq;
      else sums[tensor_sliced_[i] ? 1 : 0] += sq;
    }
  }
  if (stage_ == 2) data_.all_reduce_sum(sums, 2);
  else if (expert_) expert_->all_reduce_sum(&experts, 1);
  if (tensor_) tensor_->all_reduce_sum(&sums[1], 1);
  return std::sqrt(sums[0] + sums[1] + experts) * (double)grad_scale;
}

void DataParallel::step(float lr, float grad_scale) {
  if (stage_ == 0) return full_->step(lr, grad_scale);
  ++step_;
  for (Bucket& b : buckets_) {
    for (const Segment& s : b.owned) {
      const auto& p = params_[s.param];
      const float* g = stage_ == 2 ? b.grad.f32() + s.chunk_offset : p.var.grad().f32() + s.param_offset;
      kernels::adamw_update(p.var.value().f32() + s.param_offset, g, b.m.f32() + s.chunk_offset,
                            b.v.f32() + s.chunk_offset, s.length, lr, opt_.beta1, opt_.beta2, opt_.eps,
                            p.decay ? opt_.weight_decay : 0.f, step_, grad_scale);
    }
    // Every rank's updated chunk, gathered tile by tile back into the parameters.
    float* buf = staging_[0].f32();
    auto value_of = [this](size_t i) -> Tensor& { return params_[i].var.value(); };
    const int64_t t = chunk_tile(b, gather_tile_), r = b.group->rank();
    for (int64_t c = 0; c < b.chunk; c += t) {
      const int64_t n = std::min(t, b.chunk - c);
      float* mine = buf + r * n;
      copy_range(b, r * b.chunk + c, r * b.chunk + c + n, mine, true, value_of);
      b.group->all_gather(mine, buf, n);
      copy_chunk_range(b, c, n, buf, false, value_of);
    }
  }
}

int64_t DataParallel::step_count() const { return stage_ == 0 ? full_->step_count() : step_; }

int64_t DataParallel::optimizer_state_bytes() const {
  int64_t n = 0;
  if (stage_ == 0) n = 2 * nn::count_elements(params_);
  else
    for (const Bucket& b : buckets_) n += 2 * b.chunk;
  return n * 4;
}

int64_t DataParallel::gradient_bytes() const {
  if (stage_ < 2) return nn::count_elements(params_) * 4;
  int64_t n = 0;
  for (const Bucket& b : buckets_) n += b.chunk;
  return n * 4;
}

void DataParallel::gather_state(optim::AdamW& full) {
  GANNET_CHECK(full.first_moments().size() == params_.size(), "data parallel: optimizer over ",
               full.first_moments().size(), " parameters, expected ", params_.size());
  if (stage_ == 0) {
    for (size_t i = 0; i < params_.size(); ++i) {
      full.first_moments()[i].copy_from(full_->first_moments()[i]);
      full.second_moments()[i].copy_from(full_->second_moments()[i]);
    }
    full.set_step_count(full_->step_count());
    return;
  }
  float* buf = staging_[0].f32();
  for (Bucket& b : buckets_) {
    const int64_t t = chunk_tile(b, gather_tile_);
    for (int which = 0; which < 2; ++which) {
      const Tensor& mine = which == 0 ? b.m : b.v;
      std::vector<Tensor>& out = which == 0 ? full.first_moments() : full.second_moments();
      for (int64_t c = 0; c < b.chunk; c += t) {
        const int64_t n = std::min(t, b.chunk - c);
        b.group->all_gather(mine.f32() + c, buf, n);
        copy_chunk_range(b, c, n, buf, false, [&out](size_t i) -> Tensor& { return out[i]; });
      }
    }
  }
  full.set_step_count(step_);
}

void DataParallel::load_state(optim::AdamW& full) {
  GANNET_CHECK(full.first_moments().size() == params_.size(), "data parallel: optimizer over ",
               full.first_moments().size(), " parameters, expected ", params_.size());
  if (stage_ == 0) {
    for (size_t i = 0; i < params_.size(); ++i) {
      full_->first_moments()[i].copy_from(full.first_moments()[i]);
      full_->second_moments()[i].copy_from(full.second_moments()[i]);
    }
    full_->set_step_count(full.step_count());
    return;
  }
  for (Bucket& b : buckets_) {
    b.m.zero();
    b.v.zero();
    for (const Segment& s : b.owned) {
      std::memcpy(b.m.f32() + s.chunk_offset, full.first_moments()[s.param].f32() + s.param_offset,
                  (size_t)s.length * 4);
      std::memcpy(b.v.f32() + s.chunk_offset, full.second_moments()[s.param].f32() + s.param_offset,
                  (size_t)s.length * 4);
    }
  }
  step_ = full.step_count();
}

std::vector<DataParallel::MomentShard> DataParallel::moment_shards() const {
  std::vector<MomentShard> out;
  if (stage_ == 0) return out;
  for (const Bucket& b : buckets_)
    for (const Segment& s : b.owned)
      out.push_back({s.param, s.param_offset, s.length, b.m.slice(s.chunk_offset, s.chunk_offset + s.length),
                     b.v.slice(s.chunk_offset, s.chunk_offset + s.length)});
  return out;
}

bool is_expert_parameter(const std::string& name) { return name.find(".moe.experts.") != std::string::npos; }

BucketPlan transformer_buckets(const nn::ParameterList& params, int64_t n_layer) {
  // Bucket ids: 3i for block i, 3i + 1 for its experts, 3i + 2 for its router and mixing weights,
  // 3 n_layer for the rest; then renumbered without the empty ones.
  std::vector<int> raw;
  for (const auto& p : params) {
    int b = 3 * (int)n_layer;
    if (p.name.rfind("h.", 0) == 0) {
      size_t dot = p.name.find('.', 2);
      const int64_t block = parse_int64(std::string_view(p.name).substr(2, dot - 2), "data parallel: block of " + p.name);
      GANNET_CHECK(block >= 0 && block < n_layer, "data parallel: parameter ", p.name, " names block ", block, " of ",
                   n_layer);
      const bool moe = p.name.find(".moe.") != std::string::npos;
      b = 3 * (int)block + (is_expert_parameter(p.name) ? 1 : moe ? 2 : 0);
    }
    raw.push_back(b);
  }
  std::vector<int> id((size_t)(3 * n_layer + 1), -1);
  BucketPlan plan;
  plan.of_block.resize((size_t)n_layer);
  for (int b = 0; b <= 3 * (int)n_layer; ++b) {
    if (std::find(raw.begin(), raw.end(), b) == raw.end()) continue;
    id[(size_t)b] = (int)plan.expert.size();
    plan.expert.push_back(b < 3 * n_layer && b % 3 == 1);
    plan.moe_shared.push_back(b < 3 * n_layer && b % 3 == 2);
    if (b < 3 * n_layer) plan.of_block[(size_t)(b / 3)].push_back(id[(size_t)b]);
  }
  for (int b : raw) plan.bucket_of.push_back(id[(size_t)b]);
  return plan;
}

}  // namespace gannet::dist
