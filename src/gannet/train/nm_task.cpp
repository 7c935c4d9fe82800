#include "gannet/train/nm_task.h"

#include "gannet/compress/nm_student.h"
#include "gannet/train/distill_task.h"

namespace gannet::train {

namespace {

std::vector<int64_t> every_layer(int64_t n) {
  std::vector<int64_t> map;
  for (int64_t l = 0; l < n; ++l) map.push_back(l);
  return map;
}

class NmTask : public DistillTask {
 public:
  explicit NmTask(const TrainConfig& cfg)
      : DistillTask(cfg, cfg.nxm.distill, every_layer(cfg.encoder.n_layer)), student_(cfg.nxm, model_.encoder.trunk()) {
    init_student({"wte", "wpe", "ln_f", "classifier"});
  }
  std::vector<std::pair<std::string, Tensor>> state_tensors() override { return student_.state_tensors(); }
  void describe_step(int64_t step, nlohmann::json& line) override {
    DistillTask::describe_step(step, line);
    line["admm_penalty"] = student_.penalty_value();
    line["nm_distance"] = student_.distance_from_pattern();
  }
  std::string describe_options() const override;

 protected:
  const compress::StudentForm& form_at(int64_t step) override {
    student_.prepare(step);
    return student_;
  }
  autograd::Var form_objective() override { return student_.penalty(); }

 private:
  compress::NmStudent student_;
};

std::string NmTask::describe_options() const {
  std::string s = str("gannet train: N:M student of ", cfg_.teacher_checkpoint, " (", cfg_.encoder.n_layer,
                      " layers): ", cfg_.nxm.describe(), "\n");
  std::map<std::string, int> counts;
  for (int64_t l = 0; l < cfg_.encoder.n_layer; ++l)
    for (const compress::NmProductForm& f : student_.forms(l)) ++counts[f.describe()];
  s += "gannet train: products:";
  for (const auto& [form, n] : counts) s += str(" ", n, " x ", form, ";");
  s.back() = '\n';
  if (!cfg_.init_checkpoint.empty()) s += str("gannet train: the student starts from ", cfg_.init_checkpoint, "\n");
  return s;
}

}  // namespace

std::unique_ptr<TrainTask> make_nm_task(const TrainConfig& config) { return std::make_unique<NmTask>(config); }

}  // namespace gannet::train
