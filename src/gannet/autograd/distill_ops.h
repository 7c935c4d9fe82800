// Losses between a student and a fixed teacher, for knowledge distillation (LKD, XTC): each takes
// the student's Var and the teacher's plain Tensor, returns a scalar [1] loss, and sends the
// gradient into the student only. Losses are combined with autograd::add and autograd::scale.
#pragma once
#include "gannet/autograd/variable.h"

namespace gannet::autograd {

// Mean over all elements of (x - target)^2, summed in double. x and target the same shape.
Var mse(const Var& x, const Tensor& target);

// KL(teacher || student) of the row-wise softmaxes, averaged over rows. Logits [R, V]; the
// gradient into the student's logits is (p_student - p_teacher) / R.
Var kl_divergence(const Var& student_logits, const Tensor& teacher_logits);

// Soft cross-entropy (TinyBERT's / XTC's prediction-layer loss): the mean over rows of
//   -sum_v softmax(teacher / T)_v * log_softmax(student / T)_v,
// logits [R, V], temperature T > 0. NOT scaled by T^2 (DeepSpeed's XTC example uses T = 1, where
// the two agree); multiply with autograd::scale to get Hinton's T^2 weighting. It differs from
// kl_divergence (at T = 1) by the teacher's entropy, a constant; the gradient into the student's
// logits is (softmax(student / T) - softmax(teacher / T)) / (R T).
Var soft_cross_entropy(const Var& student_logits, const Tensor& teacher_logits, float temperature = 1.f);

}  // namespace gannet::autograd
