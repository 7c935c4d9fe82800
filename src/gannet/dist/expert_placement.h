// Expert parallelism for a GPT-MoE: each process of the expert-parallel group keeps only its own
// experts of every MoE layer (its slice of the [E, out, in] expert tensors) and exchanges token rows
// with the others through ExpertAllToAll. Checkpoints stay whole: the slices are gathered into the
// full tensors to save and cut from them to load, so any layout reads any checkpoint.
#pragma once
#include <memory>
#include <vector>

#include "gannet/dist/expert_all_to_all.h"
#include "gannet/models/gpt.h"

namespace gannet::dist {

class ExpertPlacement {
 public:
  // Cuts every MoE layer's expert tensors of `model` (initialized whole, so that every layout
  // starts from the same weights) down to this rank's experts and sets the layers' exchanges. Each
  // layer's expert count must be a multiple of the group size. `group` and `model` outlive this.
  ExpertPlacement(models::Gpt& model, Communicator& group);
  ExpertPlacement(const ExpertPlacement&) = delete;
  ExpertPlacement& operator=(const ExpertPlacement&) = delete;

  // Collective over the group: full[i] = parameter i whole (expert tensors gathered from every
  // rank, the rest copied); `local` in this model's parameter order, `full` of the whole shapes.
  void gather(const std::vector<Tensor>& local, std::vector<Tensor>& full) const;
  // The inverse, without communication: this rank's slices of whole tensors.
  void slice(const std::vector<Tensor>& full, std::vector<Tensor>& local) const;

 private:
  Communicator& group_;
  std::vector<bool> expert_;  // per parameter
  std::vector<std::unique_ptr<ExpertAllToAll>> exchanges_;
};

}  // namespace gannet::dist
