#include "gannet/compress/low_bit_encoder_pack.h"

#include "gannet/core/error.h"
#include "gannet/io/low_bit_file.h"

namespace gannet::compress {

namespace {
void check_spec(const LowBitSpec& spec, int bits, const std::string& scheme, const char* what) {
  try {
    spec.validate();
  } catch (const Error& e) {
    fail(str("packing a low-bit encoder: ", what, ": ", e.what()));
  }
  GANNET_CHECK(spec.bits == bits, "packing a low-bit encoder: ", what, " ", spec.describe(), " has ", spec.bits,
               "-bit weights, scheme ", scheme, " has ", bits);
}
}  // namespace

io::LowBitEncoder pack_low_bit_encoder(const models::Encoder& f32_model, const LowBitSpec& products,
                                       const LowBitSpec& embeddings, const std::string& scheme) {
  const int bits = io::low_bit_scheme_bits(scheme);
  check_spec(products, bits, scheme, "products");
  check_spec(embeddings, bits, scheme, "embeddings");
  const int64_t C = f32_model.config().n_embd;
  GANNET_CHECK(embeddings.group_for(C) == embeddings.padded_width(C), "packing a low-bit encoder: embeddings ",
               embeddings.describe(), " has several scales per row of ", C, "; a lookup needs one per row (group 0)");
  const models::EncoderConfig& c = f32_model.config();
  GANNET_CHECK(c.num_classes >= 2 && !c.mlm_head, "packing a low-bit encoder: the model is not a classifier (",
               "num_classes ", c.num_classes, ", mlm_head ", c.mlm_head ? "true" : "false", ")");
  io::LowBitEncoder out;
  out.config = c;
  out.scheme = scheme;
  std::map<std::string, bool> low_bit_names;
  for (const auto& [name, shape] : io::low_bit_encoder_low_bit_shapes(c)) low_bit_names[name] = true;
  for (const nn::Parameter& p : f32_model.parameters()) {
    const Tensor w = as_f32(p.var.value());
    if (!low_bit_names.count(p.name)) {
      out.dense.emplace(p.name, w.clone());
      continue;
    }
    try {
      out.low_bit.emplace(p.name, quantize_low_bit(w, io::is_embedding_table(p.name) ? embeddings : products));
    } catch (const Error& e) {
      fail(str("packing a low-bit encoder: weight '", p.name, "': ", e.what()));
    }
  }
  out.validate("packed low-bit encoder");
  return out;
}

}  // namespace gannet::compress
