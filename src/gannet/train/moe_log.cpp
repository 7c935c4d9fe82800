#include "gannet/train/moe_log.h"

namespace gannet::train {

void MoeLog::add(const std::vector<nn::MoeLayerStats>& layers, double aux_loss) {
  if (sum_.empty()) sum_ = layers;
  else
    for (size_t i = 0; i < layers.size() && i < sum_.size(); ++i) {
      sum_[i].balance_loss += layers[i].balance_loss;
      sum_[i].z_loss += layers[i].z_loss;
      sum_[i].dropped_fraction += layers[i].dropped_fraction;
      sum_[i].entropy += layers[i].entropy;
      for (size_t e = 0; e < layers[i].demand.size(); ++e) sum_[i].demand[e] += layers[i].demand[e];
    }
  aux_ += aux_loss;
  ++micro_;
}

nlohmann::json MoeLog::take() {
  nlohmann::json out = nlohmann::json::array();
  double dropped = 0;
  for (const nn::MoeLayerStats& s : sum_) {
    int64_t total = 0;
    for (int64_t d : s.demand) total += d;
    std::vector<double> load;
    for (int64_t d : s.demand) load.push_back(total ? (double)d / (double)total : 0.0);
    const double m = (double)micro_;
    out.push_back({{"block", s.block},
                   {"balance_loss", s.balance_loss / m},
                   {"z_loss", s.z_loss / m},
                   {"dropped", s.dropped_fraction / m},
                   {"entropy", s.entropy / m},
                   {"load", load}});
    dropped += s.dropped_fraction / m;
  }
  last_dropped_ = sum_.empty() ? 0.0 : dropped / (double)sum_.size();
  nlohmann::json j{{"aux_loss", micro_ ? aux_ / (double)micro_ : 0.0}, {"layers", out}};
  sum_.clear();
  aux_ = 0;
  micro_ = 0;
  return j;
}

}  // namespace gannet::train
