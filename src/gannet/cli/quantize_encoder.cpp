#include "gannet/cli/quantize_encoder.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <filesystem>

#include "gannet/compress/encoder_lkd.h"
#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/core/rng.h"
#include "gannet/data/classification_set.h"
#include "gannet/train/progress.h"
#include "gannet/core/error.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/nm_sparse_encoder.h"

namespace gannet::cli {

bool is_encoder_scheme(const std::string& scheme) {
  return scheme == "w8a8" || scheme == "w4a8" || scheme == "w4a4";
}

namespace {
// batches x batch windows of the split, drawn without replacement under `seed`.
std::vector<compress::EncoderWindows> calibration_windows(const EncoderLkdArgs& a, const models::EncoderConfig& c) {
  const data::ClassificationSet set = data::read_classification_set(a.calib);
  GANNET_CHECK(set.window <= c.n_ctx && set.vocab_size <= c.vocab_size, a.calib, ": windows of ", set.window,
               " tokens over a vocabulary of ", set.vocab_size, " do not fit the model (n_ctx ", c.n_ctx,
               ", vocabulary ", c.vocab_size, ")");
  const int64_t need = a.batches * a.batch, W = set.window;
  GANNET_CHECK(need <= set.size(), a.calib, ": ", need, " calibration windows asked for, the split has ", set.size());
  std::vector<int64_t> order(set.size());
  for (int64_t i = 0; i < set.size(); ++i) order[i] = i;
  Rng rng(a.seed);
  for (int64_t i = 0; i < need; ++i) std::swap(order[i], order[i + (int64_t)rng.below(set.size() - i)]);
  std::vector<compress::EncoderWindows> out;
  for (int64_t b = 0; b < a.batches; ++b) {
    compress::EncoderWindows w{Tensor::empty({a.batch, W}, DType::i32), Tensor::empty({a.batch, W}, DType::u8)};
    for (int64_t r = 0; r < a.batch; ++r) {
      const int64_t i = order[b * a.batch + r];
      std::memcpy(w.tokens.data<int32_t>() + r * W, set.tokens.data<int32_t>() + i * W, W * sizeof(int32_t));
      std::memcpy(w.mask.data<uint8_t>() + r * W, set.mask.data<uint8_t>() + i * W, W);
    }
    out.push_back(std::move(w));
  }
  return out;
}

// ZeroQuant's LKD on `model`'s blocks toward their own float weights; prints each block's error.
void distill(models::Encoder& model, const std::vector<std::array<compress::NmProductForm, 4>>& forms,
             const EncoderLkdArgs& a, const std::string& in) {
  models::Encoder teacher(model.config());
  io::load_encoder_checkpoint(in, teacher, nullptr, nullptr);
  const auto batches = calibration_windows(a, model.config());
  compress::LkdOptions o;
  o.steps = a.steps;
  o.lr = a.lr;
  o.seed = a.seed;
  std::unique_ptr<train::ProgressBar> bar;
  if (a.progress) bar = std::make_unique<train::ProgressBar>(model.config().n_layer * a.steps);
  const auto reports = compress::distill_encoder_blocks(teacher, model, forms, batches, o,
                                                        [&](int64_t done, int64_t, const std::string& info) {
                                                          if (bar) bar->update(done, info);
                                                        });
  if (bar) bar->finish();
  for (const compress::LkdLayerReport& r : reports)
    std::printf("block %ld: output mse %.3g after plain rounding, %.3g after LKD (%.1f%%%s)\n", (long)r.layer,
                r.mse_before, r.mse_after, 100.0 * (r.mse_after / std::max(r.mse_before, 1e-30) - 1.0),
                r.kept_plain ? "; distillation did not help, plain rounding kept" : "");
}
}  // namespace

void quantize_encoder(const std::string& in, const std::string& out, const std::string& scheme, int64_t group,
                      bool asymmetric_activations, const EncoderLkdArgs& lkd) {
  GANNET_CHECK(is_encoder_scheme(scheme), "quantize: scheme '", scheme, "' is not one an encoder takes (w8a8, w4a8, ",
               "w4a4)");
  GANNET_CHECK(!asymmetric_activations || scheme == "w4a4",
               "quantize: --asymmetric-activations is for w4a4 (int4 inputs) only");
  models::Encoder model(io::read_encoder_checkpoint_config(in));
  io::load_encoder_checkpoint(in, model, nullptr, nullptr);
  const models::EncoderConfig& c = model.config();
  GANNET_CHECK(c.num_classes >= 2 && !c.mlm_head, in, ": quantize takes a classifier encoder (num_classes ",
               c.num_classes, ")");
  compress::NmProductForm form;
  form.quant.bits = scheme == "w8a8" ? 8 : 4;
  form.quant.group = group;
  form.quant.symmetric = true;
  form.quant.validate();
  form.input = io::ActivationQuant{true, 0.f, scheme == "w4a4" ? 4 : 8, asymmetric_activations};
  std::vector<std::array<compress::NmProductForm, 4>> forms((size_t)c.n_layer);
  for (auto& layer : forms) layer.fill(form);
  if (lkd.steps > 0) distill(model, forms, lkd, in);
  const io::NmSparseEncoder packed = compress::pack_nm_sparse_encoder(model, forms, {});
  io::save_nm_sparse_encoder(out, packed);
  int64_t f32_bytes = 0;
  for (const nn::Parameter& p : model.parameters())
    if (packed.quantized.count(p.name)) f32_bytes += 4 * p.var.value().numel();
  const io::NmSparseEncoder::Bytes b = packed.bytes();
  std::printf("%s: %ld block products as %s (%s)\n", in.c_str(), (long)(4 * c.n_layer), form.describe().c_str(),
              lkd.steps > 0 ? str("LKD ", lkd.steps, " steps per block, lr ", lkd.lr, ", ", lkd.batches * lkd.batch,
                                  " windows of ", lkd.calib).c_str()
                            : "round to nearest");
  std::printf("wrote %s: %.2f MB; block products %.2f MB, %.2fx smaller than f32 (%.2f MB)\n", out.c_str(),
              (double)std::filesystem::file_size(out) / 1e6, b.products / 1e6, (double)f32_bytes / (double)b.products,
              f32_bytes / 1e6);
}

}  // namespace gannet::cli
