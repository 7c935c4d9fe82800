#include "gannet/compress/nm_encoder_pack.h"

#include "gannet/compress/nm_sparse_quantizer.h"
#include "gannet/compress/quantizer.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/core/error.h"

namespace gannet::compress {

io::NmSparseEncoder pack_nm_sparse_encoder(const models::Encoder& student,
                                           const std::vector<std::array<NmProductForm, 4>>& forms,
                                           const std::map<std::string, Tensor>& masks) {
  const models::EncoderConfig& c = student.config();
  GANNET_CHECK((int64_t)forms.size() == c.n_layer, "packing an N:M encoder: ", forms.size(), " layers of forms for ",
               c.n_layer, " blocks");
  std::map<std::string, const NmProductForm*> form_of;
  for (int64_t l = 0; l < c.n_layer; ++l)
    for (int p = 0; p < 4; ++p) form_of[str("h.", l, ".", kBlockProducts[(size_t)p], ".weight")] = &forms[(size_t)l][(size_t)p];
  io::NmSparseEncoder out;
  out.config = c;
  for (const nn::Parameter& par : student.parameters()) {
    const Tensor w = as_f32(par.var.value());
    auto f = form_of.find(par.name);
    if (f == form_of.end()) {
      out.dense.emplace(par.name, w.clone());
      continue;
    }
    const NmProductForm& form = *f->second;
    if (!(form.input == io::ActivationQuant{true})) out.inputs[par.name] = form.input;
    try {
      if (!form.pattern) {
        out.quantized.emplace(par.name, quantize_weights(w, form.quant));
        continue;
      }
      const std::string product = par.name.substr(0, par.name.size() - std::string(".weight").size());
      auto m = masks.find(product);
      GANNET_CHECK(m != masks.end(), "no mask");
      GANNET_CHECK(m->second.dtype() == DType::f32 && m->second.shape() == w.shape(), "mask ", m->second.describe(),
                   " for a weight ", w.describe());
      Tensor masked = w.clone();
      for (int64_t i = 0; i < masked.numel(); ++i) masked.f32()[i] *= m->second.f32()[i];
      const NmSparseSpec spec{*form.pattern, form.quant.bits, form.quant.group};
      out.sparse.emplace(par.name, quantize_nm_sparse(masked.f32(), w.dim(0), w.dim(1), spec));
    } catch (const Error& e) {
      fail(str("packing an N:M encoder: weight '", par.name, "': ", e.what()));
    }
  }
  out.validate("packed N:M encoder");
  return out;
}

}  // namespace gannet::compress
