// A safetensors file of XTC low-bit weight matrices (io/low_bit_tensor.h) and the scheme that made
// them. The metadata key "quantization" holds
//   {"format": "gannet-lowbit-1", "scheme": "w1a8",
//    "weights": {"NAME": {"bits": 1, "group": 64, "in": 768, "padded_in": 768, "rows": 3072,
//                         "packing": "sign-bits-lsb"}, ...}}
// Schemes: w1a8 (binary weights, int8 activations) and w2a8 (ternary weights, int8 activations);
// every weight's bits must be the scheme's. (ZeroQuant's files use the same key with format
// gannet-quant-1, so each reader rejects the other's files by name.)
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/io/low_bit_tensor.h"

namespace gannet::io {

class SafeTensors;

inline constexpr const char* kLowBitFormat = "gannet-lowbit-1";

// The schemes and their weight bits: w1a8 -> 1, w2a8 -> 2; throws one line for another name.
int low_bit_scheme_bits(const std::string& scheme);
std::vector<std::string> low_bit_scheme_names();

struct LowBitFile {
  std::string scheme;
  std::map<std::string, LowBitTensor> weights;
};

// Writes atomically (io/safetensors.h); throws before writing anything on an unknown scheme, a
// weight whose bits are not the scheme's, or an invalid tensor.
void save_low_bit_file(const std::string& path, const LowBitFile& file);
// Reads and validates every weight against the file; errors are one line naming the file. Refuses
// a packed model (a file that also declares a "model_type", e.g. io/low_bit_encoder.h's) by name.
LowBitFile read_low_bit_file(const std::string& path);

// The parts shared with the files of packed models (io/low_bit_encoder.h):
// The "quantization" metadata of `weights` under `scheme`, their tensors appended to `entries`;
// throws one line naming `path` on an unknown scheme, an invalid weight or one whose bits are not
// the scheme's.
nlohmann::json low_bit_metadata(const std::string& path, const std::string& scheme,
                                const std::map<std::string, LowBitTensor>& weights,
                                std::vector<std::pair<std::string, Tensor>>& entries);
// The scheme and weights that a file's "quantization" metadata lists, each validated against the
// file; one-line errors naming the file. Tensors the metadata does not list are not looked at.
LowBitFile read_low_bit_weights(const SafeTensors& file);
// Whether tensor `name` is one of the stored parts (.sign, .nonzero, .scale) of a weight in `weights`.
bool is_low_bit_part(const std::map<std::string, LowBitTensor>& weights, const std::string& name);
// Whether the file's "quantization" metadata declares format gannet-lowbit-1 (false when it has
// none or it is not JSON): what the readers of other formats refuse by name.
bool holds_low_bit_weights(const SafeTensors& file);

}  // namespace gannet::io
