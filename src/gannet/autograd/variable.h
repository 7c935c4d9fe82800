// Var: a tensor in the autograd graph, with its gradient. Copies share the same node.
#pragma once
#include <memory>
#include <string>

#include "gannet/core/tensor.h"

namespace gannet::autograd {

struct VarNode {
  Tensor value;
  Tensor grad;  // undefined until a backward step writes it
  bool requires_grad = false;
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false)
      : node_(std::make_shared<VarNode>(VarNode{std::move(value), Tensor(), requires_grad})) {}

  bool defined() const { return node_ != nullptr; }
  Tensor& value() const { return node_->value; }
  Tensor& grad() const { return node_->grad; }
  bool requires_grad() const { return node_ && node_->requires_grad; }
  const Shape& shape() const { return node_->value.shape(); }
  bool same(const Var& other) const { return node_ == other.node_; }

 private:
  std::shared_ptr<VarNode> node_;
};

}  // namespace gannet::autograd
