// Activation checkpointing: a region of the forward pass (a transformer block) keeps only its
// inputs and outputs; its intermediate activations are dropped as soon as it has run, and the
// backward pass runs the region again to get them back before backpropagating through it.
//
// Communication-aware (DeepSpeed-TED): a collective inside the region (the expert all-to-alls, the
// tensor-parallel all-reduces) keeps its result on the first run, and the recomputation takes it
// back instead of communicating again, so recomputing repeats no exchange. Collectives opt in with
// kept_communication() / keep_communication().
#pragma once
#include <any>
#include <functional>
#include <vector>

#include "gannet/autograd/variable.h"

namespace gannet::autograd {

using Region = std::function<std::vector<Var>(const std::vector<Var>& inputs)>;

// fn(inputs), recording one node for the whole region. fn must compute the same values when run
// again on the same inputs (seeded noise does); its outputs may be undefined Vars. Outside grad
// mode this is fn(inputs). keep_communication: whether the region's collectives keep their results
// for the recomputation (else they run again).
std::vector<Var> checkpoint(const Region& fn, const std::vector<Var>& inputs, bool keep_communication = true);

// For a collective's forward inside a checkpointed region: during the recomputation, the result
// the collective kept on the first run (in the order they were kept); nullptr otherwise (outside a
// region, on the first run, or when the region does not keep communication).
const std::any* kept_communication();
// On the first run of a region that keeps communication, keeps `result` for the recomputation;
// otherwise does nothing.
void keep_communication(std::any result);

}  // namespace gannet::autograd
