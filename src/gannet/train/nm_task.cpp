#include "gannet/train/nm_task.h"

#include "gannet/compress/nm_student.h"
#include "gannet/train/distill_task.h"

namespace gannet::train {

namespace {

class NmTask : public DistillTask {
 public:
  explicit NmTask(const TrainConfig& cfg)
      : DistillTask(cfg, cfg.nxm.distill, compress::student_layer_map(cfg.nxm.layers, cfg.encoder.n_layer)),
        student_(cfg.nxm, model_.encoder.trunk()) {
    const std::vector<std::string> all = {"wte", "wpe", "ln_f", "classifier"};
    init_student(cfg.nxm.layers.enabled ? cfg.nxm.layers.copied : all);
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
  std::string layers = str(cfg_.encoder.n_layer, " layers");
  if (cfg_.nxm.layers.enabled) {
    layers = str(layer_map_.size(), " of its ", cfg_.encoder.n_layer, " layers:");
    for (int64_t t : layer_map_) layers += str(" ", t);
  }
  std::string s = str("gannet train: N:M student of ", cfg_.teacher_checkpoint, " (", layers, "): ",
                      cfg_.nxm.describe(), "\n");
  std::map<std::string, int> counts;
  for (int64_t l = 0; l < (int64_t)layer_map_.size(); ++l)
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
