// Sane upper limits for sizes read from files and configs, checked before anything is allocated
// from them: a header that says vocab 2^31 - 1 or n_layer 10^8 is refused with a one-line error
// rather than building gigabytes. Each is far above any model gannet trains or serves on a CPU
// (GPT-2 XL: 48 layers, n_embd 1600, vocab 50257, context 1024; the largest public vocabularies
// are about 256k).
#pragma once
#include <cstdint>

namespace gannet {

inline constexpr int64_t kMaxVocabSize = int64_t(1) << 22;   // 4,194,304 tokens
inline constexpr int64_t kMaxContext = int64_t(1) << 20;     // positions
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxEmbedding = int64_t(1) << 16;  // n_embd
inline constexpr int64_t kMaxExperts = 4096;                 // per MoE layer
inline constexpr int64_t kMaxQuantGroup = int64_t(1) << 16;  // columns per quantization scale

}  // namespace gannet
