#include "gannet/train/xtc_task.h"

#include "gannet/compress/layer_reduction.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/train/distill_task.h"

namespace gannet::train {

namespace {

class XtcTask : public DistillTask {
 public:
  explicit XtcTask(const TrainConfig& cfg)
      : DistillTask(cfg, cfg.xtc.distill, compress::student_layer_map(cfg.xtc, cfg.encoder.n_layer)), form_(cfg.xtc) {
    compress::check_product_coverage(cfg.xtc, (int64_t)layer_map_.size());
    const std::vector<std::string> all = {"wte", "wpe", "ln_f", "classifier"};
    init_student(cfg.xtc.layers.enabled ? cfg.xtc.layers.copied : all);
  }
  std::string describe_options() const override;

 protected:
  const compress::StudentForm& form_at(int64_t) override { return form_; }

 private:
  compress::XtcForm form_;
};

std::string XtcTask::describe_options() const {
  std::string s = str("gannet train: XTC student of ", cfg_.teacher_checkpoint, " (", cfg_.encoder.n_layer,
                      " layers): ", cfg_.xtc.describe(), "\n");
  if (!cfg_.init_checkpoint.empty()) s += str("gannet train: the student starts from ", cfg_.init_checkpoint, "\n");
  return s;
}

}  // namespace

std::unique_ptr<TrainTask> make_xtc_task(const TrainConfig& config) { return std::make_unique<XtcTask>(config); }

}  // namespace gannet::train
