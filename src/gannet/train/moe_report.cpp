#include "gannet/train/moe_report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "gannet/core/format_number.h"

namespace gannet::train {

namespace {
std::string name_of(const TokenName& token_name, int32_t id) {
  return token_name ? token_name(id) : std::to_string(id);
}

// The largest demand share as a multiple of the uniform share 1/E.
double peak_load(const MoeLayerReport& r) {
  double m = 0;
  for (int64_t e = 0; e < r.experts; ++e) m = std::max(m, r.demand_share(e) * (double)r.experts);
  return m;
}
}  // namespace

std::string format_moe_table(const MoeStats& s, const TokenName& token_name) {
  std::ostringstream o;
  o << s.windows << " windows of " << s.seq_len << " tokens, " << s.batch << " windows per pass\n";
  for (const MoeLayerReport& r : s.layers) {
    o << "\nblock " << r.block << ": " << r.experts << " experts, "
      << (r.expert_choice ? "expert-choice routing (k " + std::to_string(r.k) + ")" : "top-" + std::to_string(r.k) + " routing")
      << "; " << r.tokens << " tokens in " << r.passes << (r.passes == 1 ? " pass" : " passes") << "; capacity "
      << (r.capacity < 0 ? std::string("unlimited (dropless)") : std::to_string(r.capacity) + " slots per expert per pass")
      << "\n";
    o << "  dropped " << format_number("%.2f%%", 100 * r.dropped_fraction()) << (r.expert_choice ? " of tokens" : " of choices")
      << " (" << r.dropped << " of " << r.choices << ")"
      << " | router entropy " << format_number("%.3f", r.entropy) << " nats (" << format_number("%.1f%%", 100 * r.entropy_fraction())
      << " of log " << r.experts << ")"
      << " | balance loss " << format_number("%.4f", r.balance_loss) << " | z-loss " << format_number("%.4g", r.z_loss)
      << " | peak load " << format_number("%.2f", peak_load(r)) << "x uniform\n";
    o << "  expert  choices    slots  cap.use  top tokens (slots)\n";
    for (int64_t e = 0; e < r.experts; ++e) {
      const ExpertStats& x = r.expert[(size_t)e];
      o << format_number("  %6.0f", (double)e) << format_number("  %6.2f%%", 100 * r.demand_share(e)) << format_number("  %6.2f%%", 100 * r.kept_share(e))
        << (r.capacity < 0 ? std::string("        -") : format_number("  %6.1f%%", 100 * r.capacity_use(e))) << "  ";
      // Pieces hold no spaces (SentencePiece writes them as "▁"), so "piece (count)" pairs read unambiguously.
      for (size_t i = 0; i < x.top_tokens.size(); ++i)
        o << (i ? "  " : "") << name_of(token_name, x.top_tokens[i].first) << " (" << x.top_tokens[i].second << ")";
      if (x.top_tokens.empty()) o << "-";
      o << "\n";
    }
  }
  return o.str();
}

nlohmann::json moe_stats_json(const MoeStats& s, const TokenName& token_name) {
  nlohmann::json layers = nlohmann::json::array();
  for (const MoeLayerReport& r : s.layers) {
    nlohmann::json experts = nlohmann::json::array();
    for (int64_t e = 0; e < r.experts; ++e) {
      const ExpertStats& x = r.expert[(size_t)e];
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, count] : x.top_tokens) {
        nlohmann::json t{{"id", id}, {"count", count}};
        if (token_name) t["piece"] = token_name(id);
        top.push_back(std::move(t));
      }
      experts.push_back({{"expert", e},
                         {"demand", x.demand},
                         {"kept", x.kept},
                         {"demand_share", r.demand_share(e)},
                         {"kept_share", r.kept_share(e)},
                         {"capacity_use", r.capacity_use(e)},
                         {"top_tokens", std::move(top)}});
    }
    layers.push_back({{"block", r.block},
                      {"experts", r.experts},
                      {"k", r.k},
                      {"router", r.expert_choice ? "expert_choice" : "top_k"},
                      {"tokens", r.tokens},
                      {"choices", r.choices},
                      {"dropped", r.dropped},
                      {"dropped_fraction", r.dropped_fraction()},
                      {"passes", r.passes},
                      {"capacity", r.capacity},
                      {"capacity_slots", r.capacity_slots},
                      {"entropy", r.entropy},
                      {"entropy_fraction", r.entropy_fraction()},
                      {"balance_loss", r.balance_loss},
                      {"z_loss", r.z_loss},
                      {"peak_load", peak_load(r)},
                      {"expert_stats", std::move(experts)}});
  }
  return {{"windows", s.windows}, {"seq_len", s.seq_len}, {"batch", s.batch}, {"layers", std::move(layers)}};
}

}  // namespace gannet::train
