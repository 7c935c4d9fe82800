#include "gannet/compress/nm_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/nm_sparse_quantizer.h"
#include "gannet/compress/quantizer.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/core/error.h"
#include "gannet/core/format_number.h"

namespace gannet::compress {

namespace {
using autograd::Var;

// The weight as the packed file of `form` holds it, dequantized, and its stored bytes.
std::pair<Tensor, int64_t> compressed(const Tensor& w, const NmProductForm& form) {
  if (!form.pattern) {
    const io::QuantizedTensor q = quantize_weights(w, form.quant);
    return {q.dequantize(), q.nbytes()};
  }
  const io::NmSparseTensor t =
      quantize_nm_sparse(w.f32(), w.dim(0), w.dim(1), {*form.pattern, form.quant.bits, form.quant.group});
  return {t.dequantize(), t.nbytes()};
}

// Every product's weight as given, except one replaced (int8 inputs everywhere).
class OneCompressed : public StudentForm {
 public:
  OneCompressed(int64_t layer, int product, Tensor weight) : layer_(layer), product_(product), weight_(weight) {}
  Var weight(int64_t layer, int product, const Var& w) const override {
    return layer == layer_ && product == product_ ? Var(weight_, false) : w;
  }

 private:
  int64_t layer_;
  int product_;
  Tensor weight_;
};

double mean_kl(const models::Encoder& model, const StudentForm& form, const Tensor& tokens, const Tensor& mask,
               const Tensor& teacher_logits) {
  const Var logits = traced_forward(model, &form, tokens, mask, {}).logits;
  return autograd::kl_divergence(logits, teacher_logits).value().f32()[0];
}
}  // namespace

NmProductForm parse_nm_choice(const std::string& text, int64_t group, const std::string& what) {
  const size_t space = text.find(' ');
  GANNET_CHECK(space != std::string::npos, what, ": '", text, "' is not a choice (e.g. \"dense int8\", \"2:4 int4\")");
  const std::string shape = text.substr(0, space), bits = text.substr(space + 1);
  NmProductForm f;
  if (shape != "dense") f.pattern = NmPattern::parse(shape, what);
  GANNET_CHECK(bits == "int8" || bits == "int4", what, ": '", text, "' has weights '", bits, "' (int8 or int4)");
  f.quant.bits = bits == "int8" ? 8 : 4;
  f.quant.group = group;
  f.quant.symmetric = true;
  f.quant.validate();
  return f;
}

namespace {
std::string choice_text(const NmProductForm& f) {
  return str(f.pattern ? f.pattern->describe() : std::string("dense"), " int", f.quant.bits);
}
}  // namespace

nlohmann::json nm_forms_to_json(const std::vector<std::array<NmProductForm, 4>>& forms) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t l = 0; l < forms.size(); ++l)
    for (int p = 0; p < 4; ++p) out[str("h.", l, ".", kBlockProducts[(size_t)p])] = choice_text(forms[l][(size_t)p]);
  return out;
}

std::vector<std::array<NmProductForm, 4>> nm_forms_from_json(const nlohmann::json& doc, int64_t n_layer, int64_t group,
                                                             const std::string& what) {
  GANNET_CHECK(doc.is_object(), what, ": not a JSON object");
  GANNET_CHECK((int64_t)doc.size() == 4 * n_layer, what, ": ", doc.size(), " products, the model has ", 4 * n_layer);
  std::vector<std::array<NmProductForm, 4>> out((size_t)n_layer);
  for (int64_t l = 0; l < n_layer; ++l)
    for (int p = 0; p < 4; ++p) {
      const std::string name = str("h.", l, ".", kBlockProducts[(size_t)p]);
      GANNET_CHECK(doc.contains(name) && doc.at(name).is_string(), what, ": no form (a string) for ", name);
      out[(size_t)l][(size_t)p] = parse_nm_choice(doc.at(name).get<std::string>(), group, what + ": " + name);
    }
  return out;
}

std::vector<int> pick_within_budget(const std::vector<std::vector<double>>& value,
                                    const std::vector<std::vector<int64_t>>& cost, int64_t budget) {
  constexpr int64_t kUnits = 4096;
  const int64_t unit = std::max<int64_t>(1, (budget + kUnits - 1) / kUnits);
  const int64_t cap = budget / unit;
  const double inf = std::numeric_limits<double>::infinity();
  const size_t n = value.size();
  // best[i][u]: the least value of items [0, i) within u units; from[i][u]: item i-1's choice.
  std::vector<std::vector<double>> best(n + 1, std::vector<double>((size_t)cap + 1, inf));
  std::vector<std::vector<int>> from(n + 1, std::vector<int>((size_t)cap + 1, -1));
  std::fill(best[0].begin(), best[0].end(), 0.0);
  for (size_t i = 0; i < n; ++i)
    for (int64_t u = 0; u <= cap; ++u)
      for (size_t c = 0; c < value[i].size(); ++c) {
        const int64_t need = (cost[i][c] + unit - 1) / unit;
        if (need > u || best[i][(size_t)(u - need)] == inf) continue;
        const double v = best[i][(size_t)(u - need)] + value[i][c];
        if (v < best[i + 1][(size_t)u]) best[i + 1][(size_t)u] = v, from[i + 1][(size_t)u] = (int)c;
      }
  GANNET_CHECK(best[n][(size_t)cap] < inf, "N:M search: no choice of forms fits the budget of ", budget, " bytes");
  std::vector<int> pick(n);
  int64_t u = cap;
  for (size_t i = n; i > 0; --i) {
    const int c = from[i][(size_t)u];
    pick[i - 1] = c;
    u -= (cost[i - 1][(size_t)c] + unit - 1) / unit;
  }
  return pick;
}

NmSearchTable search_nm_forms(const models::Encoder& teacher, const Tensor& tokens, const Tensor& mask,
                              const std::vector<NmProductForm>& choices, int64_t budget_bytes) {
  GANNET_CHECK(!choices.empty(), "N:M search: no choices");
  autograd::NoGrad no_grad;
  const int64_t L = teacher.config().n_layer;
  NmSearchTable t;
  t.choices = choices;
  t.budget = budget_bytes;
  const Tensor teacher_logits = traced_forward(teacher, nullptr, tokens, mask, {}).logits.value();
  const OneCompressed none(-1, -1, Tensor());
  const double base = mean_kl(teacher, none, tokens, mask, teacher_logits);
  for (int64_t l = 0; l < L; ++l)
    for (int p = 0; p < 4; ++p) {
      const Tensor& w = teacher.trunk().block(l).product(p).weight.value();
      t.f32_bytes += 4 * w.numel();
      std::vector<double> s;
      std::vector<int64_t> b;
      for (const NmProductForm& c : choices) {
        const auto [weight, bytes] = compressed(w, c);
        s.push_back(mean_kl(teacher, OneCompressed(l, p, weight), tokens, mask, teacher_logits) - base);
        b.push_back(bytes);
      }
      t.sensitivity.push_back(s);
      t.bytes.push_back(b);
    }
  t.picked = pick_within_budget(t.sensitivity, t.bytes, budget_bytes);
  return t;
}

int64_t NmSearchTable::picked_bytes() const {
  int64_t sum = 0;
  for (size_t i = 0; i < picked.size(); ++i) sum += bytes[i][(size_t)picked[i]];
  return sum;
}

double NmSearchTable::picked_sensitivity() const {
  double sum = 0;
  for (size_t i = 0; i < picked.size(); ++i) sum += sensitivity[i][(size_t)picked[i]];
  return sum;
}

std::vector<std::array<NmProductForm, 4>> NmSearchTable::forms() const {
  std::vector<std::array<NmProductForm, 4>> out(picked.size() / 4);
  for (size_t i = 0; i < picked.size(); ++i) out[i / 4][i % 4] = choices[(size_t)picked[i]];
  return out;
}

std::string NmSearchTable::describe() const {
  std::string s = "  product           ";
  for (const NmProductForm& c : choices) s += str("  ", c.describe().substr(0, c.describe().find(" g")));
  s += "   (KL increase x 1e3; * = picked)\n";
  for (size_t i = 0; i < picked.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "  h.%zu.%-13s", i / 4, kBlockProducts[i % 4]);
    s += name;
    for (size_t c = 0; c < choices.size(); ++c) {
      const std::string label = choices[c].describe().substr(0, choices[c].describe().find(" g"));
      char cell[64];
      std::snprintf(cell, sizeof cell, "  %*.3f%s", (int)label.size() - 1, 1e3 * sensitivity[i][c],
                    (int)c == picked[i] ? "*" : " ");
      s += cell;
    }
    s += str("  ", choices[(size_t)picked[i]].describe(), " ", bytes[i][(size_t)picked[i]], " B\n");
  }
  s += str("  picked: ", picked_bytes(), " bytes (budget ", budget, ", f32 ", f32_bytes, ": ",
           format_number("%.1f", (double)f32_bytes / (double)picked_bytes()), "x smaller), summed KL increase ",
           picked_sensitivity() * 1e3, " x 1e-3\n");
  return s;
}

}  // namespace gannet::compress
