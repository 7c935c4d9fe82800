#include "gannet/cli/quantize_encoder.h"

#include <cstdio>
#include <filesystem>

#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/core/error.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/nm_sparse_encoder.h"

namespace gannet::cli {

bool is_encoder_scheme(const std::string& scheme) {
  return scheme == "w8a8" || scheme == "w4a8" || scheme == "w4a4";
}

void quantize_encoder(const std::string& in, const std::string& out, const std::string& scheme, int64_t group,
                      bool asymmetric_activations) {
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
  const io::NmSparseEncoder packed = compress::pack_nm_sparse_encoder(model, forms, {});
  io::save_nm_sparse_encoder(out, packed);
  int64_t f32_bytes = 0;
  for (const nn::Parameter& p : model.parameters())
    if (packed.quantized.count(p.name)) f32_bytes += 4 * p.var.value().numel();
  const io::NmSparseEncoder::Bytes b = packed.bytes();
  std::printf("%s: %ld block products as %s (round to nearest)\n", in.c_str(), (long)(4 * c.n_layer),
              form.describe().c_str());
  std::printf("wrote %s: %.2f MB; block products %.2f MB, %.2fx smaller than f32 (%.2f MB)\n", out.c_str(),
              (double)std::filesystem::file_size(out) / 1e6, b.products / 1e6, (double)f32_bytes / (double)b.products,
              f32_bytes / 1e6);
}

}  // namespace gannet::cli
