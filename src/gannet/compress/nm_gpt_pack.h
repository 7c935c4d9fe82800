// The packed GPT file of task nxm_lm's student (compress/nm_student.h on a GPT) when every block
// product is dense: its forms as a ZeroQuant scheme (each product's int8/int4 weights and int8/int4
// inputs, the embedding and LM head f32 as the student trains them), applied to the student's
// latent weights by plain rounding, which is the rounding its training forward simulated. The
// result runs on the inference engine (`gannet eval`, `gannet generate`). Sparse forms need the
// decode engine's N:M form, which it does not have yet: they are refused.
#pragma once
#include <array>
#include <vector>

#include "gannet/compress/nm_config.h"
#include "gannet/compress/quant_scheme.h"

namespace gannet::compress {

// forms[layer][product] (kBlockProducts' order). Throws one line for a sparse form, or for int4
// inputs that are asymmetric in one product and symmetric in another (a scheme has one setting).
QuantScheme scheme_of_dense_forms(const std::vector<std::array<NmProductForm, 4>>& forms);

// The student's weights quantized as its forms say.
io::GptWeights pack_dense_gpt_student(const io::GptWeights& student,
                                      const std::vector<std::array<NmProductForm, 4>>& forms);

}  // namespace gannet::compress
