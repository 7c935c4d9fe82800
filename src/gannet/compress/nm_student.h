// NxMiFormer's student as it trains (compress/nm_config.h): the form of each block product's weight
// at the current step (compress/student_form.h), the pruning schedule's masks and ADMM's
// auxiliary variables, and ADMM's penalty term.
//
// A sparse product's weight in the forward pass is fake_quantize_weights(W * mask) with gradients
// straight through the quantizer and times the mask (masked fine-tuning) once its mask is fixed,
// and fake_quantize_weights(W) before (dense, quantization-aware, with ADMM's penalty pulling W
// toward the N:M set), or with admm_forward "projected" fake_quantize_weights(proj(W)) in ADMM's
// phase, gradients straight through both. A dense product's is fake_quantize_weights(W)
// throughout. The forward value of a masked product is exactly what compress::quantize_nm_sparse
// stores for W * mask.
//
// The schedule acts at the start of a step (prepare(step)), so that a checkpoint written after
// step s - 1 holds the state step s starts from: masks, Z and U are the task's checkpointed state
// (state_tensors()), with the step they were prepared for, so that a run validated (and so
// prepared) for step s before its checkpoint resumes without acting on step s twice.
//
// With admm_penalty "proximal", prepare(step) in ADMM's phase also takes the quadratic term's
// proximal step on the latent weights, W <- (W + rho (Z - U)) / (1 + rho): it writes the block
// products' weights in place (the student's parameters, which the optimizer also updates).
#pragma once
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "gannet/compress/nm_config.h"
#include "gannet/compress/student_form.h"
#include "gannet/nn/transformer.h"

namespace gannet::compress {

class NmStudent : public StudentForm {
 public:
  // The student's (an encoder's or a GPT's trunk) block product weights are read at each
  // prepare(); both must outlive this.
  NmStudent(const NmConfig& config, const nn::Transformer& student);

  autograd::Var weight(int64_t layer, int product, const autograd::Var& w) const override;
  // The product's input quantization from its form (int8, or int4 for W4A4).
  io::ActivationQuant input(int64_t layer, int product) const override {
    return products_[(size_t)layer].forms[(size_t)product].input;
  }

  // Brings masks, Z and U to the start of `step` (the first call after a resume takes the state
  // the checkpoint held). Steps must come in order; calling twice with one step does nothing.
  void prepare(int64_t step);
  // With admm_penalty "loss": rho / 2 sum ||W - Z + U||^2 over the sparse products in ADMM's phase
  // of the prepared step; an undefined Var outside it, and with "proximal".
  autograd::Var penalty() const;
  // That term's value at the current weights in either mode (0 outside ADMM's phase), for the log.
  double penalty_value() const;
  // Whether product (layer, p) is sparse and its mask fixed at the prepared step.
  bool masked(int64_t layer, int p) const;
  // ADMM's rho at a step of its phase.
  float rho_at(int64_t step) const;
  // The sparse products' mean relative distance from the N:M set, ||W - proj(W)|| / ||W||: how far
  // from sparse the latent weights are (0 once masked).
  double distance_from_pattern() const;

  const std::array<NmProductForm, 4>& forms(int64_t layer) const { return products_[(size_t)layer].forms; }
  // "nm.step" (the prepared step), "nm.mask.<product>" (f32 0/1) for every sparse product; with
  // ADMM also "admm.z.<product>" and "admm.u.<product>", product e.g. "h.0.attn.c_attn". They are
  // the tensors themselves: a checkpoint loads into them.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;

 private:
  struct Sparse {
    Tensor mask, z, u;  // [out, in]
    Tensor target;      // Z - U in ADMM's phase (recomputed, not stored)
  };
  int64_t step() const { return (int64_t)prepared_step_.f32()[0]; }
  bool in_admm_phase() const;
  // f(layer, p, sparse) for every sparse product that has ADMM's Z and U.
  template <class F>
  void each_admm_product(const F& f) const;
  void refresh_target();
  void proximal_step();
  struct Layer {
    std::array<NmProductForm, 4> forms;
    std::array<Sparse, 4> sparse;
  };
  const Tensor& latent(int64_t layer, int p) const;
  void act(int64_t step);
  void set_masks(double share);
  void admm_update(bool first);

  const NmConfig& config_;
  const nn::Transformer& student_;
  std::vector<Layer> products_;
  Tensor prepared_step_;      // [1] f32: the step prepared for (-1: none); checkpointed as "nm.step"
  mutable bool target_stale_ = true;  // Z or U changed (or were loaded) since Z - U was taken, or it never was
};

}  // namespace gannet::compress
