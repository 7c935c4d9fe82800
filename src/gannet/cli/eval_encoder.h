// `gannet eval` on an encoder (io/encoder_checkpoint.h): its classifier on a classification set
// of `gannet data tasks` (accuracy, macro-F1, loss, beside the majority-class baseline of the
// set's train split when that file is beside it), or its MLM head on a token file (masked-token
// accuracy and loss).
#pragma once
#include <cstdint>
#include <string>

namespace gannet::cli {

// Whether `path` is a model file or checkpoint of type "encoder" (a packed low-bit encoder too).
bool is_encoder_model(const std::string& path);

// Evaluates and prints; one-line errors when the data does not suit the model's heads. A packed
// low-bit encoder (io/low_bit_encoder.h) runs on infer::EncoderEngine's low-bit kernels; with
// `engine`, an f32 classifier runs on its f32 engine instead of the training model.
void eval_encoder(const std::string& model_path, const std::string& data_path, int64_t batch, int64_t max_batches,
                  bool engine = false);

}  // namespace gannet::cli
