// Expert parallelism for a GPT-MoE: each process of the expert-parallel group keeps only its own
// experts of every MoE layer (its slice of the [E, out, in] expert tensors) and exchanges token rows
// with the others through ExpertAllToAll. Checkpoints stay whole: the slices are gathered into the
// full tensors to save and cut from them to load, so any layout reads any checkpoint.
#pragma once
#include <memory>
#include <vector>

#include "gannet/dist/expert_all_to_all.h"
#include "gannet/dist/placement.h"
#include "gannet/models/gpt.h"

namespace gannet::dist {

class ExpertPlacement final : public ParameterPlacement {
 public:
  // Cuts every MoE layer's expert tensors of `model` (initialized whole, so that every layout
  // starts from the same weights) down to this rank's experts and sets the layers' exchanges. Each
  // layer's expert count must be a multiple of the group size. `group` and `model` outlive this.
  ExpertPlacement(models::Gpt& model, Communicator& group);
  ExpertPlacement(const ExpertPlacement&) = delete;
  ExpertPlacement& operator=(const ExpertPlacement&) = delete;

  bool owns(size_t i) const override { return i < expert_.size() && expert_[i]; }
  // Expert tensors: the ranks' slices are consecutive blocks of experts.
  void gather(size_t i, const Tensor& local, Tensor& whole) const override;
  void slice(size_t i, const Tensor& whole, Tensor& local) const override;
  // This rank's consecutive block of experts (the leading dimension).
  std::vector<Box> boxes(size_t i, const Shape& whole) const override;

 private:
  Communicator& group_;
  std::vector<bool> expert_;  // per parameter
  std::vector<std::unique_ptr<ExpertAllToAll>> exchanges_;
};

}  // namespace gannet::dist
