// ZeroQuant's layer-by-layer knowledge distillation (LKD, compress/lkd.h) for a classifier encoder:
// the INT4 paper's post-training quantization with distillation, beside plain rounding and QAT.
//
// Each block in turn: the teacher is the float block; the student is the same block with its
// products run in their packed forms (fake-quantized weights and inputs with straight-through
// gradients, compress/xtc_forward.h's student_block_forward, bidirectional over the windows'
// masks). Both see the teacher's hidden state at the block's input, and the student's weights
// learn to reproduce the teacher block's output (mean squared error over all rows) with AdamW, the
// rate cosine-decayed to 0 over the block's steps. A block that distillation leaves worse on the
// calibration windows keeps its float weights (plain rounding). Only one block trains at a time:
// no end-to-end backward pass, no labels.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "gannet/compress/lkd.h"
#include "gannet/compress/nm_config.h"
#include "gannet/models/encoder.h"

namespace gannet::compress {

// A calibration batch: tokens [B, T] i32 and mask [B, T] u8 (1 = real token).
struct EncoderWindows {
  Tensor tokens, mask;
};

// Distils `student`'s blocks (initially the teacher's weights) toward `teacher`'s, block product
// (layer, p) in forms[layer][p] (dense forms only: weights quantized as the packer quantizes them,
// inputs as the form's input says). Returns one report per block (mean over the batches).
// progress(done, total, text) is called after each step.
std::vector<LkdLayerReport> distill_encoder_blocks(
    const models::Encoder& teacher, models::Encoder& student, const std::vector<std::array<NmProductForm, 4>>& forms,
    const std::vector<EncoderWindows>& batches, const LkdOptions& options,
    const std::function<void(int64_t, int64_t, const std::string&)>& progress = {});

}  // namespace gannet::compress
