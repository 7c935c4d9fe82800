#include "gannet/compress/nm_gpt_pack.h"

#include <optional>

#include "gannet/compress/simulated_quant.h"
#include "gannet/core/error.h"

namespace gannet::compress {

QuantScheme scheme_of_dense_forms(const std::vector<std::array<NmProductForm, 4>>& forms) {
  QuantScheme s;
  s.name = "nxm_lm";
  std::optional<bool> asymmetric;
  for (size_t l = 0; l < forms.size(); ++l)
    for (size_t p = 0; p < 4; ++p) {
      const NmProductForm& f = forms[l][p];
      const std::string name = str("h.", l, ".", kBlockProducts[p], ".weight");
      GANNET_CHECK(!f.pattern, name, " is ", f.describe(),
                   ": a packed GPT file holds dense products only (the decode engine has no N:M form yet)");
      s.rules.push_back({name, {f.quant, f.input.quantized}});
      if (!f.input.quantized || f.input.bits != 4) continue;
      GANNET_CHECK(!asymmetric || *asymmetric == f.input.asymmetric, name,
                   ": int4 inputs are asymmetric in some products and symmetric in others; a packed GPT file takes "
                   "one kind");
      asymmetric = f.input.asymmetric;
      s.int4_activation_patterns.push_back(name);
    }
  s.asymmetric_activations = asymmetric.value_or(false);
  return s;
}

io::GptWeights pack_dense_gpt_student(const io::GptWeights& student,
                                      const std::vector<std::array<NmProductForm, 4>>& forms) {
  GANNET_CHECK((int64_t)forms.size() == student.config.n_layer, "pack: ", forms.size(), " layers of forms for a GPT of ",
               student.config.n_layer, " blocks");
  return quantize_model(student, scheme_of_dense_forms(forms));
}

}  // namespace gannet::compress
