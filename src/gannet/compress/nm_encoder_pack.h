// NxMiFormer's last step: a student trained by task "nxm" (f32 latent weights, and the masks its
// checkpoint holds) packed into io::NmSparseEncoder, the form stored and run with the N:M sparse
// kernels (infer/encoder_engine.h).
#pragma once
#include <array>
#include <map>
#include <string>
#include <vector>

#include "gannet/compress/nm_config.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/models/encoder.h"

namespace gannet::compress {

// Each block product in its form (forms[layer][product], kBlockProducts' order): sparse ones are
// W * masks.at("h.<l>.<product>") projected and quantized (compress/nm_sparse_quantizer.h: the same
// numbers the training forward used), dense ones quantized (compress/quantizer.h); the rest is
// copied as f32. Throws one line on a missing or misshapen mask, a model that is not a classifier,
// or a weight that is not finite.
io::NmSparseEncoder pack_nm_sparse_encoder(const models::Encoder& student,
                                           const std::vector<std::array<NmProductForm, 4>>& forms,
                                           const std::map<std::string, Tensor>& masks);

}  // namespace gannet::compress
