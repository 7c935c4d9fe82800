// XTC's layer reduction: a student encoder with fewer blocks starts from a chosen subset of the
// teacher's (DeepSpeed's layer_reduction: student block j takes teacher block teacher_layer[j]),
// and the modules outside the blocks that the config names (other_module_name: wte, wpe, ln_f,
// classifier) are copied from the teacher; the rest keep the student's own initialisation.
#pragma once
#include <string>
#include <vector>

#include "gannet/models/encoder.h"

namespace gannet::compress {

// The student's config: the teacher's with n_layer = layer_map.size().
models::EncoderConfig student_config(const models::EncoderConfig& teacher, const std::vector<int64_t>& layer_map);

// Copies into `student` block j from teacher block layer_map[j] (every j), and each parameter
// whose module (the name up to the first '.') is in `copied`. Throws one line on a layer outside
// the teacher, a student whose block count is not layer_map.size(), or shapes that differ.
void init_student_from_teacher(const models::Encoder& teacher, models::Encoder& student,
                               const std::vector<int64_t>& layer_map, const std::vector<std::string>& copied);

}  // namespace gannet::compress
